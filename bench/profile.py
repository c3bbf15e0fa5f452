"""Where ingest time goes: a sampling profile of ``pacsflow serve`` under the small-CT load.

``python -m bench.profile run --out DIR [--source DIR] [--concurrency 4] [--seconds 8]``
starts ``pacsflow serve`` on a fresh data directory, stores the small-CT workload
(``bench.ingest_data``) from N clients and, while it runs, records every server process with
py-spy (``pip install py-spy``; wall-clock samples, idle ones included) as collapsed stacks.
It writes ``DIR/<pid>.txt`` per process, ``DIR/breakdown.md`` (the samples by cost category:
HTTP parse, header read, hashing, validation, writes, fsyncs, index, bus) and
``DIR/flamegraph.png`` (an icicle graph of the busy samples of all processes).
``python -m bench.profile report DIR`` redraws both from the stacks.

A thread waiting for work is idle; a thread in ``fsync`` or in a SQLite ``COMMIT`` waits on
the disk and counts as busy, since the request it serves waits too. py-spy sees Python frames
only: time the event loop spends in uvloop's C code (waiting, or reading sockets) counts as
idle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from typing import Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from bench import ingest_data, stow
from bench.harness import log
from bench.servers import pacsflow_source, start_pacsflow

__all__ = ["CATEGORIES", "breakdown", "flamegraph", "main"]

# (category, substrings of a frame), tried from the innermost frame outwards.
CATEGORIES: Final = (
    ("fsync: object files", ("_fsync_path", "_commit (pacsflow/adapters/fs_store.py")),
    ("index: commit (fsync)", ("_transaction.__exit__ (pacsflow/adapters/sqlite_index.py",)),
    ("bus: commit (fsync)", ("_transaction (pacsflow/adapters/embedded_bus.py",)),
    ("index: terms and upsert", ("sqlite_index.py", "terms.py")),
    ("bus: journal", ("embedded_bus.py", "bus_wakeups.py", "records.py")),
    ("validation: pixel decode", ("_decode_frame",)),
    ("validation: DICOM JSON", ("dataset_to_json", "metadata.py")),
    ("validation: pydicom parse", ("_parse (pacsflow/dicom/validate.py", "dcmread")),
    ("validation: structure scan", ("scan.py", "frames.py", "codestream.py")),
    ("validation: other", ("validate.py",)),
    ("writes: object files", ("fs_store.py", "spooling.py")),
    ("header read", ("header.py",)),
    ("hashing", ("sha256", "hashlib", "_sha256")),
    ("HTTP: multipart parse", ("multipart",)),
    ("HTTP: server and framework", ("uvicorn", "starlette", "fastapi", "httptools", "h11")),
    ("STOW front end", ("pacsflow/stow/",)),
    ("ingest step", ("pacsflow/pipeline/", "streams/")),
    ("event loop and threads", ("asyncio", "uvloop", "concurrent/futures", "threading.py")),
)
IDLE: Final = (
    "select (selectors",
    "_worker (concurrent/futures/thread.py:81)",
    "Condition.wait",
    "run_forever",
    "wait (threading.py",
    "Runner.run (asyncio/runners.py",  # inside uvloop (C): waiting, or reading a socket
    "supervise (pacsflow/supervisor.py",  # the supervisor sleeps between checks
)
OTHER: Final = "other"


def _stacks(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def _busy(frames: list[str]) -> bool:
    return not any(marker in frames[-1] for marker in IDLE)


def hash_frame(source: Path) -> str:
    """The frame of the line that hashes a STOW part in ``source`` (``sha256.update``)."""
    parts = source / "pacsflow" / "stow" / "parts.py"
    for number, line in enumerate(parts.read_text().splitlines(), start=1):
        if "sha256.update(" in line:
            return f"(pacsflow/stow/parts.py:{number})"
    return "sha256.update"


def _category(frames: list[str], hashing: str = "") -> str:
    if hashing and frames and hashing in frames[-1]:
        return "hashing"
    for name, markers in CATEGORIES:
        for frame in reversed(frames):
            if any(marker in frame for marker in markers):
                return name
    return OTHER


def breakdown(files: list[Path], hashing: str = "") -> tuple[Counter[str], int]:
    """Busy samples per category over ``files``, and the samples per thread (the wall);
    ``hashing``: the frame that hashes a part (``hash_frame``)."""
    counts: Counter[str] = Counter()
    per_thread: Counter[str] = Counter()
    for path in files:
        for frames, count in _stacks(path):
            per_thread[f"{path.stem}:{frames[0]}"] += count
            if _busy(frames):
                counts[_category(frames[1:], hashing)] += count
    return counts, max(per_thread.values(), default=0)


def breakdown_markdown(files: list[Path], title: str, hashing: str = "") -> str:
    """The breakdown as a markdown table: share of busy samples, and threads busy on average."""
    counts, wall = breakdown(files, hashing)
    busy = sum(counts.values()) or 1
    lines = [
        f"{title}: {len(files)} processes, {wall} samples per thread; on average "
        f"{busy / max(wall, 1):.2f} threads busy (on the CPU, or waiting on the disk).",
        "",
        "| category | share of busy samples | threads busy on average |",
        "|---|---:|---:|",
    ]
    for name, count in counts.most_common():
        lines.append(f"| {name} | {count / busy:.1%} | {count / max(wall, 1):.2f} |")
    return "\n".join(lines) + "\n"


def flamegraph(files: list[Path], out: Path, title: str, depth: int = 28) -> None:
    """An icicle graph (callers on top) of the busy samples of ``files``; PNG."""
    tree: dict[tuple[str, ...], int] = {}
    for path in files:
        for frames, count in _stacks(path):
            if not _busy(frames):
                continue
            names = [f.split(" (")[0] for f in frames[1:]][:depth]
            for level in range(1, len(names) + 1):
                key = tuple(names[:level])
                tree[key] = tree.get(key, 0) + count
    total = sum(v for k, v in tree.items() if len(k) == 1) or 1
    figure, axes = plt.subplots(figsize=(16, 9), dpi=100)
    offsets: dict[tuple[str, ...], float] = {(): 0.0}
    for key in sorted(tree, key=lambda k: (len(k), k)):
        parent = key[:-1]
        start = offsets.get(parent, 0.0)
        width = tree[key] / total
        offsets[parent] = start + width
        offsets.setdefault(key, start)
        colour = plt.cm.autumn(hash(key[-1]) % 256 / 255)
        box = Rectangle((start, len(key) - 1), width, 1, facecolor=colour, lw=0.2, ec="white")
        axes.add_patch(box)
        if width > 0.035:
            label = key[-1][: int(width * 160)]
            axes.text(start + 0.002, len(key) - 0.5, label, va="center", fontsize=6)
    axes.set_xlim(0, 1)
    axes.set_ylim(depth, 0)
    axes.set_xlabel("share of busy samples (all server processes)")
    axes.set_yticks([])
    axes.set_title(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _run(args: argparse.Namespace) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    uploads = ingest_data.uploads(ingest_data.WORKLOADS["small-ct"], args.seed)
    data = Path(tempfile.mkdtemp(prefix="pacsflow-profile-"))
    server = start_pacsflow(data, source=args.source or pacsflow_source())
    try:
        pids = [server.process.pid, *_children(server.process.pid)]
        timer = threading.Timer(args.delay, _record, (py_spy, pids, args.seconds, out))
        timer.start()
        result = stow.stow_throughput(server.dicomweb_root, uploads, args.concurrency)
        timer.join()
        log(f"profile: {result.instances_per_s:.1f} instances/s during the run; stacks in {out}")
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    title = f"pacsflow serve, small-CT STOW from {args.concurrency} clients"
    _report(out, title, hash_frame(args.source or pacsflow_source()))


def _record(py_spy: str, pids: list[int], seconds: float, out: Path) -> None:
    recorders = []
    for pid in pids:
        argv = [py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100"]
        argv += ["--idle", "--threads", "--nonblocking", "--format", "raw"]
        argv += ["-o", str(out / f"{pid}.txt")]
        recorders.append(
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    for recorder in recorders:
        recorder.wait()


def _report(out: Path, title: str, hashing: str) -> None:
    files = sorted(p for p in out.glob("*.txt") if p.stat().st_size)
    (out / "breakdown.md").write_text(breakdown_markdown(files, title, hashing))
    flamegraph(files, out / "flamegraph.png", title)
    print((out / "breakdown.md").read_text())


def main(argv: list[str] | None = None) -> int:
    """``run`` a profile, or redraw the ``report`` of recorded stacks."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="profile pacsflow serve under the small-CT load")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--source", type=Path, help="pacsflow source to serve")
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--seconds", type=float, default=8.0, help="recorded seconds")
    run.add_argument("--delay", type=float, default=1.0, help="seconds before recording")
    run.add_argument("--seed", type=int, default=31_017)
    report = commands.add_parser("report", help="breakdown and flame graph of recorded stacks")
    report.add_argument("out", type=Path)
    report.add_argument("--title", default="pacsflow serve")
    report.add_argument("--source", type=Path, help="the pacsflow source that was profiled")
    args = parser.parse_args(argv)
    if args.command == "run":
        _run(args)
    else:
        _report(args.out, args.title, hash_frame(args.source or pacsflow_source()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
