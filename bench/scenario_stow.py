"""STOW-RS ingest throughput against concurrency, and time from acknowledgement to
searchable (PS3.18 10.5, 10.6), on every target.

Each (run, concurrency) STOWs a fresh ``bench.synth`` corpus with pixel data from
``bench.images`` (new UIDs each time, the same bytes for every target), one study per request;
targets start empty and take turns. Every response is checked: each instance sent must be in
the ReferencedSOPSequence and none in a FailedSOPSequence.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from bench import images, stow, synth
from bench.collect import Collector
from bench.context import Context, record_peaks, sampler
from bench.targets import Target

__all__ = ["run"]

INGEST = "ingest, one study per request"
SEARCHABLE = "time to searchable"
SEED = 10_002  # the structure of the ingest corpus; UIDs: SEED + 100 * run + concurrency


def renumbered(corpus: synth.Corpus, tag: int) -> synth.Corpus:
    """The same studies, series, instances and pixels under new UIDs (``tag`` in them), so
    every run and concurrency level stores new instances of one and the same workload."""
    root = synth.UID_ROOT
    studies = []
    for study in corpus.studies:
        series = tuple(
            dataclasses.replace(s, uid=f"{root}{tag}.2.{study.index}.{s.number}")
            for s in study.series
        )
        uid = f"{root}{tag}.1.{study.index}"
        studies.append(dataclasses.replace(study, seed=tag, uid=uid, series=series))
    return synth.Corpus(tag, tuple(studies))


def _composition(corpus: synth.Corpus) -> str:
    count = Counter(i.series.modality for i in corpus.instances())
    return ", ".join(f"{n} {modality}" for modality, n in sorted(count.items()))


def run(ctx: Context) -> tuple[Collector, list[str]]:
    """Ingest at each concurrency, then time-to-searchable, run after run."""
    profile = ctx.profile
    collector = Collector("stow")
    targets: dict[str, Target] = {}
    notes: list[str] = []
    template = synth.generate(profile.stow_studies, SEED)
    size = 0.0  # MB of one workload (the same under every UID renumbering, to a few bytes)
    try:
        for kind in ctx.kinds:
            try:
                targets[kind] = ctx.fresh(kind, "stow")
            except Exception as exc:
                notes.append(f"{kind}: failed to start: {exc}")
        memory = sampler(targets)
        for number in range(profile.runs):
            with memory.window() as peaks:
                for concurrency in profile.concurrency:
                    work = stow.uploads(renumbered(template, SEED + 100 * number + concurrency))
                    size = sum(u.nbytes for u in work) / 1e6
                    kinds = list(targets) if (number + concurrency) % 2 else list(targets)[::-1]
                    for kind in kinds:
                        result = stow.stow_throughput(
                            targets[kind].dicomweb_root, work, concurrency
                        )
                        values = None
                        if result.error is None:
                            values = {
                                "instances_per_s": result.instances_per_s,
                                "mb_per_s": result.mb_per_s,
                            }
                            ctx.log(
                                f"stow: {kind:18} c={concurrency}: {result.instances_per_s:,.1f}"
                                f" instances/s, {result.mb_per_s:,.1f} MB/s ({size:,.0f} MB)"
                            )
                        else:
                            ctx.log(f"stow: {kind:18} c={concurrency}: FAILED {result.error}")
                        collector.values(
                            kind,
                            INGEST,
                            "concurrent clients",
                            values,
                            unit="instances/s",
                            better="higher",
                            primary="instances_per_s",
                            error=result.error,
                            samples=result.instances,
                            example="POST /studies",
                            params={"concurrency": concurrency},
                        )
                single = stow.single_instance_uploads(
                    synth.generate(max(4, profile.searchable), SEED + 100 * number + 99),
                    profile.searchable,
                )
                for kind, target in targets.items():
                    seconds, error = stow.searchable_latency(target.dicomweb_root, single)
                    values = None
                    if error is None and seconds:
                        ms = sorted(s * 1000 for s in seconds)
                        values = {
                            "p50": ms[len(ms) // 2],
                            "p95": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
                            "max": ms[-1],
                        }
                        ctx.log(f"stow: {kind:18} searchable after {values['p50']:.1f} ms (p50)")
                    collector.values(
                        kind,
                        SEARCHABLE,
                        "single-instance STOW, then /instances?SOPInstanceUID=",
                        values,
                        unit="ms",
                        better="lower",
                        primary="p50",
                        error=error or (None if seconds else "no samples"),
                        samples=len(seconds),
                    )
            record_peaks(ctx, "STOW-RS ingest", peaks)
    finally:
        for target in targets.values():
            target.stop()
    notes += [
        f"Data: {profile.stow_studies} studies of bench/synth.py (seed {SEED}): "
        f"{template.instance_count} instances ({_composition(template)}), {size:,.0f} MB, "
        "stored again under new UIDs for every run and concurrency level (the same bytes "
        f"otherwise). Pixel data: {images.describe()}",
        "Requests: one study per STOW-RS request (multipart/related; type=application/dicom), "
        "the bodies built in memory before the clock starts; N clients on N keep-alive "
        "connections take studies from one queue; throughput = instances (or bytes, MB = 10^6) "
        "over the time from the first request to the last response.",
        "Every response is verified: HTTP 200, each instance sent listed in "
        "ReferencedSOPSequence (0008,1199), no FailedSOPSequence (0008,1198).",
        "pacsflow acknowledges a STOW once the instances are stored and indexed (its default "
        "`PACSFLOW_STOW_CONSISTENCY=indexed`) and validates pixel data by decoding it "
        "(`PACSFLOW_VALIDATE_PIXEL_DATA=decode`); Orthanc stores synchronously too.",
        "Time to searchable: a single-instance STOW, then `GET /instances?SOPInstanceUID=` "
        "repeated without pause until the instance is in the answer; the time from the STOW "
        "response to that answer.",
        "Pipeline mode runs on test stand-ins (Tansu, moto, osmem, all in memory): its "
        "figures measure pacsflow with those servers, not with Kafka, MinIO and Elasticsearch.",
    ]
    return collector, notes
