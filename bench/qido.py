"""QIDO-RS latency, pacsflow beside Orthanc on the same synthetic data.

Run from the repository root: ``python -m bench.qido --help`` (or ``python bench/qido.py``).
See bench/README.md for what is measured and how the data is loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import httpx

import pacsflow
from bench import netns, synth
from bench.harness import add_netns_option, cpu_model, log, output, servers_from
from bench.load_orthanc import load_orthanc
from bench.load_pacsflow import load_index
from bench.measure import Outcome, client_for, measure
from bench.queries import Query, build_queries
from bench.report import LoadRow, render
from bench.servers import Server, dir_size, pacsflow_source, start_orthanc, start_pacsflow

REPO = Path(__file__).resolve().parent.parent
SERVERS = ("pacsflow", "orthanc")
SYNTH_VERSION = 1  # bump when bench/synth.py changes the data it generates


@dataclass(frozen=True, slots=True)
class Loaded:
    """A finished load, as kept in the data directory's manifest for --reuse."""

    seed: int
    studies: int
    instances: int
    seconds: float
    method: str
    fingerprint: str
    finished: str
    reused: bool = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.qido",
        description="QIDO-RS latency of pacsflow and Orthanc on the same synthetic data.",
    )
    add = parser.add_argument
    add("--studies", type=int, default=200, help="studies to generate (~20 instances each)")
    add("--seed", type=int, default=1, help="data seed (same seed and scale, same data)")
    add("--servers", default="pacsflow,orthanc", help="comma-separated: pacsflow,orthanc")
    add("--repetitions", type=int, default=200, help="timed requests per query and server")
    add("--warmup", type=int, default=20, help="untimed requests per query and server first")
    add("--variants", type=int, default=10, help="query values per query (cycled)")
    add("--limit", type=int, default=100, help="limit= sent with every study search")
    add("--budget", type=float, default=120.0, help="seconds of timed requests per query, at most")
    add("--work-dir", type=Path, default=Path("/tmp/pacsflow-bench"), help="data directories")
    add("--reuse", action="store_true", help="reuse a finished load of the same data if found")
    add("--load-only", action="store_true", help="load (and report load time and size) only")
    add("--batch-size", type=int, default=1000, help="documents per pacsflow index upsert")
    add("--workers", type=int, default=2, help="processes building pacsflow index documents")
    add("--connections", type=int, default=4, help="concurrent uploads to Orthanc")
    add("--output-dir", type=Path, default=REPO / "bench" / "results", help="report directory")
    add_netns_option(parser)
    return parser


def _fingerprint(server: str) -> str:
    """What a reused load must match besides seed and scale: the generator, and for pacsflow
    the SQLite adapter's source (its schema may change), for Orthanc its version."""
    if server == "pacsflow":
        source = (Path(pacsflow.__file__).parent / "adapters" / "sqlite_index.py").read_bytes()
        return f"synth{SYNTH_VERSION}-sqlite_index-{hashlib.sha256(source).hexdigest()[:12]}"
    return f"synth{SYNTH_VERSION}-" + " ".join(output("dpkg-query", "-W", "orthanc").split())


def _reusable(data_dir: Path, args: argparse.Namespace, server: str) -> Loaded | None:
    manifest = data_dir / "bench-load.json"
    if not args.reuse or not manifest.is_file():
        return None
    try:
        loaded = Loaded(**json.loads(manifest.read_text()))
    except (TypeError, ValueError):
        return None
    wanted = (args.seed, args.studies, _fingerprint(server))
    return loaded if (loaded.seed, loaded.studies, loaded.fingerprint) == wanted else None


def _remember(data_dir: Path, loaded: Loaded) -> None:
    (data_dir / "bench-load.json").write_text(json.dumps(asdict(loaded), indent=2))


def _fresh(data_dir: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)


def _pacsflow_data(args: argparse.Namespace, corpus: synth.Corpus, data_dir: Path) -> Loaded:
    loaded = _reusable(data_dir, args, "pacsflow")
    if loaded:
        log(f"pacsflow: reusing the index in {data_dir} (loaded {loaded.finished})")
        return replace(loaded, reused=True)
    _fresh(data_dir)
    log(f"pacsflow: loading {corpus.instance_count:,} instances into {data_dir}/index.sqlite")
    report = asyncio.run(
        load_index(corpus, data_dir / "index.sqlite", args.batch_size, args.workers)
    )
    method = f"direct index load (SqliteIndex.upsert_instances, batches of {args.batch_size})"
    loaded = Loaded(
        args.seed,
        args.studies,
        report.instances,
        report.seconds,
        method,
        _fingerprint("pacsflow"),
        datetime.now().isoformat(timespec="seconds"),
    )
    _remember(data_dir, loaded)
    log(f"pacsflow: loaded in {report.seconds:.1f}s ({report.rate:.0f} instances/s)")
    return loaded


