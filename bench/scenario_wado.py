"""WADO-RS retrieval (PS3.18 10.4) and rendered resources (PS3.18 8.3.5, 8.3.6), every target.

The files come from ``bench.wado_data`` (seeded): a 1,000-instance series for metadata,
500-frame and 2-frame instances (native and JPEG-LS) for frames, a 124-frame native instance
(65 MB) retrieved whole, a 400-instance series of 512x512 CT slices for instance and series
retrieval and for rendering, and in the ``full`` profile a multi-gigabyte study for the memory
of one large retrieval. pacsflow (both modes) stores them through STOW-RS, Orthanc through
``POST /instances``; each measurement is checked against the files before it is timed
(``bench.wado_steps``, ``bench.rendered_steps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from bench import rendered_steps, wado_steps
from bench.collect import Collector
from bench.context import Context, record_peaks, sampler
from bench.measure import Outcome, client_for
from bench.targets import Target
from bench.wado_data import ROLES, DataSet, FileSpec, generate
from bench.wado_load import stow_to_orthanc, stow_to_pacsflow
from bench.wado_measure import Reader, latency, multipart_parts

__all__ = ["run"]

LATENCY = "latency"
THROUGHPUT = "throughput (as stored, read to the end)"


def _store(ctx: Context, kind: str, target: Target, data: DataSet) -> list[str]:
    """Store every role's files; what failed."""
    failed = []
    for role in ROLES:
        specs = data.of(role)
        if not specs:
            continue
        ctx.log(f"{kind}: storing {role}: {len(specs)} files")
        try:
            if kind == "orthanc":
                stow_to_orthanc(target.base_url, specs, ctx.log)
            else:
                stow_to_pacsflow(target.dicomweb_root, specs, ctx.log)
        except Exception as exc:
            failed.append(f"{kind}: storing {role} failed: {type(exc).__name__}: {exc}"[:400])
    return failed


def _study_metadata(
    clients: Mapping[str, httpx.Client], data: DataSet, knobs: wado_steps.Knobs
) -> dict[str, Outcome]:
    """Study metadata of the study holding the 1,000-instance series."""
    specs = data.of("metadata")
    expected = {s.sop for s in specs}

    def check(_target: str, response: httpx.Response) -> str | None:
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]!r}"
        uids = {item.get("00080018", {}).get("Value", [""])[0] for item in response.json()}
        if uids != expected:
            return f"{len(uids)} instances in the study metadata, {len(expected)} expected"
        return None

    target = f"/studies/{specs[0].study}/metadata"
    return {
        kind: latency(
            client,
            kind,
            "study metadata",
            [target],
            wado_steps.ACCEPT_METADATA,
            check,
            knobs.warmup,
            knobs.repetitions,
            knobs.budget,
        )
        for kind, client in clients.items()
    }


def _instance(
    clients: Mapping[str, httpx.Client], spec: FileSpec, knobs: wado_steps.Knobs
) -> dict[str, Outcome]:
    """One CT instance, as stored: one part, byte for byte the stored file."""
    stored = Path(spec.path).read_bytes()
    path = f"/studies/{spec.study}/series/{spec.series}/instances/{spec.sop}"

    def check(_target: str, response: httpx.Response) -> str | None:
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]!r}"
        parts = multipart_parts(response)
        if len(parts) != 1 or parts[0] != stored:
            return f"{len(parts)} parts ({[len(p) for p in parts]} bytes), not the stored file"
        return None

    return {
        kind: latency(
            client,
            kind,
            "instance",
            [path],
            wado_steps.ACCEPT_INSTANCES,
            check,
            knobs.warmup,
            knobs.repetitions,
            knobs.budget,
        )
        for kind, client in clients.items()
    }


