"""WADO-RS timings on one server: request latency, series throughput, peak server memory.

Requests go one after the other over one keep-alive HTTP/1.1 connection (httpx), without
compression. Every measurement is checked first (untimed): a wrong or failed answer is
reported with the reason and not timed; nothing here raises for a server's failure.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import psutil

from bench.measure import Outcome

__all__ = [
    "Counted",
    "MemoryPeak",
    "Reader",
    "Row",
    "Throughput",
    "latency",
    "memory_while",
    "multipart_parts",
    "rss_tree",
]

Check = Callable[[str, httpx.Response], str | None]
_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)


def _boundary(content_type: str) -> bytes:
    found = _BOUNDARY.search(content_type)
    if not found:
        raise ValueError(f"no boundary in {content_type!r}")
    return found.group(1).encode()


def multipart_parts(response: httpx.Response) -> list[bytes]:
    """The payloads of a multipart body held in memory (part headers and delimiters removed)."""
    delimiter = b"--" + _boundary(response.headers.get("content-type", ""))
    pieces = response.content.split(delimiter)
    parts = []
    for piece in pieces[1:-1]:
        _headers, _, payload = piece.partition(b"\r\n\r\n")
        parts.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return parts


def latency(
    client: httpx.Client,
    server: str,
    name: str,
    targets: Sequence[str],
    accept: str,
    check: Check,
    warmup: int,
    repetitions: int,
    budget: float,
    extra: Mapping[str, str] | None = None,
) -> Outcome:
    """Check every distinct target, then time ``repetitions`` requests cycling through them.

    A request's time runs from sending it to having read the whole body; at most ``budget``
    seconds of timed requests (and a quarter of that warming up). ``extra``: more headers."""
    outcome = Outcome(name, server)
    headers = {"Accept": accept, "Accept-Encoding": "identity", **(extra or {})}
    try:
        sizes = []
        for target in dict.fromkeys(targets):
            response = client.get(target, headers=headers)
            outcome.error = check(target, response)
            if outcome.error:
                return outcome
            sizes.append(len(response.content))
        outcome.results = statistics.fmean(sizes)
        until = time.perf_counter() + budget / 4
        for i in range(warmup):
            if time.perf_counter() > until:
                break
            client.get(targets[i % len(targets)], headers=headers)
        until = time.perf_counter() + budget
        for i in range(repetitions):
            if time.perf_counter() > until:
                break
            target = targets[i % len(targets)]
            started = time.perf_counter()
            response = client.get(target, headers=headers)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                outcome.error = f"{target}: HTTP {response.status_code} at repetition {i}"
                return outcome
            outcome.samples_ms.append(elapsed * 1000)
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


@dataclass
class Row:
    """One latency measurement: its name, what each target was asked, each one's outcome."""

    name: str
    asked: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)


@dataclass
class Counted:
    """A response read to its end: status, bytes, multipart parts, seconds."""

    status: int
    size: int
    parts: int
    seconds: float
    text: str = ""


class Reader:
    """A lean client for long bodies: ``http.client`` reading into one reused 1 MiB buffer
    (httpx costs the client several times more CPU per byte, on a machine whose cores the
    servers need). One connection, kept alive while the server keeps it."""

    def __init__(self, dicomweb_root: str, timeout: float = 3600.0) -> None:
        url = urlsplit(dicomweb_root)
        self.prefix = url.path.rstrip("/")
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
        self.buffer = bytearray(1 << 20)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def _send(self, target: str, headers: dict[str, str]) -> http.client.HTTPResponse | None:
        """Send the GET and read the status line; ``None`` when the server closed the
        connection without answering (a kept-alive connection it timed out while idle, as
        uvicorn does after 5 s: what any HTTP client's pool retries)."""
        try:
            self.connection.request("GET", self.prefix + target, headers=headers)
            return self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()
            return None

    def read(self, target: str, accept: str, count: bool) -> Counted:
        """GET ``target`` to its end, discarding the bytes; with ``count``, count multipart
        parts on the way (delimiters, also across read boundaries)."""
        headers = {"Accept": accept, "Accept-Encoding": "identity"}
        started = time.perf_counter()
        reused = self.connection.sock is not None  # an open kept-alive connection, not a new one
        try:
            response = self._send(target, headers)
            if response is None and reused:  # the server had closed it while idle: a new one
                started = time.perf_counter()
                response = self._send(target, headers)
            if response is None:
                raise http.client.RemoteDisconnected("closed without a response")
            if response.status != 200:
                text = response.read()[:300].decode(errors="replace")
                return Counted(response.status, 0, 0, 0.0, text)
            content_type = response.getheader("content-type", "")
            delimiter = b"--" + _boundary(content_type) if count else b""
            size = delimiters = 0
            tail = b""
            view = memoryview(self.buffer)
            while got := response.readinto(self.buffer):
                size += got
                if count:
                    window = tail + bytes(view[:got])
                    delimiters += window.count(delimiter)
                    tail = window[-(len(delimiter) - 1) :]
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        return Counted(200, size, max(delimiters - 1, 0), time.perf_counter() - started)


