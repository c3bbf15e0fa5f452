"""``pacsflow import`` against the benchmark's own STOW-RS client, on the same data.

``python -m bench.import_rate`` writes a ``bench.synth`` corpus with pixel data
(``bench.images``, the data of the ``stow`` scenario) as Part 10 files, one folder per study,
then stores it into a fresh ``pacsflow serve`` twice per run: with ``bench.stow``'s client
(bodies built in memory before the clock starts, ``concurrency`` keep-alive connections, one
study per request) and with ``pacsflow import FOLDER --parallel concurrency`` (which reads
the files, their headers, asks the archive what it holds of each study, and sends). Each
gets a fresh archive; their order alternates between runs. It prints instances/s of both:
the import's whole run (wall clock of the command, Python's start included) and its sending
phase (its summary), and the ratio import/bench of each run, which a machine shared with
other work disturbs less than either figure.

It measures whether the importer keeps the archive's ingest rate; it is not part of the
test suite.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import images, stow, synth
from bench.servers import start_pacsflow

SEED = 10_002  # the stow scenario's corpus
_RATE = re.compile(r"\(([\d,.]+) instances/s\)")
_STORED = re.compile(r"^\s+stored\s+([\d,]+)$", re.MULTILINE)


def write_files(corpus: synth.Corpus, folder: Path) -> int:
    """The corpus as Part 10 files, ``folder/<study>/<n>.dcm``; the number of bytes."""
    total = 0
    for study in corpus.studies:
        target = folder / study.uid
        target.mkdir(parents=True)
        for number, (_, data) in enumerate(images.study_files(study)):
            (target / f"{number:05d}.dcm").write_bytes(data)
            total += len(data)
    return total


@dataclass
class Measured:
    """One client's run: instances/s, and the CPU seconds of the client and of the archive."""

    rate: float
    sending_rate: float
    client_cpu: float
    archive_cpu: float


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _archive_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def bench_client(work: Path, corpus: synth.Corpus, concurrency: int) -> Measured:
    """``bench.stow``'s client into a fresh archive (the bodies are built before it starts)."""
    server = start_pacsflow(work / "archive-bench")
    work_items = stow.uploads(corpus)
    try:
        before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
        run = stow.stow_throughput(server.dicomweb_root, work_items, concurrency)
        client = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - before
        archive = _archive_cpu(server.process.pid)
    finally:
        server.stop()
    if run.error:
        raise RuntimeError(f"bench client: {run.error}")
    return Measured(run.instances_per_s, run.instances_per_s, client, archive)


def importer(work: Path, folder: Path, instances: int, concurrency: int) -> Measured:
    """``pacsflow import`` into a fresh archive: whole run (wall clock) and sending phase."""
    server = start_pacsflow(work / "archive-import")
    command = [
        sys.executable, "-m", "pacsflow", "import", str(folder), "--url", server.dicomweb_root,
        "--parallel", str(concurrency), "--batch-files", "1000", "--batch-mb", "1024",
    ]  # fmt: skip
    try:
        before = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        client = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before
        archive = _archive_cpu(server.process.pid)
    finally:
        server.stop()
    stored = _STORED.search(done.stdout)
    if done.returncode != 0 or not stored or int(stored[1].replace(",", "")) != instances:
        raise RuntimeError(f"pacsflow import failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    match = _RATE.search(done.stdout)
    sending = float(match[1].replace(",", "")) if match else 0.0
    return Measured(instances / seconds, sending, client, archive)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="import-rate-", dir=args.work_dir))
    try:
        corpus = synth.generate(args.studies, SEED)
        nbytes = write_files(corpus, work / "files")
        instances = corpus.instance_count
        print(f"{args.studies} studies, {instances} instances, {nbytes / 1e6:,.0f} MB;"
              f" concurrency {args.concurrency}; {images.describe()}", flush=True)  # fmt: skip
        runs: list[tuple[Measured, Measured]] = []
        for number in range(args.runs):
            measured: dict[str, Measured] = {}
            for which in ("bench", "import") if number % 2 == 0 else ("import", "bench"):
                for archive in (work / "archive-bench", work / "archive-import"):
                    shutil.rmtree(archive, ignore_errors=True)
                measured[which] = (
                    bench_client(work, corpus, args.concurrency)
                    if which == "bench"
                    else importer(work, work / "files", instances, args.concurrency)
                )
            bench, imported = measured["bench"], measured["import"]
            runs.append((bench, imported))
            print(
                f"run {number + 1}: bench client {bench.rate:,.1f} instances/s"
                f" (client CPU {bench.client_cpu:.1f} s, archive CPU {bench.archive_cpu:.1f} s);"
                f" pacsflow import {imported.rate:,.1f} whole run, {imported.sending_rate:,.1f}"
                f" sending (client CPU {imported.client_cpu:.1f} s, archive CPU"
                f" {imported.archive_cpu:.1f} s); import/bench {imported.rate / bench.rate:.2f}",
                flush=True,
            )
        ratios = [i.rate / b.rate for b, i in runs]
        print(
            f"median of {args.runs}: bench client"
            f" {statistics.median(b.rate for b, _ in runs):,.1f} instances/s, pacsflow import"
            f" {statistics.median(i.rate for _, i in runs):,.1f} (whole run),"
            f" {statistics.median(i.sending_rate for _, i in runs):,.1f} (sending);"
            f" import/bench of the same run: median {statistics.median(ratios):.2f}"
            f" (range {min(ratios):.2f}-{max(ratios):.2f}); client CPU: bench"
            f" {statistics.median(b.client_cpu for b, _ in runs):.1f} s, import"
            f" {statistics.median(i.client_cpu for _, i in runs):.1f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
