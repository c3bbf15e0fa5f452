"""The disk's own speed, measured in the same run as ingest: sequential write + fsync.

``sequential_write`` writes ``size`` bytes of incompressible data to a new file in ``directory``
(on the file system the servers store on) in 8 MiB writes, fsyncs it and its directory, and
times the whole: the bandwidth a server that writes each byte once and makes it durable can
reach at best. ``cpu_seconds`` adds up the CPU time of a process tree, to tell how many cores a
server kept busy.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Final

import psutil

__all__ = ["cpu_seconds", "sequential_write"]

CHUNK: Final = 8 * 1024 * 1024


def sequential_write(directory: Path, size: int = 1024**3) -> float:
    """MB/s (10^6 bytes) of writing ``size`` bytes to a new file and fsyncing it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"disk-bandwidth-{os.getpid()}.bin"
    chunk = os.urandom(CHUNK)
    try:
        started = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            written = 0
            while written < size:
                written += os.write(fd, chunk[: min(CHUNK, size - written)])
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        seconds = time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)
    return size / 1e6 / seconds


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` and their live descendants, plus
    what their waited-for children used."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
                if process is root:
                    total += times.children_user + times.children_system
    return total
