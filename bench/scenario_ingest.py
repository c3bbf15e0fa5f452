"""Ingest at volume (issue 17): small CT slices and large radiographs, against the disk's speed.

Per run: the disk's sequential write bandwidth (write + fsync, ``bench.disk``) in the work
directory, then for each workload of ``bench.ingest_data`` and each concurrency, every target
stores the same bytes under new UIDs (targets take turns, starting empty), each response
verified (``bench.stow.check_response``). Reported: instances/s, MB/s, MB/s as a share of the
disk's bandwidth measured in the same run, and the CPU cores the server kept busy (CPU seconds
of its processes over the wall time). Pipeline drain with 1 and 2 workers (``bench.drain``)
follows when the pipeline is a target.
"""

from __future__ import annotations

import dataclasses
import shutil
from typing import Final

from bench import disk, drain, ingest_data, stow
from bench.collect import Collector
from bench.context import Context, record_peaks, sampler
from bench.targets import Target

__all__ = ["PLAN", "run"]

DISK: Final = "disk"
INGEST: Final = "ingest"
DRAIN: Final = "pipeline drain"
DRAIN_WORKERS: Final = (1, 2)
SEED: Final = 20_017  # UIDs: SEED + 1000 * run + 10 * concurrency + workload number
# (workload, concurrency levels) per profile
PLAN: Final = {
    "smoke": (("small-ct", (2,)),),
    "standard": (("small-ct", (4, 8)), ("large", (4,))),
    "full": (("small-ct", (4, 8)), ("large", (4,))),
}
_SMOKE_INSTANCES: Final = 30
DISK_BYTES: Final = {"smoke": 64 * 1024**2, "standard": 1024**3, "full": 1024**3}


def _workload(ctx: Context, name: str) -> ingest_data.Workload:
    workload = ingest_data.WORKLOADS[name]
    if ctx.profile.name == "smoke":
        workload = dataclasses.replace(workload, instances=_SMOKE_INSTANCES, per_study=10)
    return workload


def _measure_disk(ctx: Context, collector: Collector) -> float:
    mb_per_s = disk.sequential_write(ctx.work / "disk", DISK_BYTES[ctx.profile.name])
    ctx.log(f"ingest: disk sequential write + fsync: {mb_per_s:,.0f} MB/s")
    collector.values(
        "disk",
        DISK,
        "sequential write + fsync, 8 MiB writes",
        {"mb_per_s": mb_per_s},
        unit="MB/s",
        better="higher",
        primary="mb_per_s",
    )
    return mb_per_s


def _ingest(
    ctx: Context,
    collector: Collector,
    kind: str,
    target: Target,
    work: list[stow.Upload],
    workload: ingest_data.Workload,
    concurrency: int,
    bandwidth: float,
) -> None:
    cpu_before = disk.cpu_seconds(target.pids)
    result = stow.stow_throughput(target.dicomweb_root, work, concurrency)
    cores = (disk.cpu_seconds(target.pids) - cpu_before) / result.seconds if result.seconds else 0
    values = None
    if result.error is None:
        values = {
            "instances_per_s": result.instances_per_s,
            "mb_per_s": result.mb_per_s,
            "disk_share": result.mb_per_s / bandwidth,
            "cores": cores,
        }
        ctx.log(
            f"ingest: {kind:18} {workload.name} c={concurrency}: "
            f"{result.instances_per_s:,.1f} instances/s, {result.mb_per_s:,.1f} MB/s "
            f"({result.mb_per_s / bandwidth:.0%} of the disk), {cores:.2f} cores"
        )
    else:
        ctx.log(f"ingest: {kind:18} {workload.name} c={concurrency}: FAILED {result.error}")
    name = f"{workload.name}: {workload.what}, {workload.per_request} a request"
    _rate(collector, kind, INGEST, name, values, result.error, result.instances, concurrency)


