"""The ``pacsflow`` command.

``pacsflow serve`` runs the embedded archive in one process; ``pacsflow stow|qido|wado|ups``
and ``pacsflow commitment`` run one HTTP service each and ``pacsflow worker`` runs the ingest
processor (pipeline mode).

This module is the composition root: the one place in the core allowed to import ``services``
and ``streams`` (the import-linter contract lists the exception).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from pacsflow import __version__
from pacsflow.auth.exposure import exposure_problem
from pacsflow.config import HTTP_ROLES, Settings, variable_name
from pacsflow.container import Container, build_container, kafka_security
from pacsflow.errors import (
    BusUnavailable,
    IndexUnavailable,
    ObjectStoreUnavailable,
    ServiceUnavailable,
)
from pacsflow.export.command import add_export_parser, run_export
from pacsflow.importer.command import add_import_parser, run_import
from pacsflow.reindex.command import add_reindex_parser, run_reindex
from pacsflow.telemetry import logs, tracing
from pacsflow.viewer.command import add_viewer_parser, run_viewer

__all__ = ["main"]

log = logging.getLogger("pacsflow")

_HTTP_ROLES = {
    "serve": (*HTTP_ROLES, "console"),
    "stow": ("stow",),
    "qido": ("qido",),
    "wado": ("wado",),
    "ups": ("ups",),
    "console": ("console",),
    "commitment": ("commitment",),
}
_BACKENDS: dict[type[ServiceUnavailable], str] = {
    BusUnavailable: "the bus (PACSFLOW_BUS_URL)",
    ObjectStoreUnavailable: "the object store (PACSFLOW_OBJECT_STORE_URL)",
    IndexUnavailable: "the index (PACSFLOW_INDEX_URL)",
}
_CLIENT_LOGGERS = ("aiokafka", "kafka", "elastic_transport", "elasticsearch", "urllib3", "minio")
_HELP = {
    "serve": "run every service and the ingest processor in one process (embedded)",
    "stow": "run the STOW-RS service only (pipeline mode)",
    "qido": "run the QIDO-RS service only (pipeline mode)",
    "wado": "run the WADO-RS service only (pipeline mode)",
    "ups": "run the Worklist service (UPS-RS) only (pipeline mode)",
    "commitment": "run the Storage Commitment service only (pipeline mode)",
    "worker": "run the ingest processor only (pipeline mode)",
    "console": "run the web console and the OHIF Viewer only (pipeline mode)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pacsflow", description="pacsflow DICOMweb archive")
    parser.add_argument("--version", action="version", version=f"pacsflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in _HELP.items():
        command = commands.add_parser(name, help=text)
        if name != "worker":
            command.add_argument("--host", help="listen address (PACSFLOW_HOST, default 127.0.0.1)")
            command.add_argument(
                "--port", type=int, help="listen port (PACSFLOW_PORT, default 8080)"
            )
            command.add_argument(
                "--insecure",
                action="store_const",
                const=True,
                help="listen beyond loopback without authentication (PACSFLOW_INSECURE)",
            )
        command.add_argument(
            "--data-dir",
            type=Path,
            help="data directory (PACSFLOW_DATA_DIR, default ./pacsflow-data)",
        )
    add_export_parser(commands)
    add_import_parser(commands)
    add_reindex_parser(commands)
    add_viewer_parser(commands)
    return parser


class StartFailed(Exception):
    """A backend or the data directory cannot be used at start: one line for the operator."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pacsflow`` command.

    Exits 2 on an invalid configuration and 1 when a backend cannot be used at start, after
    one line on stderr that names the setting (no traceback).
    """
    args = _parser().parse_args(argv)
    if args.command == "import":  # a client of an archive: no server configuration
        return run_import(args)
    candidates = (
        ("host", getattr(args, "host", None)),
        ("port", getattr(args, "port", None)),
        ("insecure", getattr(args, "insecure", None)),
        ("data_dir", args.data_dir),
    )
    overrides = {key: value for key, value in candidates if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        print(f"pacsflow {args.command}: invalid configuration: {problems}", file=sys.stderr)
        return 2
    problem = exposure_problem(settings.host, settings.auth, settings.insecure)
    if args.command in _HTTP_ROLES and problem:
        print(f"pacsflow {args.command}: {problem}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    tracing.configure(settings.otlp_endpoint, args.command)
    if args.command == "export":
        return asyncio.run(run_export(settings, args))
    if args.command == "reindex":
        return asyncio.run(run_reindex(settings, args))
    if args.command == "viewer":
        return run_viewer(settings, args)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return _run(args.command, settings)
    except StartFailed as exc:
        print(f"pacsflow {args.command}: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One validation error as ``VARIABLE: reason`` (a reason that names it stays as it is)."""
    reason = message.removeprefix("Value error, ")
    return reason if reason.startswith("PACSFLOW_") else f"{variable_name(loc)}: {reason}"


def _run(command: str, settings: Settings) -> int:
    """Run ``command``; the exit status. ``serve`` (and an HTTP role with several workers)
    runs as a supervisor of worker processes (``pacsflow.supervisor``)."""
    if command == "worker" and settings.resolved_bus_url().startswith("kafka:"):
        from streams.faust_app import create_faust_app, run_faust_worker

        asyncio.run(_preflight(settings))  # Faust would retry an unreachable broker forever
        app = create_faust_app(
            settings.resolved_bus_url(),
            lambda: build_container(settings),
            security=kafka_security(settings.bus),
            health_port=settings.worker_health_port,
            health_host=settings.host,
        )
        run_faust_worker(app, settings.log_level, settings.log_format)
    elif command == "worker":
        _on_uvloop(work(settings))
    elif settings.listen_fd is None and (
        command == "serve" or settings.resolved_http_workers() > 1
    ):
        from pacsflow.supervisor import supervise

        asyncio.run(_preflight(settings))  # one line from the supervisor, not one per child
        return supervise(settings, command)
    else:
        _on_uvloop(serve(settings, _HTTP_ROLES[command], command == "serve"))
    return 0