def _wado_run(
    ctx: Context,
    targets: Mapping[str, Target],
    clients: Mapping[str, httpx.Client],
    data: DataSet,
    knobs: wado_steps.Knobs,
    collector: Collector,
) -> None:
    row = wado_steps.metadata_row(clients, data, knobs, ctx.log)
    for kind, outcome in row.outcomes.items():
        collector.latency(
            kind, LATENCY, outcome, name=row.name, example="/studies/{st}/series/{se}/metadata"
        )
    name = f"study metadata, {len(data.of('metadata')):,} instances"
    for kind, outcome in _study_metadata(clients, data, knobs).items():
        collector.latency(kind, LATENCY, outcome, name=name, example="/studies/{st}/metadata")
    for row in wado_steps.frames_rows(clients, data, knobs, ctx.log):
        for kind, outcome in row.outcomes.items():
            collector.latency(kind, LATENCY, outcome, name=row.name, example=".../frames/{n}")
    ct = data.of("ct")
    middle = ct[len(ct) // 2]
    name = f"one CT instance ({middle.size / 1e6:.2f} MB), as stored"
    for kind, outcome in _instance(clients, middle, knobs).items():
        collector.latency(kind, LATENCY, outcome, name=name, example=".../instances/{sop}")
        if outcome.ok:
            seconds = sorted(outcome.samples_ms)[len(outcome.samples_ms) // 2] / 1000
            collector.values(
                kind,
                THROUGHPUT,
                name,
                {"mb_per_s": middle.size / seconds / 1e6},
                unit="MB/s",
                better="higher",
                primary="mb_per_s",
                samples=len(outcome.samples_ms),
                example=".../instances/{sop}",
            )
        else:
            collector.values(
                kind,
                THROUGHPUT,
                name,
                None,
                unit="MB/s",
                better="higher",
                primary="mb_per_s",
                error=outcome.error,
            )
    readers = {kind: Reader(t.dicomweb_root) for kind, t in targets.items()}
    pids = {kind: t.pids[0] for kind, t in targets.items()}
    try:
        reads = [(".../instances/{sop}", "mf-large"), ("/studies/{st}/series/{se}", "ct")]
        for example, role in reads:
            for result in wado_steps.series_throughput(readers, pids, data, knobs, ctx.log, role):
                values = None
                if result.ok:
                    values = {"mb_per_s": result.rate(result.median), "seconds": result.median}
                collector.values(
                    result.server,
                    THROUGHPUT,
                    f"{result.name} ({result.size / 1e6:,.0f} MB)",
                    values,
                    unit="MB/s",
                    better="higher",
                    primary="mb_per_s",
                    error=result.error,
                    samples=len(result.seconds),
                    example=example,
                )
    finally:
        for reader in readers.values():
            reader.close()


def _rendered_run(
    ctx: Context,
    targets: Mapping[str, Target],
    clients: Mapping[str, httpx.Client],
    data: DataSet,
    knobs: wado_steps.Knobs,
    collector: Collector,
) -> list[str]:
    series = sorted(data.of("ct"), key=lambda s: int(s.sop.rsplit(".", 1)[1]))
    paths = rendered_steps.targets_for(series, ctx.profile.rendered_variants)
    preview = None
    if "orthanc" in targets:  # Orthanc's own preview, for reference
        preview = rendered_steps.orthanc_preview(targets["orthanc"].base_url, paths)
    rows, notes = rendered_steps.measure_rows(clients, paths, preview, knobs, ctx.log)
    for row in rows:
        for kind, outcome in row.outcomes.items():
            example = row.asked.get(kind, "").strip("`")
            collector.latency(kind, "rendered JPEG", outcome, name=row.name, example=example)
    return notes


def _large_study(ctx: Context, targets: Mapping[str, Target], data: DataSet) -> None:
    for kind, target in targets.items():
        reader = Reader(target.dicomweb_root)
        try:
            peak = wado_steps.memory_peak(reader, target.pids[0], kind, data, ctx.log)
        finally:
            reader.close()
        size = data.bytes_of("big") / 1e9
        values = None
        if peak.error is None:
            values = {"peak_mib": peak.peak / 1024**2, "before_mib": peak.before / 1024**2}
        ctx.memory.values(
            kind,
            "peak RSS of the server processes",
            f"while one client reads a {size:.1f} GB study",
            values,
            unit="MiB",
            better="lower",
            primary="peak_mib",
            error=peak.error,
        )


def run(ctx: Context) -> tuple[Collector, Collector, list[str], list[str]]:
    """Store the files on every target, then time retrieval and rendering run after run."""
    profile = ctx.profile
    wado, rendered = Collector("wado"), Collector("rendered")
    data = generate(ctx.work / f"wado-data-{profile.name}", ctx.seed, profile.wado_scale, ctx.log)
    knobs = wado_steps.Knobs(
        profile.warmup,
        profile.repetitions,
        profile.budget,
        profile.frame_variants,
        profile.series_warmup,
        profile.series_repetitions,
    )
    targets: dict[str, Target] = {}
    problems: list[str] = []
    rendered_notes: list[str] = []
    try:
        for kind in ctx.kinds:
            try:
                targets[kind] = ctx.fresh(kind, "wado")
            except Exception as exc:
                problems.append(f"{kind}: failed to start: {exc}")
                continue
            problems += _store(ctx, kind, targets[kind], data)
        clients = {k: client_for(t.dicomweb_root, timeout=600) for k, t in targets.items()}
        memory = sampler(targets)
        for number in range(profile.runs):
            ctx.log(f"wado: run {number + 1}/{profile.runs}")
            with memory.window() as peaks:
                _wado_run(ctx, targets, clients, data, knobs, wado)
            record_peaks(ctx, "WADO-RS retrieval", peaks)
            with memory.window() as peaks:
                rendered_notes = _rendered_run(ctx, targets, clients, data, knobs, rendered)
            record_peaks(ctx, "rendering", peaks)
        for client in clients.values():
            client.close()
        if data.of("big"):
            _large_study(ctx, targets, data)
    finally:
        for target in targets.values():
            target.stop()
    notes = [
        f"Data: bench/wado_data.py (seed {ctx.seed}): {len(data.files):,} files, "
        f"{sum(f.size for f in data.files) / 1e9:.2f} GB; 16-bit MONOCHROME2, Explicit VR "
        "Little Endian, JPEG-LS Lossless for the compressed multi-frame instances.",
        "Stored into pacsflow by STOW-RS and into Orthanc by `POST /instances` before timing.",
        "Checks before timing: metadata lists exactly the series'/study's SOP Instance UIDs; "
        "every frame requested equals the stored frame byte for byte; an instance is one part "
        "equal to the stored file; a series arrives with one part per instance and its stored "
        f"size plus at most {wado_steps.PART_OVERHEAD} bytes of framing per part.",
        "Series retrieval: a lean `http.client` reader, the targets taking turns; MB = 10^6 "
        "bytes; the run's figure is the median of its repetitions.",
        "Orthanc's series metadata uses the plugin's default mode (`Full`: it reads the files).",
        *problems,
    ]
    return wado, rendered, notes, rendered_notes