@dataclass
class Throughput:
    """Whole-series retrievals: seconds per repetition, bytes and parts received."""

    name: str
    server: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the server's CPU seconds per repetition
    size: int = 0
    parts: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the retrieval answered right and was timed."""
        return self.error is None and bool(self.seconds)

    @property
    def median(self) -> float:
        """Median seconds of the repetitions."""
        return statistics.median(self.seconds)

    def rate(self, seconds: float) -> float:
        """MB/s (10^6 bytes) for a repetition of ``seconds``."""
        return self.size / seconds / 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants so far (0 if gone)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return total
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def throughput(
    readers: Mapping[str, Reader],
    pids: Mapping[str, int],
    name: str,
    target: str,
    accept: str,
    expect: Callable[[Counted], str | None],
    warmup: int,
    repetitions: int,
) -> list[Throughput]:
    """Per server one checked retrieval counting parts, then ``warmup`` untimed and
    ``repetitions`` timed ones, the servers taking turns (in alternating order)."""
    results = {server: Throughput(name, server) for server in readers}
    for server, reader in readers.items():
        result = results[server]
        try:
            first = reader.read(target, accept, count=True)
            result.error = expect(first)
            result.size, result.parts = first.size, first.parts
        except (OSError, http.client.HTTPException, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
    order = [server for server in readers if results[server].error is None]
    for i in range(warmup + repetitions):
        for server in order if i % 2 == 0 else order[::-1]:
            result = results[server]
            if result.error:
                continue
            try:
                cpu = cpu_seconds(pids[server])
                run = readers[server].read(target, accept, count=False)
                cpu = cpu_seconds(pids[server]) - cpu
            except (OSError, http.client.HTTPException) as exc:
                result.error = f"repetition {i}: {type(exc).__name__}: {exc}"
                continue
            if run.status != 200 or run.size != result.size:
                result.error = f"repetition {i}: HTTP {run.status}, {run.size:,} bytes"
            elif i >= warmup:
                result.seconds.append(run.seconds)
                result.cpu.append(cpu)
    return list(results.values())


def rss_tree(pid: int) -> int:
    """Resident set size of a process and all its descendants (bytes; gone ones count 0)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


@dataclass
class MemoryPeak:
    """RSS of a server (with children) before and during an operation."""

    server: str
    before: int = 0
    peak: int = 0
    samples: int = 0
    counted: Counted | None = None
    error: str | None = None


def memory_while(
    pid: int, server: str, operation: Callable[[], Counted], interval: float = 0.05
) -> MemoryPeak:
    """Sample ``pid``'s RSS tree every ``interval`` s while ``operation`` runs; the baseline
    is the highest of ten samples over the half second before it."""
    result = MemoryPeak(server)
    for _ in range(10):
        result.before = max(result.before, rss_tree(pid))
        time.sleep(interval)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result.peak = max(result.peak, rss_tree(pid))
            result.samples += 1
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result.counted = operation()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        stop.set()
        sampler.join()
    result.peak = max(result.peak, rss_tree(pid))
    return result
