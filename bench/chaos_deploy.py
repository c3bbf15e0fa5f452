"""The deployments the chaos trials kill parts of (issue 23 item 2), as real processes on
loopback, each part restartable on its own data and port.

``Pipeline``: SeaweedFS (S3, on disk), Tansu keeping its log in SeaweedFS, osmem (the
Elasticsearch protocol, in memory: a restart is a wiped index, rebuilt by ``pacsflow
reindex``), one ``pacsflow worker`` (Faust) and the ``stow``, ``qido`` and ``wado`` roles.
``Embedded``: ``pacsflow serve`` on one data directory. Every process is stopped by ``stop``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from osmem_server import resolve_binary

from pacsflow.config import Settings
from tests.support.durable import seaweedfs_ports, start_seaweedfs, start_tansu_on_s3
from tests.support.servers import (
    free_port,
    pipeline_env,
    start_server,
    start_worker,
    stop_process,
    wait_http,
)

__all__ = ["EMBEDDED", "PIPELINE", "Embedded", "Pipeline", "settings_of"]

PIPELINE: Final = ("broker", "store", "index", "worker", "stow", "qido", "wado")
EMBEDDED: Final = ("serve",)
ROLES: Final = ("stow", "qido", "wado")
_START_ORDER: Final = ("store", "index", "broker", "worker", *ROLES)  # Tansu keeps its log in S3
WORKER_READY: Final = b"[^Worker]: Ready"
# small enough that the CT template (524 KB) is staged (claim check), the MR (131 KB) inline
INLINE_MAX_BYTES: Final = "262144"
STOW_TIMEOUT_SECONDS: Final = "20"
# a killed worker's partitions wait for the group to expire its session: Faust's 60 s made
# each worker trial's recovery about 112 s on Tansu, 10 s makes it about 15 s
# (docs/reliability.md, "Worker recovery")
SESSION_TIMEOUT_MS: Final = "10000"


def settings_of(env: dict[str, str], data_dir: Path) -> Settings:
    """The ``Settings`` of a deployment's ``PACSFLOW_*`` environment and data directory."""
    values = {k.removeprefix("PACSFLOW_").lower(): v for k, v in env.items()}
    return Settings.model_validate({**values, "data_dir": data_dir})


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port_free(port: int, seconds: float = 30) -> None:
    """Bounded wait for ``port`` to be free again (children of a killed process exit)."""
    deadline = time.monotonic() + seconds
    while not _port_free(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still in use {seconds:.0f} s after a kill")
        time.sleep(0.1)


class Pipeline:
    """The pipeline deployment on durable SeaweedFS and Tansu, osmem as the index."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.s3_ports = seaweedfs_ports()
        self.kafka, self.es = free_port(), free_port()
        self.ports = {role: free_port() for role in ROLES}
        s3 = f"127.0.0.1:{self.s3_ports[0]}"
        self.env = pipeline_env(
            f"127.0.0.1:{self.kafka}",
            s3,
            f"http://127.0.0.1:{self.es}",
            "chaos",
            http_workers="1",
            stow_timeout_seconds=STOW_TIMEOUT_SECONDS,
            inline_max_bytes=INLINE_MAX_BYTES,  # (the worker logs "Ready" at INFO)
            kafka_session_timeout_ms=SESSION_TIMEOUT_MS,
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.incarnation = 0
        self.started: set[str] = set()
        self.reindex_log = root / "reindex.log"
        self.reindexed: tuple[int, float] | None = None  # the last reindex: instances, seconds

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}/dicom-web"

    def settings(self) -> Settings:
        """The deployment's configuration (to open its backends with pacsflow's adapters)."""
        return settings_of(self.env, self.root / "verify")

    def start(self) -> None:
        for component in _START_ORDER:
            self.restart(component)
        self.wait_worker()

    def kill(self, component: str) -> None:
        """SIGKILL the component's process."""
        stop_process(self.processes.pop(component), signal.SIGKILL)
        if component in ROLES:
            wait_port_free(self.ports[component])

    def restart(self, component: str) -> None:
        """Start the component again on its data and port; ``index``: osmem (empty) and
        ``pacsflow reindex``; the roles once they answer, the worker at once."""
        self.incarnation += 1
        if component == "store":
            self.processes[component] = start_seaweedfs(self.root / "seaweedfs", self.s3_ports)
        elif component == "broker":
            s3 = f"127.0.0.1:{self.s3_ports[0]}"
            self.processes[component] = start_tansu_on_s3(self.root, s3, "log", self.kafka)
        elif component == "index":
            self.processes[component] = self._osmem()
            if component in self.started:  # not the first start: rebuild what was lost
                self.reindex()
        elif component == "worker":
            log = self.root / f"worker-{self.incarnation}.log"
            self.worker_log = log
            self.processes[component] = start_worker(self.root / "worker", log, self.env)
        else:
            server = start_server(self.root / component, self.env, component, self.ports[component])
            self.processes[component] = server.process
        self.started.add(component)

    def exited(self) -> list[str]:
        """The components whose process has ended (unasked: a fault spread)."""
        return [c for c, p in self.processes.items() if p.poll() is not None]

    def wait_worker(self, seconds: float = 240) -> None:
        """Bounded wait for the Faust worker to have joined its group."""
        deadline = time.monotonic() + seconds
        while WORKER_READY not in self.worker_log.read_bytes():
            process = self.processes["worker"]
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker is not ready: {self.worker_log.read_text()[-3000:]}"
                )
            time.sleep(0.2)

    def reindex(self) -> None:
        """``pacsflow reindex`` of the whole object store into the (wiped) index; its count
        and seconds in ``reindexed``."""
        argv = [sys.executable, "-m", "pacsflow", "reindex", "--data-dir", str(self.root / "ri")]
        started = time.monotonic()
        with self.reindex_log.open("ab") as out:
            done = subprocess.run(
                argv, stdout=subprocess.PIPE, stderr=out, env={**os.environ, **self.env},
                timeout=900, check=False,
            )  # fmt: skip
            out.write(done.stdout)
        if done.returncode != 0:
            raise RuntimeError(f"pacsflow reindex failed: {self.reindex_log.read_text()[-3000:]}")
        count = re.search(rb"^reindex complete: (\d+) instances", done.stdout, re.MULTILINE)
        self.reindexed = (int(count[1]) if count else -1, time.monotonic() - started)

    def _osmem(self) -> subprocess.Popen[bytes]:
        log = self.root / "osmem.log"
        command = [resolve_binary(), "-addr", f"127.0.0.1:{self.es}", "-no-stdin-watch"]
        with log.open("ab") as out:
            process = subprocess.Popen(
                [*command, "-parent-pid", str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_http(process, f"http://127.0.0.1:{self.es}/", "osmem-server", log)
        return process

    def stop(self) -> None:
        for component in reversed(_START_ORDER):
            process = self.processes.pop(component, None)
            if process is not None:
                stop_process(process, timeout=20)


class Embedded:
    """``pacsflow serve`` on one data directory (one HTTP worker, one ingest worker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.env = {"PACSFLOW_HTTP_WORKERS": "1", "PACSFLOW_LOG_LEVEL": "warning"}
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def settings(self) -> Settings:
        return settings_of(self.env, self.root / "data")

    def start(self) -> None:
        self.restart("serve")

    def kill(self, component: str) -> None:
        """SIGKILL the supervisor (its children die with it: PR_SET_PDEATHSIG)."""
        assert self.process is not None
        stop_process(self.process, signal.SIGKILL)
        self.process = None
        wait_port_free(self.port)

    def exited(self) -> list[str]:
        return ["serve"] if self.process is not None and self.process.poll() is not None else []

    def restart(self, component: str) -> None:
        self.process = start_server(self.root / "data", self.env, "serve", self.port).process

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=30)
            self.process = None
