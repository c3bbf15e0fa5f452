"""The ``pacsflow`` command.

``pacsflow serve`` runs the embedded archive in one process; ``pacsflow stow|qido|wado`` run
one HTTP service each and ``pacsflow worker`` runs the ingest processor (pipeline mode).

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
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from pacsflow import __version__
from pacsflow.config import Settings
from pacsflow.container import build_container, kafka_security

__all__ = ["main"]

log = logging.getLogger("pacsflow")

_HTTP_ROLES = {
    "serve": ("stow", "qido", "wado"),
    "stow": ("stow",),
    "qido": ("qido",),
    "wado": ("wado",),
}
_HELP = {
    "serve": "run every service and the ingest processor in one process (embedded)",
    "stow": "run the STOW-RS service only (pipeline mode)",
    "qido": "run the QIDO-RS service only (pipeline mode)",
    "wado": "run the WADO-RS service only (pipeline mode)",
    "worker": "run the ingest processor only (pipeline mode)",
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
            "--data-dir",
            type=Path,
            help="data directory (PACSFLOW_DATA_DIR, default ./pacsflow-data)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pacsflow`` command."""
    args = _parser().parse_args(argv)
    candidates = (
        ("host", getattr(args, "host", None)),
        ("port", getattr(args, "port", None)),
        ("data_dir", args.data_dir),
    )
    overrides = {key: value for key, value in candidates if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"pacsflow: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "worker" and settings.resolved_bus_url().startswith("kafka:"):
            from streams.faust_app import create_faust_app, run_faust_worker

            app = create_faust_app(
                settings.resolved_bus_url(),
                lambda: build_container(settings),
                security=kafka_security(settings),
                health_port=settings.worker_health_port,
                health_host=settings.host,
            )
            run_faust_worker(app, settings.log_level)
        elif args.command == "worker":
            _run(work(settings))
        elif settings.listen_fd is None and (
            args.command == "serve" or settings.resolved_http_workers() > 1
        ):
            from pacsflow.supervisor import supervise

            return supervise(settings, args.command)
        else:
            _run(serve(settings, _HTTP_ROLES[args.command], args.command == "serve"))
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (libuv's event loop: less CPU per request and per chunk)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve(settings: Settings, roles: Sequence[str], processors: bool) -> None:
    """Run the HTTP ``roles`` (and, for ``serve``, the ingest processor) until interrupted."""
    from services.app import create_app
    from streams.runner import run_ingest_processor

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = build_container(settings)
    await container.start(listen_for_outcomes="stow" in roles)
    stop = asyncio.Event()
    processor = (
        asyncio.create_task(run_ingest_processor(container.bus, container.ingest_context, stop))
        if processors and settings.processors and settings.listen_fd is None
        else None
    )
    config = uvicorn.Config(
        create_app(container, roles),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    log.info(
        "pacsflow %s serving %s on http://%s:%d/dicom-web (pid %d)",
        __version__,
        "+".join(roles),
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
        if processor is not None:
            await processor
        await container.close()


def _shutting_down(signum: int, frame: object) -> None:
    """A signal after uvicorn stopped: the shutdown is already under way."""
    log.info("signal %d: shutting down", signum)


async def work(settings: Settings) -> None:
    """Run the ingest processor until interrupted (SIGINT/SIGTERM)."""
    from pacsflow.supervisor import shard
    from streams.runner import run_ingest_processor

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = build_container(settings)
    await container.start(listen_for_outcomes=False)
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
            )
        )
    finally:
        await container.close()
