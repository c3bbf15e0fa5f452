"""QIDO-RS search latency (PS3.18 10.6) at several index sizes, on every target.

Each index size is a ``bench.synth`` corpus (~20 instances a study). The index is loaded by
the fastest honest path for each target, and the report says which: pacsflow embedded through
its index port (``SqliteIndex.upsert_instances``, the documents ingest writes), pacsflow
pipeline through ``ElasticsearchIndex.upsert_instances`` into OpenSearch (osmem), Orthanc by
``POST /instances`` of header-only Part 10 files (its fastest way in); bench/qido_data.py keeps
these loads for ``--reuse``. Every answer is checked against the corpus before it is timed
(``bench.queries``). The size of each index on disk is measured with its server stopped
(pacsflow: ``index.sqlite`` with its WAL; Orthanc: its SQLite ``IndexDirectory``; the pipeline's
OpenSearch stand-in keeps its index in memory).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

from bench import synth
from bench.collect import Collector
from bench.context import Context, record_peaks, sampler
from bench.load_pacsflow import LoadReport
from bench.measure import client_for, measure
from bench.qido_data import index_bytes, load_orthanc_data, load_pacsflow_data
from bench.queries import build_queries
from bench.servers import start_pacsflow
from bench.targets import Target, wrap
from pacsflow.adapters.es_index import ElasticsearchIndex

__all__ = ["run"]

GROUP = "searches"
SIZE_GROUP = "index on disk"
LIMIT = 100
ES_BATCH = 2000
ON_DISK = ("pacsflow", "orthanc")  # targets whose index is a file (the pipeline's is in memory)


def _chunks(corpus: synth.Corpus) -> Iterator[list[synth.Study]]:
    chunk: list[synth.Study] = []
    count = 0
    for study in corpus.studies:
        chunk.append(study)
        count += study.instance_count
        if count >= ES_BATCH:
            yield chunk
            chunk, count = [], 0
    if chunk:
        yield chunk


async def _load_es(target: Target, corpus: synth.Corpus) -> LoadReport:
    index = ElasticsearchIndex(target.index_url, prefix=target.index_prefix, refresh=True)
    await index.start()
    started = time.perf_counter()
    done = 0
    try:
        for chunk in _chunks(corpus):
            docs = [doc for study in chunk for doc in synth.documents(study)]
            await index.upsert_instances(docs)
            done += len(docs)
    finally:
        await index.close()
    return LoadReport(done, len(corpus.studies), time.perf_counter() - started)


def _directory(ctx: Context, kind: str, corpus: synth.Corpus) -> Path:
    """Where a target's index of ``corpus`` lives (shared by runs with ``--reuse``)."""
    return ctx.qido_work / f"{kind}-seed{ctx.seed}-n{len(corpus.studies)}"


def _prepare(ctx: Context, kind: str, corpus: synth.Corpus, notes: list[str]) -> Target:
    size = f"{corpus.instance_count:,} instances"
    if kind in ON_DISK:
        directory = _directory(ctx, kind, corpus)
        if kind == "pacsflow":
            loaded = load_pacsflow_data(corpus, directory, ctx.reuse, ctx.log)
            server = start_pacsflow(directory, source=ctx.source)
        else:
            server, loaded = load_orthanc_data(corpus, directory, ctx.reuse, ctx.log)
        how = f"{loaded.method}, {loaded.rate:,.0f} instances/s"
        notes.append(f"{kind} at {size}: {how}" + (" (reused)" if loaded.reused else ""))
        return wrap(server, kind)
    target = ctx.fresh(kind, f"qido-{corpus.instance_count}")
    try:
        report = asyncio.run(_load_es(target, corpus))
    except BaseException:
        target.stop()
        raise
    notes.append(
        f"{kind} at {size}: direct index load (ElasticsearchIndex.upsert_instances, "
        f"batches of {ES_BATCH:,}), {report.rate:,.0f} instances/s"
    )
    return target


