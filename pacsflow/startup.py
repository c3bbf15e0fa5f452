"""Starting a process's backends: at once (``pacsflow serve``) or waiting for them (pipeline).

``pacsflow serve`` refuses to start with one line when a backend cannot be used: on one host
that is a misconfiguration to fix. A pipeline process (``pacsflow stow|qido|wado|ups|commitment``
and ``pacsflow worker``) started before its broker, object store or index answers waits and
retries instead (issue 23): exiting would only make its pod restart in a loop, while waiting
lets its readiness say what it waits for (``services.health.waiting_app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, MutableMapping

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from pacsflow.errors import (
    BusUnavailable,
    IndexUnavailable,
    ObjectStoreUnavailable,
    ServiceUnavailable,
)

__all__ = ["StartFailed", "data_dir_usable", "started", "started_when_ready"]

log = logging.getLogger("pacsflow")

BACKENDS: dict[type[ServiceUnavailable], tuple[str, str]] = {
    BusUnavailable: ("bus", "the bus (PACSFLOW_BUS_URL)"),
    ObjectStoreUnavailable: ("objects", "the object store (PACSFLOW_OBJECT_STORE_URL)"),
    IndexUnavailable: ("index", "the index (PACSFLOW_INDEX_URL)"),
}
_CLIENT_LOGGERS = ("aiokafka", "kafka", "elastic_transport", "elasticsearch", "urllib3", "minio")
# Seconds between two attempts to start: doubling from the first to the last.
FIRST_RETRY = 0.5
LAST_RETRY = 10.0


class StartFailed(Exception):
    """A backend or the data directory cannot be used at start: one line for the operator."""

    def __init__(self, message: str, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend  # the ``Container.check`` name of the backend; "" for none


def data_dir_usable(settings: Settings) -> None:
    """Create the data directory if needed; ``StartFailed`` when it cannot be."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartFailed(_one_line(exc)) from exc


async def started(settings: Settings, *, listen_for_outcomes: bool) -> Container:
    """The process's container, started; ``StartFailed`` names what cannot be used."""
    data_dir_usable(settings)
    try:
        container = build_container(settings)
        with _clients_quiet():
            await container.start(listen_for_outcomes=listen_for_outcomes)
    except ServiceUnavailable as exc:
        key, backend = next(
            (found for t, found in BACKENDS.items() if isinstance(exc, t)),
            ("backends", "a backend"),
        )
        raise StartFailed(f"{backend} cannot be used: {_one_line(exc)}", key) from exc
    except (OSError, ValueError) as exc:
        raise StartFailed(_one_line(exc)) from exc
    return container


async def started_when_ready(
    settings: Settings, waiting: MutableMapping[str, str], *, listen_for_outcomes: bool
) -> Container:
    """The container, started once its backends answer: while one does not, ``waiting`` maps
    it to the reason (what readiness answers) and the start is tried again, every
    ``FIRST_RETRY`` doubling to ``LAST_RETRY`` seconds. A problem that is no backend's (the
    data directory) raises ``StartFailed`` at once."""
    pause = FIRST_RETRY
    while True:
        try:
            container = await started(settings, listen_for_outcomes=listen_for_outcomes)
        except StartFailed as exc:
            if not exc.backend:
                raise
            if waiting.get(exc.backend) != str(exc):
                log.warning("waiting for the backends: %s", exc)  # once per new reason
            waiting.clear()
            waiting[exc.backend] = str(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, LAST_RETRY)
            continue
        if waiting:
            log.info("the backends answer: starting")
        waiting.clear()
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
