"""Start and stop the servers under test: ``pacsflow serve`` and Orthanc with its DICOMweb plugin.

Each server is a child process in its own session, logging to a file in its work directory;
``stop`` ends that process (SIGTERM, then SIGKILL after a grace period) and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

import pacsflow

__all__ = [
    "Server",
    "dir_size",
    "free_port",
    "orthanc_plugin",
    "pacsflow_source",
    "start_orthanc",
    "start_pacsflow",
]

READY_TIMEOUT = 120.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dir_size(*paths: Path) -> int:
    """Bytes in the given files and directories (recursively); missing paths count 0."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total


@dataclass
class Server:
    """A running server process and the DICOMweb root it answers on."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    dicomweb_root: str
    log_path: Path

    def wait_ready(self, probe_path: str, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``probe_path`` until it answers 200; fail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                    )
                try:
                    if client.get(probe_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self, grace: float = 30.0) -> None:
        """End this server's process (its own session: the process group it leads)."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(grace)


def _spawn(
    argv: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def pacsflow_source() -> Path:
    """The directory holding the ``pacsflow`` package this process imported."""
    return Path(pacsflow.__file__).resolve().parent.parent


def start_pacsflow(
    data_dir: Path,
    port: int | None = None,
    *,
    source: Path | None = None,
    settings: dict[str, str] | None = None,
) -> Server:
    """``pacsflow serve`` on 127.0.0.1 over ``data_dir`` (its index.sqlite and objects),
    running the same pacsflow source as this process (which loaded the index) unless
    ``source`` names another checkout; ``settings`` adds ``PACSFLOW_*`` variables."""
    port = port or free_port()
    source = source or pacsflow_source()
    path = os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "PACSFLOW_DATA_DIR": str(data_dir),
        "PACSFLOW_PORT": str(port),
        "PACSFLOW_HOST": "127.0.0.1",
        "PACSFLOW_LOG_LEVEL": "warning",
        **(settings or {}),
    }
    log_path = data_dir / "pacsflow.log"
    process = _spawn([sys.executable, "-m", "pacsflow", "serve"], env, log_path, cwd=source)
    base = f"http://127.0.0.1:{port}"
    server = Server("pacsflow", process, base, f"{base}/dicom-web", log_path)
    server.wait_ready("/health")
    return server


def orthanc_plugin() -> Path:
    """The DICOMweb plugin library that the ``orthanc-dicomweb`` package installed."""
    listing = subprocess.run(
        ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=False
    ).stdout.split()
    libraries = [Path(p) for p in listing if ".so" in Path(p).name and Path(p).is_file()]
    if not libraries:
        raise RuntimeError(
            "the Orthanc DICOMweb plugin is not installed: apt-get install -y orthanc "
            "orthanc-dicomweb"
        )
    return sorted(libraries, key=lambda p: len(p.name))[0]


def orthanc_config(work_dir: Path, http_port: int, dicom_port: int) -> dict[str, object]:
    """An Orthanc configuration confined to ``work_dir`` and the loopback clients."""
    return {
        "Name": "PACSFLOW-BENCH",
        "StorageDirectory": str(work_dir / "storage"),
        "IndexDirectory": str(work_dir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "SaveJobs": False,
        "StorageCompression": False,
        "KeepAlive": True,
        "TcpNoDelay": True,
        "Plugins": [str(orthanc_plugin())],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }


def start_orthanc(work_dir: Path, http_port: int | None = None) -> Server:
    """Orthanc with the DICOMweb plugin, its storage and index under ``work_dir``."""
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).exists():
        raise RuntimeError("Orthanc is not installed: apt-get install -y orthanc orthanc-dicomweb")
    http_port = http_port or free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "orthanc.json"
    config = orthanc_config(work_dir, http_port, free_port())
    config_path.write_text(json.dumps(config, indent=2))
    log_path = work_dir / "orthanc.log"
    process = _spawn([binary, str(config_path)], dict(os.environ), log_path)
    base = f"http://127.0.0.1:{http_port}"
    server = Server("orthanc", process, base, f"{base}/dicom-web", log_path)
    server.wait_ready("/system")
    return server
