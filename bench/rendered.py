"""Rendered JPEGs and thumbnails (PS3.18 8.3.5, 8.3.6), pacsflow beside Orthanc, same data.

Run from the repository root: ``python -m bench.rendered --help`` (or
``python bench/rendered.py``). See bench/README.md, "Rendered and thumbnails".
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from datetime import datetime

from bench import netns
from bench.harness import add_netns_option, load_average, log, servers_from
from bench.measure import client_for
from bench.rendered_steps import Knobs, Row, make_data, measure_rows, orthanc_ids, targets_for
from bench.servers import Server, orthanc_version, start_orthanc, start_pacsflow
from bench.wado_load import stow_to_orthanc, stow_to_pacsflow
from bench.wado_servers import describe_source, snapshot

REPO = Path(__file__).resolve().parent.parent
SERVERS = ("pacsflow", "orthanc")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rendered",
        description="Rendered JPEG and thumbnail latency of pacsflow and Orthanc.",
    )
    add = parser.add_argument
    add("--servers", default="pacsflow,orthanc", help="comma-separated: pacsflow,orthanc")
    add("--seed", type=int, default=1, help="data seed (same seed, same bytes)")
    add("--instances", type=int, default=500, help="CT instances in the series")
    add("--variants", type=int, default=20, help="instances cycled for /rendered")
    add("--repetitions", type=int, default=200, help="timed requests per measurement")
    add("--warmup", type=int, default=20, help="untimed requests first")
    add("--budget", type=float, default=60.0, help="seconds of timed requests, at most, each")
    add("--source", type=Path, help="pacsflow source to serve (default: a snapshot of HEAD)")
    add("--work-dir", type=Path, default=Path("/tmp/pacsflow-bench-rendered"), help="all data")
    add("--keep", action="store_true", help="keep the work directory (default: delete it)")
    add("--output-dir", type=Path, default=REPO / "bench" / "results", help="report directory")
    add_netns_option(parser)
    return parser


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _table(rows: Sequence[Row], servers: Sequence[str]) -> list[str]:
    lines = [
        "| measurement | server | request | JPEG bytes | n | p50 ms | p95 ms "
        "| pacsflow/orthanc p50 | p95 | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        first = True
        for server in servers:
            out = row.outcomes.get(server)
            if out is None:
                continue
            cells = "| | **failed** | |"
            if out.ok:
                p50, p95 = out.percentile(50), out.percentile(95)
                cells = f"| {out.results:,.0f} | {len(out.samples_ms)} | {_ms(p50)} | {_ms(p95)}"
            ratios, target = "| |", ""
            theirs = row.outcomes.get("orthanc")
            if server == "pacsflow" and out.ok and theirs is not None and theirs.ok:
                ratios = (
                    f"| {out.percentile(50) / theirs.percentile(50):.2f} "
                    f"| {out.percentile(95) / theirs.percentile(95):.2f} |"
                )
            if server == "pacsflow" and row.target_ms is not None:
                met = out.ok and out.percentile(50) < row.target_ms
                target = f"p50 < {row.target_ms:g} ms: {'met' if met else '**not met**'}"
            name = row.name if first else ""
            first = False
            lines.append(f"| {name} | {server} | {row.asked[server]} {cells} {ratios} {target} |")
    return lines


def _report(
    setup: Sequence[tuple[str, str]],
    rows: Sequence[Row],
    servers: Sequence[str],
    failures: Sequence[str],
    notes: Sequence[str],
) -> str:
    lines = ["# Rendered and thumbnails: " + " beside ".join(servers), ""]
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in setup), ""]
    lines += ["## Latency", "", *_table(rows, servers), ""]
    lines += ["## Failures", ""]
    lines += [f"- {f}" for f in failures] or ["- none"]
    lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def _notes(args: argparse.Namespace) -> list[str]:
    notes = [
        "Data: bench/wado_data.py's CT generator, seeded: CT Image 512x512, 16-bit (12 stored), "
        "MONOCHROME2, Explicit VR Little Endian, WindowCenter/Width 40/400, rescale -1024/1. "
        "Its pixels are uniform random noise (the WADO benchmark needs no realistic image): "
        "a worst case for JPEG encoding, so the JPEGs are larger and slower to make than a "
        "real CT slice's, for both servers.",
        "Stored into pacsflow by STOW-RS and into Orthanc by `POST /instances` "
        "(bench/wado_load.py).",
        "Every distinct request is checked before timing: HTTP 200, Content-Type image/jpeg, "
        "decoded by Pillow as JPEG to 512x512 (rendered, preview) or at most 128 px a side "
        "(thumbnail, viewport=128,128).",
        "Latency: sequential requests over one keep-alive connection per server (httpx), "
        "`Accept: image/jpeg`, `Accept-Encoding: identity`, from sending a request to having "
        f"read its whole body; {args.warmup} warm-up then up to {args.repetitions} timed "
        f"requests (at most {args.budget:g} s each); p50/p95 interpolated. /rendered cycles "
        f"over {args.variants} instances spread over the series; the others repeat one request.",
        "Both servers and the client share the machine's 2 cores (run under `nice -n 10` "
        "beside other work: see the load average).",
    ]
    if netns.inside():
        notes.append("Ran in a private network namespace (loopback only).")
    return notes


def _start(server: str, data_dir: Path, source: Path) -> Server:
    if server == "pacsflow":
        return start_pacsflow(data_dir, source=source)
    return start_orthanc(data_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, store, serve, check, time, report, clean."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    servers = servers_from(args.servers, SERVERS)
    if netns.wanted(args.netns, "orthanc" in servers):
        return netns.rerun_inside("bench.rendered", argv)
    started, clock, load_before = datetime.now(), time.perf_counter(), load_average()
    work = args.work_dir
    source = args.source or snapshot(REPO, work, log)
    _, series = make_data(work / "data", args.seed, args.instances, log)
    log(f"data: {len(series)} CT files, {sum(s.size for s in series) / 1e6:.0f} MB")
    targets = targets_for(series, args.variants)
    knobs = Knobs(args.warmup, args.repetitions, args.budget, args.variants)
    running: dict[str, Server] = {}
    failures: list[str] = []
    setup: list[tuple[str, str]] = [("date", started.isoformat(timespec="seconds"))]
    rows: list[Row] = []
    notes = _notes(args)
    try:
        for server in servers:
            data_dir = work / server
            shutil.rmtree(data_dir, ignore_errors=True)
            try:
                running[server] = _start(server, data_dir, source)
                if server == "pacsflow":
                    seconds = stow_to_pacsflow(running[server].dicomweb_root, series, log)
                else:
                    setup.append(("Orthanc", orthanc_version(running[server].base_url)))
                    seconds = stow_to_orthanc(running[server].base_url, series, log)
                setup.append((f"{server} store", f"{len(series)} files in {seconds:.1f} s"))
            except Exception as exc:
                failures.append(f"{server}: start or store failed: {type(exc).__name__}: {exc}")
                running.pop(server, None)
        preview = None
        if "orthanc" in running:
            middle = targets.middle.rsplit("/", 1)[1]
            ids = orthanc_ids(running["orthanc"].base_url, [middle])
            if middle in ids:
                preview = f"{running['orthanc'].base_url}/instances/{ids[middle]}/preview"
        clients = {name: client_for(s.dicomweb_root, timeout=120) for name, s in running.items()}
        try:
            rows, more = measure_rows(clients, targets, preview, knobs, log)
            notes += more
        finally:
            for client in clients.values():
                client.close()
    finally:
        for server in running.values():
            server.stop()
    failures += [
        f"{o.server}, {r.name}: {o.error}" for r in rows for o in r.outcomes.values() if o.error
    ]
    setup += [
        ("run time", f"{(time.perf_counter() - clock) / 60:.1f} min"),
        ("series", f"{len(series)} instances, CT 512x512 16-bit, seed {args.seed}"),
        ("machine", f"{os.cpu_count()} CPUs, niceness {os.nice(0)}"),
        ("load average", f"{load_before} at the start, {load_average()} at the end (1/5/15 min)"),
        ("pacsflow source", describe_source(source)),
    ]
    text = _report(setup, rows, servers, failures, notes)
    print(text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    out = args.output_dir / f"rendered-{started:%Y%m%d-%H%M%S}.md"
    out.write_text(text + "\n")
    log(f"report: {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        log(f"cleaned: {work} deleted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