def _orthanc_count(server: Server) -> int:
    response = httpx.get(f"{server.base_url}/statistics", timeout=60)
    response.raise_for_status()
    return int(response.json()["CountInstances"])


def _orthanc_data(
    args: argparse.Namespace, corpus: synth.Corpus, data_dir: Path
) -> tuple[Server, Loaded]:
    loaded = _reusable(data_dir, args, "orthanc")
    if loaded:
        server = start_orthanc(data_dir)
        if _orthanc_count(server) == corpus.instance_count:
            log(f"orthanc: reusing the data in {data_dir} (loaded {loaded.finished})")
            return server, replace(loaded, reused=True)
        server.stop()
    _fresh(data_dir)
    server = start_orthanc(data_dir)
    log(f"orthanc: uploading {corpus.instance_count:,} instances ({args.connections} connections)")
    try:
        report = load_orthanc(corpus, server.base_url, args.connections)
        count = _orthanc_count(server)
        if count != corpus.instance_count:
            raise RuntimeError(f"Orthanc holds {count} instances, {corpus.instance_count} sent")
    except BaseException:
        server.stop()
        raise
    method = f"REST POST /instances, {args.connections} connections"
    loaded = Loaded(
        args.seed,
        args.studies,
        report.instances,
        report.seconds,
        method,
        _fingerprint("orthanc"),
        datetime.now().isoformat(timespec="seconds"),
    )
    _remember(data_dir, loaded)
    log(f"orthanc: loaded in {report.seconds:.1f}s ({report.rate:.0f} instances/s)")
    return server, loaded


def _versions(servers: dict[str, Server]) -> list[tuple[str, str]]:
    source = pacsflow_source()
    commit = output("git", "-C", str(source), "rev-parse", "--short", "HEAD")
    dirty = output("git", "-C", str(source), "status", "--porcelain", "--", "pacsflow", "services")
    state = f"commit {commit}" + (" with uncommitted changes" if dirty else "") if commit else ""
    rows = [("pacsflow", f"{pacsflow.__version__}, source {source} {state}".strip())]
    if "orthanc" in servers:
        base = servers["orthanc"].base_url
        try:
            core = httpx.get(f"{base}/system", timeout=10).json()["Version"]
            plugin = httpx.get(f"{base}/plugins/dicom-web", timeout=10).json()["Version"]
            rows.append(("Orthanc", f"{core}, DICOMweb plugin {plugin}, SQLite index"))
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            rows.append(("Orthanc", f"version unknown ({exc})"))
    return rows


def _sizes(server: str, data_dir: Path) -> tuple[int, int | None]:
    if server == "pacsflow":
        index = data_dir / "index.sqlite"
        return dir_size(index, Path(f"{index}-wal")), None
    return dir_size(data_dir / "index"), dir_size(data_dir / "storage")


def _measure_all(
    queries: Sequence[Query], running: dict[str, Server], args: argparse.Namespace
) -> dict[tuple[str, str], Outcome]:
    outcomes: dict[tuple[str, str], Outcome] = {}
    clients = {name: client_for(server.dicomweb_root) for name, server in running.items()}
    try:
        for query in queries:
            for name, client in clients.items():
                outcome = measure(client, name, query, args.warmup, args.repetitions, args.budget)
                outcomes[(query.name, name)] = outcome
                if outcome.ok:
                    log(
                        f"{name:8} {query.name}: p50 {outcome.percentile(50):.2f} ms,"
                        f" p95 {outcome.percentile(95):.2f} ms"
                    )
                else:
                    log(f"{name:8} {query.name}: FAILED {outcome.error}")
    finally:
        for client in clients.values():
            client.close()
    return outcomes


def _notes(args: argparse.Namespace, servers: Sequence[str], corpus: synth.Corpus) -> list[str]:
    notes = [
        "Data: bench/synth.py, deterministic; ~20 instances a study in 1-3 series (CT, MR, CR, "
        "US, DX, PT), patients with 1-4 studies, 10% with UTF-8 names (ISO_IR 192), study "
        "dates over 2015-2024; no pixel data.",
        "pacsflow's index is loaded through the index port (`SqliteIndex.upsert_instances`) "
        "with the documents ingest would write; the DICOM objects are not stored, so QIDO "
        "works and WADO does not. Orthanc receives the same instances as Part 10 files.",
        f"Study searches send `limit={args.limit}`; a query counts as working only when its "
        "answer holds exactly the expected studies/series/instances (all matching, none "
        "missing up to the limit); failures are listed, not timed.",
        f"Each query cycles through up to {args.variants} values (patients, months, name "
        "prefixes, modalities, studies), the same for both servers; requests are sequential "
        "over one keep-alive connection per server, without compression.",
        "Index size: pacsflow index.sqlite + -wal; Orthanc its IndexDirectory (SQLite); "
        "both measured with the servers stopped.",
    ]
    if "orthanc" in servers:
        notes.append(
            "Query values are percent-encoded only where RFC 3986 requires it (`*`, `?`, `-` "
            "go as is): Orthanc 1.10's DICOMweb plugin 1.7 does not percent-decode QIDO "
            "values, so a UTF-8 value (which must be encoded) matches nothing there."
        )
    if list(servers) == ["pacsflow"]:
        notes.append(
            f"pacsflow alone at {corpus.instance_count:,} instances: no Orthanc comparison "
            "at this scale (loading Orthanc over REST takes too long here)."
        )
    if netns.inside():
        notes.append("Ran in a private network namespace (loopback only).")
    return notes


