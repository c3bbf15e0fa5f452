"""``pacsflow serve`` on several cores: HTTP worker processes on one port, processors apart.

The supervisor binds one listening socket per HTTP worker on the one port (``SO_REUSEPORT``:
the kernel spreads new connections over the sockets, so a few keep-alive clients do not all
land on the worker that woke first; one shared socket where the option is missing) and starts
``PACSFLOW_HTTP_WORKERS`` HTTP workers that inherit one each, plus, for
``serve``, ``PACSFLOW_INGEST_WORKERS`` processor processes (``pacsflow worker``), each
consuming its share of the ingest topic's partitions. So the front end never waits on the
processor for CPU, and both cores work. The processes share the data directory: the embedded
bus journal and the index are SQLite in WAL mode (many readers, one writer at a time) and wake
each other up on publish (``pacsflow.adapters.bus_wakeups``). Each HTTP worker marks its
start in a directory the supervisor makes (``PACSFLOW_STARTED_DIR``), and ``/ready`` answers
200 only once every worker has (``services.health``): a pipeline role's workers each wait for
the backends, and one must not report the process ready while another still refuses requests.

SIGTERM or SIGINT is passed on to every child and waited for; a child that dies on its own
stops the others and the supervisor exits with status 1. On Linux each child is killed with
the supervisor (``PR_SET_PDEATHSIG``), so a killed supervisor leaves no process behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import FrameType

from pacsflow.config import Settings
from pacsflow.telemetry.metrics import multiprocess_dir

__all__ = ["listeners", "shard", "supervise"]

log = logging.getLogger("pacsflow")

_PR_SET_PDEATHSIG = 1
_GRACE_SECONDS = 30.0
_PARTITION_LIMIT = 1024  # beyond any partition count a journal or topic is given


def shard(worker: int, workers: int) -> list[int]:
    """The partitions processor ``worker`` of ``workers`` consumes (those that exist)."""
    return [p for p in range(_PARTITION_LIMIT) if p % workers == worker]


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port (``SO_REUSEPORT``), or one shared socket.

    A plain bind first: a port already in use (by anyone) fails here, as it would without
    the option, instead of being shared with another server.
    """
    probe = socket.create_server((host, port), backlog=2048)
    if count < 2 or not hasattr(socket, "SO_REUSEPORT"):
        return [probe] * max(count, 1)
    port = probe.getsockname()[1]
    probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(socket.create_server((host, port), backlog=2048, reuse_port=True))
    except BaseException:
        for opened in sockets:
            opened.close()
        raise
    return sockets


def supervise(settings: Settings, command: str) -> int:
    """Run ``command`` (``serve`` or an HTTP role) as worker processes; the exit status."""
    sockets = listeners(settings.host, settings.port, settings.resolved_http_workers())
    for listener in sockets:
        listener.set_inheritable(True)
    # each HTTP worker marks its start here: readiness waits for all of them (services.health)
    started = tempfile.mkdtemp(prefix="pacsflow-started-")
    base = {
        **os.environ,
        "PACSFLOW_STARTED_DIR": started,
        "PACSFLOW_HOST": settings.host,
        "PACSFLOW_PORT": str(settings.port),
        "PACSFLOW_DATA_DIR": str(settings.data_dir.absolute()),
    }
    if not base.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics of any worker sums them all
        base["PROMETHEUS_MULTIPROC_DIR"] = str(multiprocess_dir(settings.data_dir.absolute()))
    preexec = _die_with_parent()
    children: list[subprocess.Popen[bytes]] = []

    def spawn(role: str, env: dict[str, str], fds: tuple[int, ...] = ()) -> None:
        argv = [sys.executable, "-m", "pacsflow", role]
        children.append(
            subprocess.Popen(argv, env={**base, **env}, pass_fds=fds, preexec_fn=preexec)
        )

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, stop)
    try:
        for worker, listener in enumerate(sockets):
            fd = listener.fileno()
            env = {"PACSFLOW_LISTEN_FD": str(fd), "PACSFLOW_HTTP_WORKER": str(worker)}
            spawn(command, env, (fd,))
        if command == "serve" and settings.processors:
            workers = settings.ingest_workers
            for worker in range(workers):
                spawn("worker", {"PACSFLOW_INGEST_WORKER": str(worker)})
        log.info(
            "pacsflow %s on http://%s:%d/dicom-web: %d HTTP workers, %d processors (pid %d)",
            command,
            settings.host,
            settings.port,
            settings.resolved_http_workers(),
            len(children) - settings.resolved_http_workers(),
            os.getpid(),
        )
        for listener in sockets:
            listener.close()  # the workers hold them now
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        failed = not stopping
        if failed:
            log.error("a pacsflow worker process exited; stopping the others")
            stop(signal.SIGTERM, None)
        return _wait(children) or int(failed)
    finally:
        for listener in sockets:
            listener.close()
        shutil.rmtree(started, ignore_errors=True)


def _wait(children: list[subprocess.Popen[bytes]]) -> int:
    """Wait for every child (killing those that outlast the grace period); 1 if one failed."""
    deadline = time.monotonic() + _GRACE_SECONDS
    status = 0
    for child in children:
        try:
            code = child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        status = status or int(code not in (0, -signal.SIGTERM, -signal.SIGINT))
    return status
