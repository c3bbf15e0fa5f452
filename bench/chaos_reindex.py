"""The rate of ``pacsflow reindex`` on a grown archive (issue 23 item 3), and the pre-load that
grows the chaos trials' archive before its first trial.

``preload`` stores instances of the chaos load (``bench/chaos_load.py``: new studies of one to
three MR (131 KB) and CT (524 KB) slices) with the worker's own ingest step
(``ingest_batch``, inline records as the STOW front end publishes them): the objects, their
sidecars and the index documents are those a deployment's worker writes, without the bus.

``python -m bench.chaos_reindex --backend pipeline|embedded --instances 3000 [--work DIR]``
pre-loads an archive (pipeline: SeaweedFS, or moto with ``--s3 moto``, and osmem; embedded:
a ``pacsflow serve`` data directory with SQLite), loses its index (a new index prefix, or the
SQLite file deleted) and times ``pacsflow reindex`` as an operator runs it; it prints the
command's progress lines and its rate in instances per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pydicom

from bench.chaos_deploy import settings_of
from bench.chaos_load import Generator
from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.pipeline.ingest import IngestContext, ingest_batch
from pacsflow.pipeline.records import IngestRecord

__all__ = ["main", "preload"]

SITE: Final = "default"
BATCH: Final = 50  # records per ingest batch (the worker's batches are of this order)


def _record(request: str, part: int, data: bytes) -> IngestRecord:
    """The inline record the STOW front end publishes for the Part 10 ``data``."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return IngestRecord(
        request_id=request,
        part=part,
        site=SITE,
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        received_at=datetime.now(UTC).isoformat(),
        inline=data,
    )


async def preload(settings: Settings, count: int, seed: int) -> int:
    """Store at least ``count`` new instances (whole studies) with the worker's ingest step;
    the number stored."""
    container = build_container(settings)
    objects, index = container.objects, container.index
    generator = Generator(seed)
    await objects.start()
    await index.start()
    stored = 0
    try:
        context = IngestContext(objects, index)
        while stored < count:
            records: list[IngestRecord] = []
            while len(records) < BATCH and stored + len(records) < count:
                request = os.urandom(8).hex()
                upload = await asyncio.to_thread(generator.upload)
                records += [_record(request, n, data) for n, (*_, data) in enumerate(upload, 1)]
            events = await ingest_batch(records, context)
            failed = [e for e in events if e.status == "failed"]
            if failed:
                raise RuntimeError(f"pre-loading failed: {failed[0]}")
            stored += len(records)
    finally:
        await index.close()
        await objects.close()
    return stored


@contextlib.contextmanager
def _pipeline(work: Path, s3: str) -> Iterator[dict[str, str]]:
    """SeaweedFS (or moto) and osmem on loopback; yields the ``PACSFLOW_*`` of the archive."""
    from tests.support.durable import make_bucket, run_seaweedfs
    from tests.support.servers import run_moto, run_osmem

    with contextlib.ExitStack() as stack:
        if s3 == "moto":
            endpoint = stack.enter_context(run_moto(work))
        else:
            endpoint = stack.enter_context(run_seaweedfs(work / "seaweedfs"))
        make_bucket(endpoint, "reindex")
        es = stack.enter_context(run_osmem(work))
        yield {
            "PACSFLOW_OBJECT_STORE_URL": f"s3://test:test@{endpoint}/reindex",
            "PACSFLOW_INDEX_URL": es,
            "PACSFLOW_INDEX_PREFIX": "ingested",
        }


def _reindex(
    env: dict[str, str], data_dir: Path, log: Path, profile: Path | None, options: list[str]
) -> tuple[float, float]:
    """Run ``pacsflow reindex`` with ``env`` (its output in ``log``; with ``profile``, under
    ``py-spy record --gil``, raw collapsed stacks); its seconds and CPU seconds (user, system)."""
    argv = [sys.executable, "-m", "pacsflow", "reindex", "--data-dir", str(data_dir), *options]
    if profile is not None:
        spy = Path(sys.executable).with_name("py-spy")
        argv = [str(spy), "record", "--gil", "--format", "raw", "-o", str(profile), "--", *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with log.open("wb") as out:
        subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, check=True
        )
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.chaos_reindex``: pre-load, lose the index, time ``pacsflow reindex``."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos_reindex", description=__doc__)
    parser.add_argument("--backend", choices=("pipeline", "embedded"), default="pipeline")
    parser.add_argument("--s3", choices=("seaweedfs", "moto"), default="seaweedfs")
    parser.add_argument("--instances", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--runs", type=int, default=1, help="reindex runs on the one archive")
    parser.add_argument("--work", type=Path, help="keep the data and logs here")
    parser.add_argument("--concurrency", help="the command's --concurrency (its default)")
    parser.add_argument("--profile", action="store_true", help="py-spy: WORK/reindex-N.txt")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="pacsflow-reindex-"))
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        data = work / "data"
        env: dict[str, str] = {}
        if args.backend == "pipeline":
            env = stack.enter_context(_pipeline(work, args.s3))
        started = time.monotonic()
        stored = asyncio.run(preload(settings_of(env, data), args.instances, args.seed))
        print(f"pre-loaded {stored} instances in {time.monotonic() - started:.0f} s")
        for run in range(1, args.runs + 1):
            if args.backend == "pipeline":
                env["PACSFLOW_INDEX_PREFIX"] = f"rebuilt{run}"  # a new, empty index
            else:
                for file in data.glob("index.sqlite*"):
                    file.unlink()
            log = work / f"reindex-{run}.log"
            profile = work / f"reindex-{run}.txt" if args.profile else None
            options = ["--concurrency", args.concurrency] if args.concurrency else []
            ri = work / f"ri{run}" if env else data
            seconds, cpu = _reindex(env, ri, log, profile, options)
            print(log.read_text().rstrip())
            print(
                f"run {run}: {stored} instances in {seconds:.1f} s: {stored / seconds:.1f}/s;"
                f" the command's CPU {cpu:.1f} s ({1000 * cpu / stored:.2f} ms per instance)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