def _scale(ctx: Context, instances: int, collector: Collector, notes: list[str]) -> None:
    profile = ctx.profile
    corpus = synth.generate(max(1, instances // synth.INSTANCES_PER_STUDY), ctx.seed)
    scale = corpus.instance_count
    queries = build_queries(corpus, profile.qido_variants, LIMIT)
    kinds = [k for k in ctx.kinds if scale <= profile.max_scale.get(k, scale)]
    skipped = [k for k in ctx.kinds if k not in kinds]
    if skipped:
        notes.append(f"At {scale:,} instances: not loaded on {', '.join(skipped)} (see --help).")
    targets: dict[str, Target] = {}
    try:
        for kind in kinds:
            ctx.log(f"qido: preparing {kind} at {scale:,} instances")
            try:
                targets[kind] = _prepare(ctx, kind, corpus, notes)
            except Exception as exc:
                for query in queries:
                    collector.values(
                        kind,
                        GROUP,
                        query.name,
                        None,
                        unit="ms",
                        better="lower",
                        primary="p50",
                        error=f"load or start failed: {exc!r}",
                        scale=scale,
                    )
        clients = {kind: client_for(t.dicomweb_root) for kind, t in targets.items()}
        memory = sampler(targets)
        for run in range(profile.runs):
            ctx.log(f"qido: {scale:,} instances, run {run + 1}/{profile.runs}")
            with memory.window() as peaks:
                for query in queries:
                    for kind, client in clients.items():
                        outcome = measure(
                            client,
                            kind,
                            query,
                            profile.warmup,
                            profile.repetitions,
                            profile.budget,
                        )
                        collector.latency(kind, GROUP, outcome, example=query.example, scale=scale)
                        if outcome.ok:
                            ctx.log(f"  {kind:18} {query.name}: {outcome.percentile(50):.2f} ms")
                        else:
                            ctx.log(f"  {kind:18} {query.name}: FAILED {outcome.error}")
            record_peaks(ctx, f"QIDO-RS at {scale:,} instances", peaks)
        for client in clients.values():
            client.close()
    finally:
        for target in targets.values():
            target.stop()
    for kind in targets:
        if kind in ON_DISK:
            mib = index_bytes(kind, _directory(ctx, kind, corpus)) / 1024**2
            collector.values(
                kind,
                SIZE_GROUP,
                "index size",
                {"index_mib": mib},
                unit="MiB",
                better="lower",
                primary="index_mib",
                scale=scale,
            )


def run(ctx: Context) -> tuple[Collector, list[str]]:
    """Every index size of the profile; the measurements and the notes."""
    collector = Collector("qido")
    notes = [
        "Data: bench/synth.py, deterministic; ~20 instances a study in 1-3 series (CT, MR, CR, "
        "US, DX, PT), patients with 1-4 studies, 10% with UTF-8 names (ISO_IR 192), study dates "
        "over 2015-2024. Searches index headers only, so the indexed instances carry no pixels.",
        f"Study and series searches send `limit={LIMIT}`; an answer counts only when it holds "
        "exactly the expected studies/series/instances (none missing up to the limit, none "
        "that does not match); a wrong answer is a failure, not timed.",
        "Each query cycles through up to "
        f"{ctx.profile.qido_variants} values (patients, months, name prefixes, modalities, "
        "studies), the same for every target; sequential requests over one keep-alive "
        "connection per target, no compression.",
        "Query values are percent-encoded only where RFC 3986 requires it (`*`, `?`, `-` go "
        "as is): Orthanc 1.10's DICOMweb plugin 1.7 does not percent-decode QIDO values, so a "
        "UTF-8 value (which must be encoded) matches nothing there.",
        "Index on disk: measured once per size with the server stopped; pacsflow "
        "`index.sqlite` with its `-wal`, Orthanc its `IndexDirectory` (SQLite, the stored "
        "files not counted); the pipeline's OpenSearch stand-in (osmem) keeps its index in "
        "memory, so it has no figure.",
    ]
    for instances in ctx.profile.qido_scales:
        _scale(ctx, instances, collector, notes)
    return collector, notes
