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
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from pacsflow import __version__
from pacsflow.auth.exposure import exposure_problem
from pacsflow.config import HTTP_ROLES, Settings, variable_name
from pacsflow.container import Container, build_container, kafka_security
from pacsflow.export.command import add_export_parser, run_export
from pacsflow.importer.command import add_import_parser, run_import
from pacsflow.reindex.command import add_reindex_parser, run_reindex
from pacsflow.startup import StartFailed, data_dir_usable, started, started_when_ready
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

        # Faust would retry an unreachable broker forever, unseen: wait here, saying why
        if not asyncio.run(_worker_backends_answer(settings)):
            return 0  # stopped by a signal while waiting
        app = create_faust_app(
            settings.resolved_bus_url(),
            lambda: build_container(settings),
            security=kafka_security(settings.bus),
            health_port=settings.worker_health_port,
            health_host=settings.host,
            session_timeout=settings.bus.session_timeout_ms / 1000,
            group_instance_id=settings.bus.group_instance_id,
            fetch_max_wait_ms=settings.bus.fetch_max_wait_ms,
        )
        run_faust_worker(app, settings.log_level, settings.log_format)
    elif command == "worker":
        _on_uvloop(work(settings))
    elif settings.listen_fd is None and (
        command == "serve" or settings.resolved_http_workers() > 1
    ):
        from pacsflow.supervisor import supervise

        # one line from the supervisor, not one per child
        if command == "serve":
            asyncio.run(_preflight(settings))
        else:  # a pipeline role's children wait for the backends (pacsflow.startup)
            data_dir_usable(settings)
        return supervise(settings, command)
    else:
        _on_uvloop(serve(settings, _HTTP_ROLES[command], command == "serve"))
    return 0


def _on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (libuv's event loop: less CPU per request and per chunk)."""
    import uvloop

    _fewer_collections()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _fewer_collections() -> None:
    """Leave the modules loaded so far out of the cyclic garbage collector's passes, and run
    its young generation every 20,000 allocations instead of 700: ingest allocates many
    short-lived objects (pydicom's elements, DICOM JSON), which reference counting frees."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


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

    inherited = None if settings.listen_fd is None else socket.socket(fileno=settings.listen_fd)
    if processors:  # pacsflow serve: its supervisor already refused unusable backends
        container = await started(settings, listen_for_outcomes="stow" in roles)
    else:  # a pipeline role waits, not ready, until its backends answer
        _signals_end_serving()  # the waiting server's signal ends the wait
        inherited = inherited or _bound(settings.host, settings.port)
        waited = await _when_backends_answer(
            settings, roles, inherited, listen_for_outcomes="stow" in roles
        )
        if waited is None:
            return
        container = waited
    if settings.started_dir is not None:  # readiness counts the started HTTP workers
        (settings.started_dir / str(settings.http_worker)).touch()
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
    _signals_end_serving()
    try:
        await server.serve(sockets=None if inherited is None else [inherited])
    finally:
        stop.set()
        for task in (processor, thumbnails):
            if task is not None:
                await task
        if upkeep is not None:
            await upkeep
        await container.close()


def _signals_end_serving() -> None:
    """uvicorn handles SIGINT/SIGTERM while it serves, then restores the previous handlers and
    raises the signal again: with the default handlers that would kill the process before
    the backends are closed. These handlers let the shutdown finish instead."""
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, _shutting_down)


def _bound(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, bound as uvicorn binds it."""
    config = uvicorn.Config(app="", host=host, port=port, log_config=None)  # app: not loaded
    return config.bind_socket()


async def _when_backends_answer(
    settings: Settings,
    roles: Sequence[str],
    listening: socket.socket | None,
    *,
    listen_for_outcomes: bool,
) -> Container | None:
    """The container, started once the backends answer (``pacsflow.startup``); meanwhile
    ``listening`` serves ``services.health.waiting_app`` (readiness 503 saying why).
    None when a signal ended the wait."""
    from services.health import waiting_app

    waiting: dict[str, str] = {}
    start = asyncio.create_task(
        started_when_ready(settings, waiting, listen_for_outcomes=listen_for_outcomes)
    )
    if listening is None:
        return await start
    config = uvicorn.Config(
        waiting_app(roles, waiting),
        log_level=settings.log_level,
        log_config=None,  # uvicorn's records go to the handler of pacsflow.telemetry.logs
        lifespan="off",
        timeout_graceful_shutdown=1,
        ssl_certfile=settings.tls_cert_file or None,
        ssl_keyfile=settings.tls_key_file or None,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening.dup()]))  # keeps ``listening``
    await asyncio.wait({start, serving}, return_when=asyncio.FIRST_COMPLETED)
    if not start.done():  # the waiting server stopped: a signal
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await start
        return None
    server.should_exit = True
    await serving
    return start.result()


async def _worker_backends_answer(settings: Settings) -> bool:
    """Wait for the Faust worker's backends to answer, its health port (if any) answering
    meanwhile; whether they do (False: a signal ended the wait)."""
    port = settings.worker_health_port
    listening = _bound(settings.host, port) if port else None
    # with a waiting server, a signal stops it (and the wait); without, it ends the process
    signals = (signal.SIGINT, signal.SIGTERM) if listening is not None else ()
    handlers = [signal.signal(s, _shutting_down) for s in signals]
    try:
        container = await _when_backends_answer(
            settings, ("worker",), listening, listen_for_outcomes=False
        )
    finally:
        if listening is not None:
            listening.close()  # Faust's web server listens there next
        for sig, handler in zip(signals, handlers, strict=True):
            signal.signal(sig, handler)
    if container is None:
        return False
    await container.close()
    return True


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

    waited = await _when_backends_answer(settings, ("worker",), None, listen_for_outcomes=False)
    assert waited is not None  # without a listening socket the wait ends only when started
    container = waited
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
