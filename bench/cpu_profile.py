"""CPU (not wall) per instance of ``pacsflow serve`` under the small-CT load, per process.

``python -m bench.cpu_profile --out DIR [--source DIR] [--concurrency 4] [--perf] [--yappi]``
starts ``pacsflow serve`` on a fresh data directory, stores the small-CT workload
(``bench.ingest_data``) from N clients and writes ``DIR/cpu.md``: each process's user and
system CPU milliseconds per stored instance (supervisor, HTTP workers, processor).

``--perf`` (Debian: ``linux-perf``) records every process with ``perf record``: native and
kernel frames, so where the system time goes and how much is CPython's interpreter; the
report adds each process's top symbols and the kernel's families. ``--yappi`` (``pip install
yappi``) runs ``bench/yappi_site`` in every process (yappi on the threads' CPU clocks,
start-up left out): the Python work by family and function, by inclusive CPU, goes in
``cpu.md`` and in ``DIR/<pid>-<role>.pstat`` (``python -m pstats``). yappi slows Python code
several times over: its shares rank the Python work, its milliseconds are not the server's.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import collections
import contextlib
import os
import pstats
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Final

import psutil

from bench import ingest_data, stow
from bench.servers import pacsflow_source, start_pacsflow

__all__ = ["main"]

# Kernel symbols by what they do (perf): the families that matter for small instances.
KERNEL_FAMILIES: Final = (
    (
        "ext4 inode allocation (a new file)",
        (
            "recently_deleted",
            "find_get_block_common",
            "find_inode_bit",
            "ext4_get_group_desc",
            "_find_next_zero_bit",
            "__brelse",
            "ext4_read_inode_bitmap",
        ),
    ),
    ("copy of written bytes to the page cache", ("copy_folio_from_iter", "clear_page")),
    ("context switches, wake-ups", ("finish_task_switch", "_raw_spin_unlock_irq", "futex")),
)
# Python work by family (yappi): a function's inclusive CPU, by (file ending, function name).
# The families nest (the parse is part of validation): each row is read on its own.
PYTHON_FAMILIES: Final = (
    (
        "HTTP: uvicorn, starlette, fastapi, middleware (request total)",
        ("httptools_impl.py", "RequestResponseCycle.run_asgi"),
    ),
    ("STOW: the use case (request total)", ("stow/service.py", "StowService.store_instances")),
    ("STOW: multipart parse", ("media/multipart_in.py", "parse_parts")),
    ("STOW: part chunks (hash, header, buffer)", ("stow/parts.py", "StreamingPart.feed")),
    ("STOW: header read (scan of the prefix)", ("dicom/header.py", "read_part_header")),
    ("STOW: staged write (put)", ("adapters/fs_store.py", "FileSystemObjectStore.put")),
    ("STOW: sync and publish a batch", ("stow/service.py", "StowService._publish")),
    ("bus: record encoding", ("pipeline/records.py", "IngestRecord.to_bytes")),
    ("processor: validation (total)", ("dicom/validate.py", "validate_instance")),
    ("structure scan (STOW header read, processor validation)", ("dicom/scan.py", "scan")),
    ("processor: pydicom parse", ("dicom/validate.py", "_parse")),
    ("processor: DICOM JSON", ("dicom/metadata.py", "dataset_to_json")),
    ("processor: hierarchy (pydicom values)", ("dicom/validate.py", "_hierarchy")),
    ("processor: frame table", ("dicom/validate.py", "_frames")),
    (
        "processor: object writes (group commit)",
        ("adapters/fs_store.py", "FileSystemObjectStore._write_batch"),
    ),
    ("processor: index upsert (terms, SQL)", ("adapters/sqlite_index.py", "_upsert")),
    ("processor: index terms", ("query/terms.py", "entity_terms")),
    ("processor: change feed", ("adapters/sqlite_changefeed.py", "append_changes")),
    ("processor: event encoding", ("pipeline/records.py", "IngestEvent.to_bytes")),
    ("thumbnails: rendering", ("render/stored.py", "render_stored")),
)
_PERF_LINE: Final = re.compile(r"\s*(\d+)/(\d+)\s+\S+\s+(.*)\((.*)\)\s*$")
_OWN: Final = ("pacsflow/", "streams/", "services/", "uvicorn/", "starlette/", "multipart")


def _role(process: psutil.Process, root: int) -> str:
    if process.pid == root:
        return "supervisor"
    with contextlib.suppress(psutil.Error):
        return "processor" if "worker" in process.cmdline()[2:] else "HTTP worker"
    return str(process.pid)


def _times(processes: list[psutil.Process]) -> dict[int, tuple[float, float]]:
    out = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            cpu = process.cpu_times()
            out[process.pid] = (cpu.user, cpu.system)
    return out


def _perf_report(data: Path, top: int) -> dict[str, list[str]]:
    """Per process (pid): its samples' top symbols and kernel families, as lines."""
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-G", "-F", "pid,tid,ip,sym,dso"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    samples: collections.Counter[str] = collections.Counter()
    kernel: collections.Counter[str] = collections.Counter()
    symbols: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    families: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in script.splitlines():
        found = _PERF_LINE.match(line)
        if not found:
            continue
        pid, symbol, dso = found.group(1), found.group(3).strip(), found.group(4)
        samples[pid] += 1
        kernel[pid] += "kernel" in dso
        symbols[pid][f"{symbol} [{dso.rsplit('/', 1)[-1]}]"] += 1
        for name, markers in KERNEL_FAMILIES:
            if any(marker in symbol for marker in markers):
                families[pid][name] += 1
    out = {}
    for pid, count in samples.items():
        lines = [f"{count} samples, {kernel[pid] / count:.0%} in the kernel"]
        lines += [f"{n / count:.1%} {name}" for name, n in families[pid].most_common()]
        lines += ["top symbols:"]
        lines += [f"  {n / count:.1%} {name}" for name, n in symbols[pid].most_common(top)]
        out[pid] = lines
    return out