@dataclass
class _Run:
    """What a run prepared: loads, running servers, and what went wrong."""

    dirs: dict[str, Path]
    loads: dict[str, Loaded]
    running: dict[str, Server]
    problems: list[str]


def _prepare(
    args: argparse.Namespace, corpus: synth.Corpus, servers: Sequence[str], run: _Run
) -> None:
    """Load each server's data and start the servers into ``run`` (which the caller stops,
    even when interrupted); failures become problems."""
    dirs = run.dirs
    if "pacsflow" in servers:
        try:
            run.loads["pacsflow"] = _pacsflow_data(args, corpus, dirs["pacsflow"])
        except Exception as exc:
            run.problems.append(f"pacsflow: the index load failed: {exc!r}")
    if "orthanc" in servers:
        try:
            run.running["orthanc"], run.loads["orthanc"] = _orthanc_data(
                args, corpus, dirs["orthanc"]
            )
        except Exception as exc:
            run.problems.append(f"orthanc: start or load failed: {exc!r}")
    if not args.load_only and "pacsflow" in run.loads:
        try:
            run.running["pacsflow"] = start_pacsflow(dirs["pacsflow"])
        except RuntimeError as exc:
            run.problems.append(f"pacsflow: serve failed to start: {exc}")
    run.running = {s: run.running[s] for s in servers if s in run.running}


def _load_rows(run: _Run) -> list[LoadRow]:
    rows = []
    for name, loaded in run.loads.items():
        index_bytes, storage_bytes = _sizes(name, run.dirs[name])
        note = f"reused load of {loaded.finished}" if loaded.reused else ""
        rows.append(
            LoadRow(
                name,
                loaded.method,
                loaded.instances,
                loaded.studies,
                loaded.seconds,
                index_bytes,
                storage_bytes,
                note,
            )
        )
    return rows


def _setup(
    args: argparse.Namespace, corpus: synth.Corpus, servers: Sequence[str], started: datetime
) -> list[tuple[str, str]]:
    return [
        ("date", started.isoformat(timespec="seconds")),
        ("scale", f"{len(corpus.studies):,} studies, {corpus.instance_count:,} instances"),
        ("seed", str(args.seed)),
        ("servers", ", ".join(servers)),
        (
            "requests",
            f"{args.warmup} warm-up + {args.repetitions} timed per query and server "
            f"(at most {args.budget:.0f} s of timed requests each)",
        ),
        ("machine", f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Load, serve, measure, report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    servers = servers_from(args.servers, SERVERS)
    if netns.wanted(args.netns, "orthanc" in servers):
        return netns.rerun_inside("bench.qido", argv)
    started = datetime.now()
    corpus = synth.generate(args.studies, args.seed)
    log(f"data: {len(corpus.studies):,} studies, {corpus.instance_count:,} instances")
    queries = build_queries(corpus, args.variants, args.limit)
    dirs = {s: args.work_dir / f"{s}-seed{args.seed}-n{args.studies}" for s in servers}
    run = _Run(dirs, {}, {}, [])
    outcomes: dict[tuple[str, str], Outcome] = {}
    try:
        _prepare(args, corpus, servers, run)
        versions = _versions(run.running)
        if not args.load_only:
            outcomes = _measure_all(queries, run.running, args)
    finally:
        for server in run.running.values():
            server.stop()
    for problem in run.problems:
        log(problem)
    title = f"QIDO-RS benchmark: {', '.join(servers)} at {corpus.instance_count:,} instances"
    setup = [*_setup(args, corpus, servers, started), *versions]
    notes = [*run.problems, *_notes(args, servers, corpus)]
    text = render(title, setup, _load_rows(run), queries, servers, outcomes, notes)
    print(text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    out = args.output_dir / f"qido-{started.strftime('%Y%m%d-%H%M%S')}.md"
    out.write_text(text + "\n")
    log(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
