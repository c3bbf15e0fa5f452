"""WADO-RS (PS3.18 10.4), pacsflow beside Orthanc on the same generated files.

Run from the repository root: ``python -m bench.wado --help`` (or ``python bench/wado.py``).
See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import platform
import shutil
import time
from collections.abc import Sequence
from datetime import datetime

from bench import netns, wado_steps
from bench.harness import add_netns_option, cpu_model, load_average, log, servers_from
from bench.measure import client_for
from bench.wado_data import DataSet, Scale, generate
from bench.wado_measure import MemoryPeak, Reader, Throughput
from bench.wado_report import LatencyRow, render
from bench.wado_servers import Stores, describe_source, snapshot, versions

REPO = Path(__file__).resolve().parent.parent
SERVERS = ("pacsflow", "orthanc")
SMOKE = Scale(
    metadata_instances=50, frames=20, frame_rows=128, ct_instances=10, big_instances=2, big_frames=8
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wado",
        description="WADO-RS latency, throughput and memory of pacsflow and Orthanc.",
    )
    add = parser.add_argument
    add("--servers", default="pacsflow,orthanc", help="comma-separated: pacsflow,orthanc")
    add("--seed", type=int, default=1, help="data seed (same seed, same bytes)")
    add("--smoke", action="store_true", help="tiny data (a minute): checks the harness only")
    add("--repetitions", type=int, default=200, help="timed requests per latency measurement")
    add("--warmup", type=int, default=20, help="untimed requests first")
    add("--budget", type=float, default=60.0, help="seconds of timed requests, at most, each")
    add("--frame-variants", type=int, default=50, help="frame numbers cycled per instance")
    add("--series-repetitions", type=int, default=15, help="timed whole-series retrievals")
    add("--series-warmup", type=int, default=2, help="untimed whole-series retrievals first")
    add("--skip-memory", action="store_true", help="no large study (no memory measurement)")
    add("--source", type=Path, help="pacsflow source to serve (default: a snapshot of HEAD)")
    add("--work-dir", type=Path, default=Path("/tmp/pacsflow-bench-wado"), help="all data")
    add("--reuse", action="store_true", help="reuse generated files and finished loads")
    add("--clean", action="store_true", help="delete generated files and server data at the end")
    add("--output-dir", type=Path, default=REPO / "bench" / "results", help="report directory")
    add_netns_option(parser)
    return parser


def _measure(
    stores: Stores, data: DataSet, knobs: wado_steps.Knobs
) -> tuple[list[LatencyRow], list[Throughput]]:
    """Latency and series throughput with every server up, one connection each."""
    clients = {name: client_for(s.dicomweb_root, timeout=600) for name, s in stores.running.items()}
    readers = {name: Reader(s.dicomweb_root) for name, s in stores.running.items()}
    try:
        rows = [wado_steps.metadata_row(clients, data, knobs, log)]
        rows += wado_steps.frames_rows(clients, data, knobs, log)
        pids = {name: s.process.pid for name, s in stores.running.items()}
        return rows, wado_steps.series_throughput(readers, pids, data, knobs, log)
    finally:
        for client in clients.values():
            client.close()
        for reader in readers.values():
            reader.close()


def _memory(stores: Stores, data: DataSet) -> list[MemoryPeak]:
    """Each server alone and freshly started, retrieving the large study."""
    results = []
    stores.stop_all()
    for name in stores.servers:
        if "big" not in stores.stored(name):
            reason = stores.failed(name).get("big", "the large study is not stored")
            results.append(MemoryPeak(name, error=f"not stored: {reason}"))
            continue
        try:
            server = stores.start(name)
        except RuntimeError as exc:
            results.append(MemoryPeak(name, error=str(exc)))
            continue
        reader = Reader(server.dicomweb_root)
        try:
            results.append(wado_steps.memory_peak(reader, server.process.pid, name, data, log))
        finally:
            reader.close()
            stores.stop_all()
    return results


def _notes(args: argparse.Namespace, stores: Stores) -> list[str]:
    notes = [
        "Data: bench/wado_data.py, seeded; Explicit VR Little Endian, 16-bit (12 stored) "
        "MONOCHROME2; the JPEG-LS instances are JPEG-LS Lossless (1.2.840.10008.1.2.4.80) "
        "made with pydicom's `Dataset.compress` (pyjpegls) from a smooth moving pattern.",
        "Stored into pacsflow by STOW-RS (multipart/related, streamed from disk, up to 64 MB "
        "or 100 files a request) and into Orthanc by `POST /instances` (one file a request, "
        "2 connections).",
        "Every measurement is checked (untimed) before it is timed: the metadata must list "
        "exactly the series' SOP Instance UIDs; every frame requested must be the stored frame "
        "byte for byte (the native frames are therefore equal between the servers); a series "
        "or study must arrive with one part per instance and its stored size plus at most "
        f"{wado_steps.PART_OVERHEAD} bytes of framing per part.",
        "Latency: sequential requests over one keep-alive connection per server (httpx), "
        "`Accept-Encoding: identity`, from sending a request to having read its whole body; "
        f"{args.warmup} warm-up then up to {args.repetitions} timed requests (at most "
        f"{args.budget:g} s each measurement); p50/p95 interpolated.",
        "Frames: the frame number cycles over up to "
        f"{args.frame_variants} frames spread across the instance (first and last included).",
        "Series retrieval and the large study are read to the end by a lean client "
        "(`http.client`, 1 MiB `readinto`, bytes discarded; httpx costs ~4x the client CPU per "
        "byte); MB = 10^6 bytes. Per server one untimed retrieval counting the parts first, "
        f"then {args.series_warmup} untimed and {args.series_repetitions} timed ones, the two "
        "servers taking turns. Orthanc answers these without Content-Length or chunking and "
        "closes the connection after each (the client reconnects); pacsflow streams chunked "
        "over the kept-alive connection. 'server CPU' is the user + system CPU seconds of the "
        "server's process tree during a timed retrieval (median): near the wall time, the "
        "server is CPU-bound.",
        "Stored objects: 3 copies of the data (generated files, pacsflow's, Orthanc's; ~17 GB "
        "in all) against 24 GB of RAM, so most reads are from the page cache, for both.",
        "Memory: each server alone, freshly started over its stored data, RSS of its process "
        "and all children (psutil) sampled every 50 ms while the study is read; 'before' is "
        "the highest of 10 samples over the half second before the request.",
        "Orthanc 1.10.1 / DICOMweb plugin 1.7 (Debian 12) with default settings and SQLite "
        "index; its series metadata mode is the plugin's default ('Full': it reads the stored "
        "files).",
        "Both servers and the client share the machine's 2 cores.",
    ]
    if stores.reused:
        notes.append(
            f"Reused the stored data of an earlier run ({', '.join(stores.reused)}): the store "
            "times in the data table are that run's."
        )
    if netns.inside():
        notes.append("Ran in a private network namespace (loopback only).")
    if args.smoke:
        notes.append("SMOKE run: tiny data, the numbers mean nothing.")
    return notes


def _setup(
    args: argparse.Namespace, data: DataSet, stores: Stores, started: datetime, seconds: float
) -> list[tuple[str, str]]:
    scale = data.scale
    return [
        ("date", started.isoformat(timespec="seconds")),
        ("run time", f"{seconds / 60:.1f} min (data generation, stores and measurements)"),
        ("seed", str(args.seed)),
        (
            "data",
            f"{len(data.files):,} files, {sum(f.size for f in data.files) / 1e9:.2f} GB; "
            f"frames {scale.frame_rows}x{scale.frame_rows} 16-bit",
        ),
        ("machine", f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}"),
        (
            "load average",
            f"{args.load_before} at the start, {load_average()} at the end (1/5/15 min)",
        ),
        *versions(stores),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, store, serve, measure, report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    servers = servers_from(args.servers, SERVERS)
    if netns.wanted(args.netns, "orthanc" in servers):
        return netns.rerun_inside("bench.wado", argv)
    started, clock = datetime.now(), time.perf_counter()
    args.load_before = load_average()
    work = args.work_dir
    source = args.source or snapshot(REPO, work, log)
    scale = SMOKE if args.smoke else Scale()
    if args.skip_memory:
        scale = dataclasses.replace(scale, big_instances=0)
    data_dir = work / ("data-smoke" if args.smoke else "data")
    if not args.reuse and data_dir.exists():
        shutil.rmtree(data_dir)
    log(f"data: generating (or reusing) files in {data_dir}")
    data = generate(data_dir, args.seed, scale, log)
    log(f"data: {len(data.files):,} files, {sum(f.size for f in data.files) / 1e9:.2f} GB")
    knobs = wado_steps.Knobs(
        args.warmup,
        args.repetitions,
        args.budget,
        args.frame_variants,
        args.series_warmup,
        args.series_repetitions,
    )
    suffix = "-smoke" if args.smoke else ""
    stores = Stores(servers, {s: work / f"{s}{suffix}" for s in servers}, source, data, log)
    rows: list[LatencyRow] = []
    series: list[Throughput] = []
    memory: list[MemoryPeak] = []
    try:
        stores.prepare(reuse=args.reuse)
        if stores.running:
            rows, series = _measure(stores, data, knobs)
        if not args.skip_memory:
            memory = _memory(stores, data)
    finally:
        stores.stop_all()
    seconds = time.perf_counter() - clock
    failures = [*stores.problems]
    failures += [
        f"{o.server}, {r.name}: {o.error}" for r in rows for o in r.outcomes.values() if o.error
    ]
    failures += [f"{t.server}, {t.name}: {t.error}" for t in series if t.error]
    failures += [f"{m.server}, large study: {m.error}" for m in memory if m.error]
    title = "WADO-RS benchmark: " + " beside ".join(servers)
    setup = [
        *_setup(args, data, stores, started, seconds),
        ("pacsflow source", describe_source(source)),
    ]
    text = render(
        title,
        setup,
        servers,
        stores.load_rows(),
        rows,
        series,
        memory,
        failures,
        _notes(args, stores),
    )
    print(text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    out = args.output_dir / f"wado-{started:%Y%m%d-%H%M%S}{suffix}.md"
    out.write_text(text + "\n")
    log(f"report: {out}")
    if args.clean:
        for path in (data_dir, *stores.dirs.values()):
            shutil.rmtree(path, ignore_errors=True)
        log("cleaned: generated files and server data deleted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
