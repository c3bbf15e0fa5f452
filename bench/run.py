"""``python -m bench``: every scenario of the benchmark, pacsflow beside Orthanc, one command.

Scenarios: STOW-RS ingest against concurrency and time to searchable; QIDO-RS latency at
several index sizes; WADO-RS metadata, frames, instance and series retrieval; rendered JPEG
and thumbnails; peak memory of each server throughout. Targets: pacsflow in embedded mode,
pacsflow in pipeline mode (on the Kafka/S3/OpenSearch stand-ins) and Orthanc, on the same
data. Every figure is the median of ``runs`` repeated runs; every response is checked before
it is timed, so a fast wrong answer is a failure, not a figure.

Writes ``bench/results/bench-<date>-<time>[-<profile>].json`` and, through bench/publish/,
``docs/performance.md`` with its plots. See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import dataclasses
import os
import platform
import shlex
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import pacsflow
from bench import netns
from bench.collect import Collector
from bench.context import Context, Profile
from bench.harness import add_netns_option, cpu_model, load_average, log, output, servers_from
from bench.results import Metric, Report
from bench.source import describe_source, snapshot
from bench.targets import KINDS, LABELS
from bench.wado_data import Scale

__all__ = ["PROFILES", "main"]

REPO: Final = Path(__file__).resolve().parent.parent
SCENARIOS: Final = ("stow", "ingest", "qido", "wado", "ups", "capture")  # wado includes rendered
ONE_MILLION: Final = 1_000_000
PROFILES: Final = {
    "smoke": Profile(
        name="smoke",
        runs=1,
        warmup=2,
        repetitions=8,
        budget=10.0,
        stow_studies=2,
        concurrency=(1, 2),
        searchable=3,
        qido_scales=(1_000,),
        qido_variants=3,
        wado_scale=Scale(
            metadata_instances=20, frames=12, frame_rows=64, ct_instances=6, big_instances=0
        ),
        frame_variants=4,
        series_warmup=0,
        series_repetitions=2,
        rendered_variants=3,
        max_scale={},
    ),
    "standard": Profile(
        name="standard",
        runs=3,
        warmup=20,
        repetitions=200,
        budget=30.0,
        stow_studies=6,
        concurrency=(1, 2, 4, 8),
        searchable=20,
        qido_scales=(10_000, 50_000, 200_000, ONE_MILLION),
        qido_variants=10,
        wado_scale=Scale(big_instances=0),
        frame_variants=50,
        series_warmup=1,
        series_repetitions=5,
        rendered_variants=20,
        max_scale={"orthanc": 200_000, "pacsflow-pipeline": 10_000},
    ),
}
PROFILES["full"] = dataclasses.replace(
    PROFILES["standard"], name="full", wado_scale=Scale(), max_scale={"pacsflow-pipeline": 10_000}
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="pacsflow beside Orthanc: ingest, search, retrieval, rendering, memory.",
    )
    add = parser.add_argument
    add("--profile", choices=sorted(PROFILES), default="standard", help="how much to do")
    add("--targets", default=",".join(KINDS), help=f"comma-separated: {','.join(KINDS)}")
    add("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}")
    add("--runs", type=int, help="repeated runs (default: the profile's)")
    add("--qido-scales", help="comma-separated index sizes in instances (default: profile's)")
    add("--seed", type=int, default=1, help="data seed")
    add("--work-dir", type=Path, default=Path("/tmp/pacsflow-bench-all"), help="all data")
    add("--qido-work-dir", type=Path, default=Path("/tmp/pacsflow-bench"), help="QIDO indexes")
    add("--reuse", action="store_true", help="reuse QIDO index loads of the same data and code")
    add("--source", type=Path, help="pacsflow source to serve (default: a snapshot of HEAD)")
    add("--output-dir", type=Path, default=REPO / "bench" / "results", help="JSON results")
    add("--docs-dir", type=Path, help="publish performance.md here (default: docs/, not smoke)")
    add_netns_option(parser)
    return parser


def _machine(load_before: str) -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    os_name = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(pages / 1024**3, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_before": load_before,
        "load_after": load_average(),
    }


def _profile(args: argparse.Namespace) -> Profile:
    profile = PROFILES[args.profile]
    if args.runs:
        profile = dataclasses.replace(profile, runs=args.runs)
    if args.qido_scales:
        scales = tuple(int(v) for v in args.qido_scales.split(","))
        profile = dataclasses.replace(profile, qido_scales=scales)
    return profile


def _summary(report: Report) -> str:
    """A plain-text table: each headline figure per target, and the ratio to Orthanc."""
    kinds = list(report.targets)
    lines = []
    seen: set[tuple[Any, ...]] = set()
    for metric in report.metrics:
        if metric.key in seen:
            continue
        seen.add(metric.key)
        cells = []
        for kind in kinds:
            found = report.find(metric.key, kind)
            value = found.value() if found else None
            cell = "-" if found is None else "FAILED" if value is None else f"{value:,.2f}"
            ratio = report.ratio(found) if found else None
            cells.append(cell + (f" ({ratio:.2f}x)" if ratio is not None else ""))
        scale = f" @{metric.scale:,}" if metric.scale else ""
        params = "".join(f" {k}={v}" for k, v in metric.params.items())
        label = f"{metric.scenario}: {metric.name}{scale}{params} [{metric.primary}, {metric.unit}]"
        lines.append(f"{label[:90]:90} " + " | ".join(f"{c:>22}" for c in cells))
    header = f"{'measurement':90} " + " | ".join(f"{k:>22}" for k in kinds)
    return "\n".join([header, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, write the JSON, publish, print the summary."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    kinds = servers_from(args.targets, KINDS, "--targets")
    scenarios = servers_from(args.scenarios, SCENARIOS, "--scenarios")
    if netns.wanted(args.netns, "orthanc" in kinds):
        return netns.rerun_inside("bench", argv)
    started, clock, load_before = datetime.now(), time.perf_counter(), load_average()
    profile = _profile(args)
    source = args.source or snapshot(REPO, args.work_dir, log)
    ctx = Context(
        profile,
        kinds,
        args.work_dir,
        args.qido_work_dir,
        source,
        f"{pacsflow.__version__}, {describe_source(source)}",
        args.seed,
        args.reuse,
        log,
    )
    collectors: list[Collector] = []
    notes: dict[str, list[str]] = {}
    if "stow" in scenarios:
        from bench import scenario_stow

        collector, notes["stow"] = scenario_stow.run(ctx)
        collectors.append(collector)
    if "ingest" in scenarios:
        from bench import scenario_ingest

        collector, notes["ingest"] = scenario_ingest.run(ctx)
        collectors.append(collector)
    if "qido" in scenarios:
        from bench import scenario_qido

        collector, notes["qido"] = scenario_qido.run(ctx)
        collectors.append(collector)
    if "wado" in scenarios:
        from bench import scenario_wado

        wado, rendered, notes["wado"], notes["rendered"] = scenario_wado.run(ctx)
        collectors += [wado, rendered]
    if "ups" in scenarios:
        from bench import scenario_ups

        collector, notes["ups"] = scenario_ups.run(ctx)
        collectors.append(collector)
    if "capture" in scenarios:
        from bench import scenario_capture

        collector, notes["capture"] = scenario_capture.run(ctx)
        collectors.append(collector)
    collectors.append(ctx.memory)
    notes["memory"] = [
        "Resident memory (RSS) of each target's server processes and their children, sampled "
        "every 100 ms during each run of a scenario; the highest sample. pacsflow pipeline: "
        "`pacsflow serve` plus `pacsflow worker` (not the Kafka/S3/OpenSearch stand-ins).",
    ]
    notes["general"] = [
        "All targets and the client share the machine; the load average before and after the "
        "run is in the machine table.",
        "Orthanc cannot listen on loopback only: runs that include it execute in a private "
        "network namespace (`unshare --net`)."
        if netns.inside()
        else "Ran without a private network namespace.",
    ]
    metrics: list[Metric] = [m for c in collectors for m in c.metrics()]
    targets = {k: {"label": LABELS[k], "version": _version(k, ctx)} for k in kinds}
    report = Report(
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now().isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - clock, 1),
        profile=profile.name,
        runs=profile.runs,
        command="python -m bench " + shlex.join(argv),
        machine=_machine(load_before),
        targets=targets,
        reference="orthanc",
        metrics=metrics,
        failures=[f for c in collectors for f in c.failures()],
        notes=notes,
    )
    suffix = "" if profile.name == "standard" else f"-{profile.name}"
    out = args.output_dir / f"bench-{started:%Y%m%d-%H%M%S}{suffix}.json"
    report.save(out)
    docs = args.docs_dir or (None if profile.name == "smoke" else REPO / "docs")
    if docs is not None:
        from bench import publish

        shown = out.relative_to(REPO) if out.is_relative_to(REPO) else out
        page = publish.publish(report, docs, str(shown))
        log(f"published: {page}")
    print(_summary(report))
    log(f"results: {out}")
    for failure in report.failures:
        log(f"FAILED: {failure}")
    # A peer's wrong answer is a finding (reported); pacsflow's is a failed run.
    ours = [m for m in report.metrics if m.error and m.target.startswith("pacsflow")]
    return 1 if ours else 0


def _version(kind: str, ctx: Context) -> str:
    if kind == "orthanc":
        packages = output(
            "dpkg-query", "-W", "-f", "${Package} ${Version}\n", "orthanc", "orthanc-dicomweb"
        )
        return ", ".join(packages.splitlines()) + " (Debian), SQLite index, default settings"
    return ctx.version


if __name__ == "__main__":
    raise SystemExit(main())
