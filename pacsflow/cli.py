"""The ``pacsflow`` command.

``pacsflow serve`` runs the embedded archive in one process; ``pacsflow stow|qido|wado|ups`` run
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
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from pacsflow import __version__
from pacsflow.config import Settings, variable_name
from pacsflow.container import Container, build_container, kafka_security
from pacsflow.errors import (
    BusUnavailable,
    IndexUnavailable,
    ObjectStoreUnavailable,
    ServiceUnavailable,
)

__all__ = ["main"]

log = logging.getLogger("pacsflow")

_HTTP_ROLES = {
    "serve": ("stow", "qido", "wado", "ups"),
    "stow": ("stow",),
    "qido": ("qido",),
    "wado": ("wado",),
    "ups": ("ups",),
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


class StartFailed(Exception):
    """A backend or the data directory cannot be used at start: one line for the operator."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pacsflow`` command.

    Exits 2 on an invalid configuration and 1 when a backend cannot be used at start, after
    one line on stderr that names the setting (no traceback).
    """
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
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        print(f"pacsflow {args.command}: invalid configuration: {problems}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            _run(args.command, settings)
    except StartFailed as exc:
        print(f"pacsflow {args.command}: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One validation error as ``VARIABLE: reason`` (a reason that names it stays as it is)."""
    reason = message.removeprefix("Value error, ")
    return reason if reason.startswith("PACSFLOW_") else f"{variable_name(loc)}: {reason}"


def _run(command: str, settings: Settings) -> None:
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
        run_faust_worker(app, settings.log_level)
    elif command == "worker":
        asyncio.run(work(settings))
    else:
        asyncio.run(serve(settings, _HTTP_ROLES[command], command == "serve"))


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
    from streams.runner import run_ingest_processor
    from streams.thumbnails import run_thumbnail_processor

    container = await started(settings, listen_for_outcomes="stow" in roles)
    stop = asyncio.Event()
    processing = processors and settings.processors
    processor = (
        asyncio.create_task(
            run_ingest_processor(container.bus, container.ingest_context, container.objects, stop)
        )
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
    upkeep = asyncio.create_task(container.ups.upkeep.run(stop)) if "ups" in roles else None
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
    try:
        await server.serve()
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
    """Run the ingest and thumbnail processors until interrupted (SIGINT/SIGTERM)."""
    import signal

    from streams.runner import run_ingest_processor
    from streams.thumbnails import run_thumbnail_processor

    container = await started(settings, listen_for_outcomes=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("pacsflow %s ingest worker (pid %d)", __version__, os.getpid())
    bus, index, objects = container.bus, container.index, container.objects
    try:
        await asyncio.gather(
            run_ingest_processor(bus, container.ingest_context, objects, stop),
            run_thumbnail_processor(bus, index, objects, stop),
        )
    finally:
        await container.close()
