"""The servers of the WADO-RS benchmark and what they hold: start, store, reuse, stop.

pacsflow runs from a source snapshot (``git archive`` of a commit, so the tree under test does
not change during a run); Orthanc with its DICOMweb plugin (bench/servers.py). Each server's
data directory keeps ``bench-load.json``: which data sets it stored (and how long that took)
or refused, for the data's seed/scale and the server's code, so ``--reuse`` can skip stores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from bench.harness import output
from bench.servers import Server, orthanc_version, start_orthanc, start_pacsflow
from bench.wado_data import DATA_VERSION, DataSet
from bench.wado_load import stow_to_orthanc, stow_to_pacsflow
from bench.wado_report import LoadRow

__all__ = ["ROLES", "Stores", "describe_source", "snapshot", "versions"]

ROLES: Final = (
    "metadata",
    "mf-native-500",
    "mf-native-2",
    "mf-jls-500",
    "mf-jls-2",
    "mf-large",
    "ct",
    "big",
)
PACSFLOW_SETTINGS: Final = {"PACSFLOW_STOW_TIMEOUT_SECONDS": "1800"}
COMMIT_FILE: Final = "SNAPSHOT_COMMIT"


def snapshot(repo: Path, work: Path, log: Callable[[str], None]) -> Path:
    """``git archive HEAD`` of ``repo`` in ``work/src-<commit>`` (made once per commit)."""
    commit = output("git", "-C", str(repo), "rev-parse", "HEAD")
    if not commit:
        raise SystemExit(f"{repo} is not a git checkout: pass --source")
    target = work / f"src-{commit[:7]}"
    if not (target / COMMIT_FILE).is_file():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "-C", str(repo), "archive", "HEAD"], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit("git archive failed")
        (target / COMMIT_FILE).write_text(commit + "\n")
        log(f"source: snapshot of {commit[:10]} in {target}")
    return target


def describe_source(source: Path) -> str:
    """Where the served pacsflow comes from, and what the server process imports."""
    marker = source / COMMIT_FILE
    commit = (
        marker.read_text().strip()[:10]
        if marker.is_file()
        else output("git", "-C", str(source), "rev-parse", "--short", "HEAD") or "unknown"
    )
    imported = output(
        sys.executable,
        "-c",
        "import pacsflow; print(pacsflow.__version__, pacsflow.__file__)",
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
    )
    return f"{source} (commit {commit}); the server imports pacsflow {imported}"


def _code_fingerprint(server: str, source: Path) -> str:
    if server == "orthanc":
        return " ".join(output("dpkg-query", "-W", "orthanc", "orthanc-dicomweb").split())
    digest = hashlib.sha256()
    for path in sorted((source / "pacsflow").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Stores:
    """The servers under test, their data directories and what each stored."""

    def __init__(
        self,
        servers: Sequence[str],
        dirs: dict[str, Path],
        source: Path,
        data: DataSet,
        log: Callable[[str], None],
    ) -> None:
        self.servers = list(servers)
        self.dirs = dirs
        self.source = source
        self.data = data
        self.log = log
        self.running: dict[str, Server] = {}
        self.problems: list[str] = []
        self.version_rows: list[tuple[str, str]] = []
        self.reused: list[str] = []  # servers whose stored data came from an earlier run
        self._manifests: dict[str, dict[str, Any]] = {}

    def _wanted(self, server: str) -> dict[str, Any]:
        scale = asdict(self.data.scale)
        return {
            "data": [DATA_VERSION, self.data.seed, scale],
            "code": _code_fingerprint(server, self.source),
        }

    def _save(self, server: str) -> None:
        manifest = self.dirs[server] / "bench-load.json"
        manifest.write_text(json.dumps(self._manifests[server], indent=2))

    def stored(self, server: str) -> dict[str, float]:
        """Seconds each stored data set took, by role."""
        return dict(self._manifests.get(server, {}).get("stored", {}))

    def failed(self, server: str) -> dict[str, str]:
        """Why a data set could not be stored, by role."""
        return dict(self._manifests.get(server, {}).get("failed", {}))

    def start(self, server: str) -> Server:
        """Start one server over its data directory."""
        data_dir = self.dirs[server]
        if server == "pacsflow":
            started = start_pacsflow(data_dir, source=self.source, settings=PACSFLOW_SETTINGS)
        else:
            started = start_orthanc(data_dir)
        self.running[server] = started
        return started

    def stop_all(self) -> None:
        """Stop every server this object started."""
        for server in self.running.values():
            server.stop()
        self.running.clear()

    def _reusable(self, server: str, reuse: bool) -> dict[str, Any] | None:
        manifest = self.dirs[server] / "bench-load.json"
        if not reuse or not manifest.is_file():
            return None
        saved: dict[str, Any] = json.loads(manifest.read_text())
        wanted = self._wanted(server)
        return saved if all(saved.get(k) == v for k, v in wanted.items()) else None

    def prepare(self, reuse: bool) -> None:
        """Start each server and store what it does not hold yet; failures become problems."""
        for server in self.servers:
            manifest = self._reusable(server, reuse)
            if manifest is None:
                shutil.rmtree(self.dirs[server], ignore_errors=True)
                self.dirs[server].mkdir(parents=True)
                manifest = {**self._wanted(server), "stored": {}, "failed": {}}
            else:
                self.log(f"{server}: reusing the data in {self.dirs[server]}")
                self.reused.append(server)
            self._manifests[server] = manifest
            try:
                self.start(server)
            except RuntimeError as exc:
                self.problems.append(f"{server}: failed to start: {exc}")
                continue
            if server == "orthanc":
                self.version_rows.append(
                    ("Orthanc", orthanc_version(self.running[server].base_url))
                )
            self._store_missing(server)

    def _store_missing(self, server: str) -> None:
        manifest = self._manifests[server]
        for role in ROLES:
            specs = self.data.of(role)
            if not specs or role in manifest["stored"] or role in manifest["failed"]:
                continue
            size = sum(s.size for s in specs)
            self.log(f"{server}: storing {role}: {len(specs)} files, {size / 1e6:,.0f} MB")
            running = self.running[server]
            try:
                if server == "pacsflow":
                    seconds = stow_to_pacsflow(running.dicomweb_root, specs, self.log)
                else:
                    seconds = stow_to_orthanc(running.base_url, specs, self.log)
                manifest["stored"][role] = seconds
                self.log(f"{server}: stored {role} in {seconds:.1f}s")
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:300]}"
                manifest["failed"][role] = reason
                self.problems.append(f"{server}: storing {role} failed: {reason}")
                self.log(f"{server}: storing {role} FAILED: {reason}")
                if running.process.poll() is not None:
                    self.running.pop(server)
                    self.start(server)
            self._save(server)

    def load_rows(self) -> list[LoadRow]:
        """One row per data set: files, size and each server's store time (or failure)."""
        rows = []
        for role in ROLES:
            specs = self.data.of(role)
            if not specs:
                continue
            first = specs[0]
            rows.append(
                LoadRow(
                    role,
                    _describe(role, self.data),
                    len(specs),
                    sum(s.size for s in specs),
                    first.transfer_syntax,
                    {s: self.stored(s).get(role) for s in self.servers},
                    {s: "**failed**" for s in self.servers if role in self.failed(s)},
                )
            )
        return rows


def _describe(role: str, data: DataSet) -> str:
    rows = data.scale.frame_rows
    spec = data.of(role)[0]
    return {
        "metadata": "CT Image, 64x64 (series metadata)",
        "ct": "CT Image, 512x512 (series retrieval)",
        "big": f"multi-frame, {spec.frames} frames of 512x512 each (memory)",
    }.get(role, f"multi-frame, {spec.frames} frames of {rows}x{rows} (frames)")


def versions(stores: Stores) -> list[tuple[str, str]]:
    """Version rows for the report (Orthanc's as it answered when started)."""
    return list(stores.version_rows)