def _on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (libuv's event loop: less CPU per request and per chunk)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def started(settings: Settings, *, listen_for_outcomes: bool) -> Container:
    """The process's container, started; ``StartFailed`` names what cannot be used."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        container = build_container(settings)
        with _clients_quiet():
            await container.start(listen_for_outcomes=listen_for_outcomes)
    except ServiceUnavailable as exc:
        backend = next((n for t, n in _BACKENDS.items() if isinstance(exc, t)), "a backend")
        raise StartFailed(f"{backend} cannot be used: {_one_line(exc)}") from exc
    except (OSError, ValueError) as exc:
        raise StartFailed(_one_line(exc)) from exc
    return container


@contextlib.contextmanager
def _clients_quiet() -> Iterator[None]:
    """Silence the backend clients' own retry logs (tracebacks among them) while the adapters
    start: a failure reaches the operator once, as the adapter's error in ``StartFailed``."""
    loggers = [logging.getLogger(name) for name in _CLIENT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def _preflight(settings: Settings) -> None:
    """Start and close the worker's backends once, so that an unusable one stops the start."""
    container = await started(settings, listen_for_outcomes=False)
    await container.close()


async def serve(settings: Settings, roles: Sequence[str], processors: bool) -> None:
    """Run the HTTP ``roles`` (and, for ``serve``, the ingest processor) until interrupted."""
    from services.app import create_app
    from services.limits import timed_protocol
    from streams.runner import run_ingest_processor
    from streams.thumbnails import run_thumbnail_processor

    container = await started(settings, listen_for_outcomes="stow" in roles)
    stop = asyncio.Event()
    processing = processors and settings.processors and settings.listen_fd is None
    processor = (
        asyncio.create_task(run_ingest_processor(container.bus, container.ingest_context, stop))
        if processing
        else None
    )
    thumbnails = (
        asyncio.create_task(
            run_thumbnail_processor(container.bus, container.index, container.objects, stop)
        )
        if processing
        else None
    )
    # One upkeep per server: its relay and sweep cover every worker (one store), and each
    # subscriber hears one SCP Status Change per restart (PS3.4 CC.2.4.3), not one per worker.
    upkeep = (
        asyncio.create_task(container.ups.upkeep.run(stop))
        if "ups" in roles and settings.http_worker == 0
        else None
    )
    config = uvicorn.Config(
        create_app(container, roles),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's records go to the handler of pacsflow.telemetry.logs
        access_log=False,  # services.requests writes the access log, without PHI
        lifespan="off",
        timeout_graceful_shutdown=10,
        http=timed_protocol(  # slow or stalled clients time out (services/limits.py)
            settings.http_header_timeout_seconds, settings.http_send_timeout_seconds
        ),
        ssl_certfile=settings.tls_cert_file or None,  # TLS by certificate files (security.md)
        ssl_keyfile=settings.tls_key_file or None,
    )
    server = uvicorn.Server(config)
    log.info(
        "pacsflow %s serving %s on %s://%s:%d/dicom-web (pid %d)",
        __version__,
        "+".join(roles),
        "https" if settings.tls_cert_file else "http",
        settings.host,
        settings.port,
        os.getpid(),
    )
    # uvicorn handles SIGINT/SIGTERM while it serves, then restores the previous handlers and
    # raises the signal again: with the default handlers that would kill the process before
    # the backends below are closed. These handlers let the shutdown finish instead.
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, _shutting_down)
    inherited = None if settings.listen_fd is None else [socket.socket(fileno=settings.listen_fd)]
    try:
        await server.serve(sockets=inherited)
    finally:
        stop.set()
        for task in (processor, thumbnails):
            if task is not None:
                await task
        if upkeep is not None:
            await upkeep
        await container.close()


def _shutting_down(signum: int, frame: object) -> None:
    """A signal after uvicorn stopped: the shutdown is already under way."""
    log.info("signal %d: shutting down", signum)


async def work(settings: Settings) -> None:
    """Run the ingest and thumbnail processors until interrupted (SIGINT/SIGTERM):
    ``ingest_concurrency`` batch loops over this worker's share of the ingest partitions
    (``pacsflow.supervisor.shard``), and one thumbnail loop over its share of ``events``."""
    from pacsflow.supervisor import shard
    from streams.runner import run_ingest_processor
    from streams.thumbnails import run_thumbnail_processor

    container = await started(settings, listen_for_outcomes=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loops = settings.ingest_concurrency
    log.info(
        "pacsflow %s ingest worker %d of %d, %d batches at a time (pid %d)",
        __version__,
        settings.ingest_worker + 1,
        settings.ingest_workers,
        loops,
        os.getpid(),
    )
    shards = [
        shard(settings.ingest_worker * loops + j, settings.ingest_workers * loops)
        for j in range(loops)
    ]
    try:
        await asyncio.gather(
            *(
                run_ingest_processor(container.bus, container.ingest_context, stop, partitions=p)
                for p in shards
            ),
            run_thumbnail_processor(
                container.bus,
                container.index,
                container.objects,
                stop,
                partitions=shard(settings.ingest_worker, settings.ingest_workers),
            ),
        )
    finally:
        await container.close()
