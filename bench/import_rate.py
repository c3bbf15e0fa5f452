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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def bench_client(work: Path, corpus: synth.Corpus, concurrency: int) -> float:
    """instances/s of ``bench.stow``'s client into a fresh archive."""
    server = start_pacsflow(work / "archive-bench")
    try:
        run = stow.stow_throughput(server.dicomweb_root, stow.uploads(corpus), concurrency)
    finally:
        server.stop()
    if run.error:
        raise RuntimeError(f"bench client: {run.error}")
    return run.instances_per_s


def importer(work: Path, folder: Path, instances: int, concurrency: int) -> tuple[float, float]:
    """(whole run, sending phase) instances/s of ``pacsflow import`` into a fresh archive."""
    server = start_pacsflow(work / "archive-import")
    command = [
        sys.executable, "-m", "pacsflow", "import", str(folder), "--url", server.dicomweb_root,
        "--parallel", str(concurrency), "--batch-files", "1000", "--batch-mb", "1024",
    ]  # fmt: skip
    try:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    stored = _STORED.search(done.stdout)
    if done.returncode != 0 or not stored or int(stored[1].replace(",", "")) != instances:
        raise RuntimeError(f"pacsflow import failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    match = _RATE.search(done.stdout)
    sending = float(match[1].replace(",", "")) if match else 0.0
    return instances / seconds, sending


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=40)
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
        client, whole, sending = [], [], []
        for number in range(args.runs):
            for first in (0, 1) if number % 2 == 0 else (1, 0):
                for archive in (work / "archive-bench", work / "archive-import"):
                    shutil.rmtree(archive, ignore_errors=True)
                if first == 0:
                    client.append(bench_client(work, corpus, args.concurrency))
                else:
                    run_whole, run_sending = importer(
                        work, work / "files", instances, args.concurrency
                    )
                    whole.append(run_whole)
                    sending.append(run_sending)
            print(
                f"run {number + 1}: bench client {client[-1]:,.1f} instances/s;"
                f" pacsflow import {whole[-1]:,.1f} (whole run), {sending[-1]:,.1f} (sending);"
                f" import/bench {whole[-1] / client[-1]:.2f}",
                flush=True,
            )
        ratios = [w / c for w, c in zip(whole, client, strict=True)]
        print(
            f"median of {args.runs}: bench client {statistics.median(client):,.1f} instances/s;"
            f" pacsflow import {statistics.median(whole):,.1f} whole run,"
            f" {statistics.median(sending):,.1f} sending phase;"
            f" import/bench of the same run: median {statistics.median(ratios):.2f}"
            f" (range {min(ratios):.2f}-{max(ratios):.2f})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
