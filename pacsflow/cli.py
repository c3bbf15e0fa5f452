"""The ``pacsflow`` command; ``pacsflow serve`` runs the embedded archive in one process.

This module is the composition root: the one place in the core allowed to import ``services``
and ``streams`` (the import-linter contract lists the exception).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from pacsflow import __version__
from pacsflow.config import Settings
from pacsflow.container import build_container

__all__ = ["main"]

log = logging.getLogger("pacsflow")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pacsflow", description="pacsflow DICOMweb archive")
    parser.add_argument("--version", action="version", version=f"pacsflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run every service and the ingest processor in one process (embedded)"
    )
    serve.add_argument("--host", help="listen address (PACSFLOW_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (PACSFLOW_PORT, default 8080)")
    serve.add_argument(
        "--data-dir", type=Path, help="data directory (PACSFLOW_DATA_DIR, default ./pacsflow-data)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pacsflow`` command."""
    args = _parser().parse_args(argv)
    overrides = {
        key: value
        for key, value in (("host", args.host), ("port", args.port), ("data_dir", args.data_dir))
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"pacsflow: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings))
        return 0
    return 2


async def serve(settings: Settings) -> None:
    """Run the embedded archive until interrupted."""
    from services.app import create_app
    from streams.runner import run_ingest_processor

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = build_container(settings)
    await container.start()
    stop = asyncio.Event()
    processor = (
        asyncio.create_task(
            run_ingest_processor(container.bus, container.ingest_context, container.objects, stop)
        )
        if settings.processors
        else None
    )
    config = uvicorn.Config(
        create_app(container),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    log.info(
        "pacsflow %s serving http://%s:%d/dicom-web (data in %s, pid %d)",
        __version__,
        settings.host,
        settings.port,
        settings.data_dir.resolve(),
        os.getpid(),
    )
    try:
        await server.serve()
    finally:
        stop.set()
        if processor is not None:
            await processor
        await container.close()
