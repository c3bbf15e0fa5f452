"""Where a retrieval's time goes: a sampling profile of ``pacsflow serve`` under one read load.

``python -m bench.profile_read --out DIR [--source DIR] [--seconds 15] [--loads rendered,...]``
starts ``pacsflow serve`` on a fresh data directory, stores the WADO benchmark's CT series and
its 65 MB multi-frame instance (``bench.wado_data``), then for each load sends requests one
after the other from one client while py-spy (``pip install py-spy``) samples the server:
first as collapsed stacks, for ``DIR/<load>.md`` (the CPU samples by cost category and the
requests per second), then again as ``DIR/<load>.svg``, py-spy's flame graph. Only samples of
busy threads count (py-spy's idle ones and threads found waiting in epoll or for work are left
out), so the shares are of the server's CPU time.

Loads: ``rendered`` (``/rendered`` of 20 CT slices in turn), ``thumbnail`` (the CT series),
``instance`` (one 0.5 MB CT instance, as stored), ``large`` (the 65 MB instance, as stored).
``--set PACSFLOW_RENDER_CACHE_MB=0`` (repeatable) passes a setting to the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from bench.harness import log
from bench.servers import Server, start_pacsflow
from bench.source import snapshot
from bench.wado_data import DataSet, Scale, generate
from bench.wado_load import stow_to_pacsflow
from bench.wado_measure import Reader

__all__ = ["CATEGORIES", "breakdown", "main"]

REPO: Final = Path(__file__).resolve().parent.parent
ACCEPT_INSTANCES: Final = 'multipart/related; type="application/dicom"; transfer-syntax=*'
LOADS: Final = ("rendered", "thumbnail", "instance", "large")
# (category, substrings of a frame), tried from the innermost frame outwards.
CATEGORIES: Final = (
    ("render: JPEG/PNG encode", ("encode_images", "encode.py")),
    ("render: resize", ("apply_viewport", "viewport.py")),
    ("render: VOI/LUT pipeline", ("pixels.py",)),
    ("render: pixel decode", ("pixel_array", "pydicom/pixels/")),
    ("render: header parse", ("dcmread", "filereader.py", "read_header")),
    ("render: other", ("pacsflow/render/", "rendered.py")),
    ("object store: reads", ("fs_store.py", "s3_store.py")),
    ("index lookup", ("sqlite_index.py", "es_index.py", "locate.py")),
    ("WADO use case", ("pacsflow/wado/", "multipart_out.py")),
    ("HTTP: server and framework", ("uvicorn", "starlette", "fastapi", "h11", "httptools")),
    ("event loop and threads", ("asyncio", "uvloop", "concurrent/futures", "threading.py")),
)
OTHER: Final = "other"
# Innermost frames of a thread that waits (py-spy's idle detection misses these on a busy
# machine): the event loop in epoll, executor threads waiting for work.
IDLE: Final = ("select (selectors", "Condition.wait", "_worker (concurrent/futures/thread.py")


def _stacks(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def _category(frames: Sequence[str]) -> str:
    for name, markers in CATEGORIES:
        for frame in reversed(frames):
            if any(marker in frame for marker in markers):
                return name
    return OTHER


def breakdown(path: Path) -> Counter[str]:
    """Busy samples per category in a file of collapsed stacks (py-spy ``--format raw``)."""
    counts: Counter[str] = Counter()
    for frames, count in _stacks(path):
        if not any(marker in frames[-1] for marker in IDLE):
            counts[_category(frames)] += count
    return counts


def _data(work: Path) -> DataSet:
    scale = Scale(metadata_instances=0, frames=2, ct_instances=400, big_instances=0)
    return generate(work / "data", 1, scale, log)


def _requests(load: str, data: DataSet, root: str) -> Callable[[int], int]:
    """One request of ``load`` (the n-th); returns the bytes received."""
    ct = sorted(data.of("ct"), key=lambda s: int(s.sop.rsplit(".", 1)[1]))
    series = f"/studies/{ct[0].study}/series/{ct[0].series}"
    spread = [ct[i * len(ct) // 20] for i in range(20)]
    reader = Reader(root)
    large = data.one("mf-large")
    targets = {
        "rendered": ([f"{series}/instances/{s.sop}/rendered" for s in spread], "image/jpeg"),
        "thumbnail": ([f"{series}/thumbnail"], "image/jpeg"),
        "instance": ([f"{series}/instances/{ct[len(ct) // 2].sop}"], ACCEPT_INSTANCES),
        "large": (
            [f"/studies/{large.study}/series/{large.series}/instances/{large.sop}"],
            ACCEPT_INSTANCES,
        ),
    }
    paths, accept = targets[load]

    def one(number: int) -> int:
        counted = reader.read(paths[number % len(paths)], accept, count=False)
        if counted.status != 200:
            raise RuntimeError(f"{load}: HTTP {counted.status}: {counted.text}")
        return counted.size

    return one


def _under_load(
    server: Server, request: Callable[[int], int], argv: list[str], seconds: float
) -> tuple[int, float]:
    """Run py-spy with ``argv`` on the server while requests go one after the other."""
    stop = threading.Event()
    done = [0]

    def client() -> None:
        while not stop.is_set():
            request(done[0])
            done[0] += 1

    thread = threading.Thread(target=client, daemon=True)
    started = time.perf_counter()
    thread.start()
    # --subprocesses: ``pacsflow serve`` is a supervisor; its HTTP workers answer the requests.
    pid = str(server.process.pid)
    command = [_py_spy(), "record", "--pid", pid, "--subprocesses", "--rate", "250"]
    subprocess.run(
        [*command, "--duration", str(int(seconds)), "--nonblocking", *argv],
        check=True,
        capture_output=True,
    )
    stop.set()
    thread.join()
    return done[0], time.perf_counter() - started


def _py_spy() -> str:
    """py-spy from PATH or beside this Python (a venv's bin)."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def _report(load: str, counts: Counter[str], requests: int, seconds: float) -> str:
    total = sum(counts.values()) or 1
    lines = [
        f"# {load}: {requests} requests in {seconds:.1f} s ({requests / seconds:.1f}/s);"
        f" busy samples (250/s) per request: {sum(counts.values()) / max(requests, 1):.2f}",
        "",
        "| category | samples | share |",
        "|---|---:|---:|",
    ]
    for name, count in counts.most_common():
        lines.append(f"| {name} | {count} | {100 * count / total:.1f} % |")
    return "\n".join(lines) + "\n"


def profile(
    out: Path,
    source: Path,
    work: Path,
    loads: Sequence[str],
    seconds: float,
    settings: dict[str, str],
) -> dict[str, str]:
    """Profile each load; the markdown report of each."""
    _py_spy()
    out.mkdir(parents=True, exist_ok=True)
    data = _data(work)
    data_dir = work / "pacsflow"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = {"PACSFLOW_STOW_TIMEOUT_SECONDS": "600", **settings}
    server = start_pacsflow(data_dir, source=source, settings=settings)
    reports = {}
    try:
        stow_to_pacsflow(server.dicomweb_root, [*data.of("ct"), data.one("mf-large")], log)
        for load in loads:
            request = _requests(load, data, server.dicomweb_root)
            for number in range(5):  # warm up (imports, caches)
                request(number)
            raw = out / f"{load}.txt"
            requests, elapsed = _under_load(
                server, request, ["--format", "raw", "-o", str(raw)], seconds
            )
            reports[load] = _report(load, breakdown(raw), requests, elapsed)
            (out / f"{load}.md").write_text(reports[load])
            svg = ["--format", "flamegraph", "-o", str(out / f"{load}.svg")]
            _under_load(server, request, svg, seconds)
            log(f"{load}: {requests / elapsed:.1f} requests/s; {out / load}.md, .svg")
    finally:
        server.stop()
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, profile, print the reports."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_read", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where the reports go")
    parser.add_argument("--source", type=Path, help="pacsflow source (default: snapshot of HEAD)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/pacsflow-profile-read"))
    parser.add_argument("--seconds", type=float, default=15.0, help="per load and format")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"of {','.join(LOADS)}")
    parser.add_argument(
        "--set", action="append", default=[], metavar="PACSFLOW_X=V", help="server setting"
    )
    args = parser.parse_args(argv)
    loads = [load for load in args.loads.split(",") if load]
    if unknown := set(loads) - set(LOADS):
        parser.error(f"unknown loads: {', '.join(sorted(unknown))}")
    settings = dict(item.split("=", 1) for item in args.set)
    source = args.source or snapshot(REPO, args.work_dir, log)
    reports = profile(args.out, source, args.work_dir, loads, args.seconds, settings)
    for report in reports.values():
        print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