def _rate(
    collector: Collector,
    target: str,
    group: str,
    name: str,
    values: dict[str, float] | None,
    error: str | None,
    samples: int,
    level: int,
) -> None:
    """One run's instances/s (and more) of a measurement: ``level`` clients, or workers."""
    collector.values(
        target,
        group,
        name,
        values,
        unit="instances/s",
        better="higher",
        primary="instances_per_s",
        error=error,
        samples=samples,
        example="POST /studies" if group == INGEST else "",
        params={"concurrency" if group == INGEST else "workers": level},
    )


def _drains(ctx: Context, collector: Collector) -> str:
    """Pipeline drain rate with 1 and 2 workers, run after run; the note that explains it."""
    workload = _workload(ctx, "small-ct")
    for number in range(ctx.profile.runs):
        uploads = ingest_data.uploads(workload, SEED + 1000 * number + 999)
        for workers in DRAIN_WORKERS:
            work = ctx.work / "drain" / f"w{workers}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            found = drain.drain_rate(work, ctx.source, uploads, workers, ctx.log)
            values = None
            if found.error is None:
                values = {"instances_per_s": found.instances_per_s}
                ctx.log(f"drain: {workers} workers: {found.instances_per_s:,.1f} instances/s")
            else:
                ctx.log(f"drain: {workers} workers: FAILED {found.error}")
            name = f"pre-filled ingest topic ({workload.instances:,} {workload.name} records)"
            target = "pacsflow-pipeline"
            _rate(collector, target, DRAIN, name, values, found.error, found.instances, workers)
    return (
        "Drain: the pipeline's stand-ins and a front end without processors; the small-CT "
        "workload stored with `Prefer: respond-async` (durable on Kafka, 2 partitions), then "
        "1 or 2 `pacsflow worker` processes started; the rate counts the instances indexed "
        "from the first poll (every 0.2 s) that saw any to the last, so worker start-up and "
        "group join are not timed (bench/drain.py)."
    )


def run(ctx: Context) -> tuple[Collector, list[str]]:
    """Disk bandwidth, then each workload at each concurrency on every target, run by run."""
    collector = Collector("ingest")
    notes: list[str] = []
    targets: dict[str, Target] = {}
    try:
        for kind in ctx.kinds:
            try:
                targets[kind] = ctx.fresh(kind, "ingest")
            except Exception as exc:
                notes.append(f"{kind}: failed to start: {exc}")
        memory = sampler(targets)
        for number in range(ctx.profile.runs):
            bandwidth = _measure_disk(ctx, collector)
            with memory.window() as peaks:
                for index, (name, levels) in enumerate(PLAN[ctx.profile.name]):
                    workload = _workload(ctx, name)
                    for concurrency in levels:
                        tag = SEED + 1000 * number + 10 * concurrency + index
                        work = ingest_data.uploads(workload, tag)
                        order = list(targets)[:: 1 if (number + concurrency) % 2 else -1]
                        for kind in order:
                            _ingest(
                                ctx,
                                collector,
                                kind,
                                targets[kind],
                                work,
                                workload,
                                concurrency,
                                bandwidth,
                            )
                        del work
            record_peaks(ctx, "ingest at volume", peaks)
    finally:
        for target in targets.values():
            target.stop()
    if "pacsflow-pipeline" in ctx.kinds:
        notes.append(_drains(ctx, collector))
    notes += [
        "Workloads (bench/ingest_data.py): "
        + "; ".join(
            f"`{w.name}`: {w.instances:,} instances, {w.what}, {w.per_request} a request"
            for w in ingest_data.WORKLOADS.values()
        )
        + ". Native Explicit VR Little Endian; new UIDs for every run and concurrency.",
        "Disk: a 1 GiB file written in 8 MiB writes, then fsync of the file and its "
        "directory, in the benchmark's work directory (the file system the servers store on); "
        "`disk_share` is the ingest MB/s over that bandwidth.",
        "Cores: the CPU seconds of the target's server processes (and children) during the "
        "run over its wall time; the client and the other targets are not counted.",
    ]
    return collector, notes