def _yappi_report(path: Path, stored: int, top: int) -> list[str]:
    """The process's own and framework functions by inclusive CPU (yappi ms per instance)."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    lines = [f"yappi: {1000 * total / stored:.2f} ms an instance under the profiler"]
    for family, (ending, function) in PYTHON_FAMILIES:
        inclusive = sum(
            v[3]
            for (file, _, name), v in stats.items()
            if name == function and file.endswith(ending)
        )
        if inclusive:
            lines.append(
                f"  {inclusive / total:6.1%} {1000 * inclusive / stored:6.2f} ms  {family}"
            )
    lines.append("functions by inclusive CPU:")
    rows = sorted(stats.items(), key=lambda kv: -kv[1][3])
    shown = 0
    for (file, line, name), (_, calls, _, inclusive, _) in rows:
        if shown >= top or not any(own in file for own in _OWN):
            continue
        short = file.split("site-packages/")[-1].split("/src-")[-1]
        lines.append(f"  {inclusive / total:6.1%} {calls:7d} {name} ({short}:{line})")
        shown += 1
    return lines


def run(args: argparse.Namespace) -> str:
    """Profile one run; the report as markdown."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    source = args.source or pacsflow_source()
    uploads = ingest_data.uploads(ingest_data.WORKLOADS["small-ct"], args.seed)
    data = Path(tempfile.mkdtemp(prefix="pacsflow-cpu-"))
    settings = {}
    if args.yappi:
        for old in out.glob("*.pstat"):
            old.unlink()
        site = str(Path(__file__).resolve().parent / "yappi_site")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (site, os.getenv("PYTHONPATH"))))
        settings["YAPPI_OUT"] = str(out)
    server = start_pacsflow(data, source=source, settings=settings)
    perf = None
    try:
        root = psutil.Process(server.process.pid)
        processes = [root, *root.children(recursive=True)]
        roles = {p.pid: _role(p, root.pid) for p in processes}
        if args.yappi:
            for process in processes:
                os.kill(process.pid, signal.SIGUSR1)
            time.sleep(0.5)
        if args.perf:
            pids = ",".join(str(p.pid) for p in processes)
            argv = ["perf", "record", "-F", "499", "-p", pids, "-o", str(out / "perf.data")]
            perf = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        before = _times(processes)
        result = stow.stow_throughput(server.dicomweb_root, uploads, args.concurrency)
        after = _times(processes)
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    stored = max(result.instances, 1)
    lines = [
        f"# CPU of pacsflow serve, small-CT from {args.concurrency} clients",
        "",
        f"{result.instances} instances in {result.seconds:.1f} s"
        f" ({result.instances_per_s:.1f} instances/s), load average"
        f" {os.getloadavg()[0]:.1f} at the end; {source}",
        "",
        "| process | user ms an instance | system ms | total |",
        "|---|---:|---:|---:|",
    ]
    totals = [0.0, 0.0]
    for pid, role in roles.items():
        used = [a - b for a, b in zip(after.get(pid, (0, 0)), before.get(pid, (0, 0)), strict=True)]
        totals = [t + u for t, u in zip(totals, used, strict=True)]
        user, system = (1000 * u / stored for u in used)
        lines.append(f"| {role} ({pid}) | {user:.2f} | {system:.2f} | {user + system:.2f} |")
    user, system = (1000 * t / stored for t in totals)
    lines.append(f"| all | {user:.2f} | {system:.2f} | {user + system:.2f} |")
    if perf is not None:
        for pid, report in _perf_report(out / "perf.data", args.top).items():
            lines += ["", f"## perf: {roles.get(int(pid), pid)} ({pid})", "", "```", *report, "```"]
    for path in sorted(out.glob("*.pstat")) if args.yappi else ():
        pid = int(path.stem.split("-")[0])
        report = _yappi_report(path, stored, args.top)
        lines += ["", f"## yappi: {roles.get(pid, pid)} ({pid})", "", "```", *report, "```"]
    text = "\n".join(lines) + "\n"
    (out / "cpu.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Profile and print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_profile", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", type=Path, help="pacsflow source to serve")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=41_017)
    parser.add_argument("--perf", action="store_true", help="perf record every process")
    parser.add_argument("--yappi", action="store_true", help="yappi in every process")
    parser.add_argument("--top", type=int, default=25, help="rows per process")
    print(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
