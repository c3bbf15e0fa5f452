"""Soak: mixed load on ``pacsflow serve`` with slow clients, RSS and open files sampled.

``python -m bench.soak --minutes 30`` starts a fresh ``pacsflow serve`` on loopback and runs,
for that long: ``--clients`` clients each looping STOW of a new instance, QIDO, WADO-RS of the
instance, its metadata and a rendered JPEG; ``--slow`` slowloris clients that send a request
head a byte every two seconds and never finish it; and as many stalled readers that ask for a
study and read nothing. Every second it samples the server's process tree (the supervisor and
its workers): resident memory (VmRSS) and open file descriptors. At the end it prints a
minute-by-minute table, the least-squares slope of RSS and descriptors after the warm-up
(``--warmup`` fraction of the run), the requests answered by status, the slow clients cut off
by the server, and the normal clients' p99 latency, and writes it all as JSON (``--out``).

It is not part of the test suite (docs/reliability.md has a run's figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import pydicom
from pydicom.uid import generate_uid

from bench.servers import Server, start_pacsflow

CT = Path(__file__).resolve().parent.parent.parent / "shared/data/dicom/modality/CT_small.dcm"


@dataclass
class Sample:
    """One sample of the server's process tree."""

    seconds: float
    rss_mb: float
    fds: int


@dataclass
class Totals:
    """What the clients saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    slow_cut_off: int = 0
    slow_answered_408: int = 0
    stalled_cut_off: int = 0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return found


def sample(pid: int, started: float) -> Sample:
    """RSS (MiB) and open descriptors of the process tree of ``pid``."""
    rss, fds = 0, 0
    for one in _tree(pid):
        try:
            status = Path(f"/proc/{one}/status").read_text()
            rss += int(status.split("VmRSS:")[1].split()[0])
            fds += len(os.listdir(f"/proc/{one}/fd"))
        except (OSError, IndexError):
            pass
    return Sample(round(time.monotonic() - started, 1), round(rss / 1024, 1), fds)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def _instance(template: pydicom.Dataset) -> tuple[bytes, str, str, str]:
    ds = template.copy()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


async def _client(root: str, stop: float, totals: Totals, template: pydicom.Dataset) -> None:
    async with httpx.AsyncClient(base_url=root, timeout=60) as client:
        while time.monotonic() < stop:
            data, study, series, sop = _instance(template)
            boundary = "soak"
            body = (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                + data
                + f"\r\n--{boundary}--\r\n".encode()
            )
            instance = f"/studies/{study}/series/{series}/instances/{sop}"
            steps = [
                (
                    "POST",
                    "/studies",
                    body,
                    f"multipart/related; type=application/dicom; boundary={boundary}",
                    None,
                ),
                ("GET", "/studies?limit=10", None, None, "application/dicom+json"),
                ("GET", instance, None, None, 'multipart/related; type="application/dicom"'),
                ("GET", f"{instance}/metadata", None, None, "application/dicom+json"),
                ("GET", f"{instance}/rendered", None, None, "image/jpeg"),
            ]
            for method, path, content, content_type, accept in steps:
                headers = {
                    k: v for k, v in (("Content-Type", content_type), ("Accept", accept)) if v
                }
                begin = time.monotonic()
                try:
                    response = await client.request(method, path, content=content, headers=headers)
                    totals.statuses[response.status_code] += 1
                except httpx.HTTPError as exc:
                    totals.errors[type(exc).__name__] += 1
                totals.latencies.append(time.monotonic() - begin)


async def _slowloris(host: str, port: int, stop: float, totals: Totals) -> None:
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(1)
            continue
        writer.write(b"GET /dicom-web/studies HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = b""
        try:
            while time.monotonic() < stop:
                writer.write(b"a")
                await writer.drain()
                try:
                    answer = await asyncio.wait_for(reader.read(100), 2.0)
                except TimeoutError:
                    continue
                break
        except OSError:
            answer = b"reset"
        writer.close()
        if time.monotonic() < stop:
            totals.slow_cut_off += 1
            totals.slow_answered_408 += answer.startswith(b"HTTP/1.1 408")


async def _stalled_reader(host: str, port: int, stop: float, totals: Totals, path: str) -> None:
    """Ask for ``path`` and read nothing; count the connections the server ends (its TCP
    state leaves ESTABLISHED: reset by the send timeout, or closed after a response that fit
    in the buffers and the keep-alive timeout)."""
    loop = asyncio.get_running_loop()
    while time.monotonic() < stop:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
            await loop.sock_sendall(sock, request.encode())
            while time.monotonic() < stop and _tcp_state(sock) == _ESTABLISHED:  # noqa: ASYNC110 (polls the kernel)
                await asyncio.sleep(1)
        except OSError:
            pass
        finally:
            sock.close()
        if time.monotonic() < stop:
            totals.stalled_cut_off += 1


_ESTABLISHED = 1


def _tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of ``sock`` (Linux ``tcp_info.tcpi_state``)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


async def run(
    server: Server, minutes: float, clients: int, slow: int
) -> tuple[Totals, list[Sample]]:
    """The load for ``minutes``, sampling once a second."""
    template = pydicom.dcmread(CT)
    started = time.monotonic()
    stop = started + minutes * 60
    totals, samples = Totals(), []
    host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
    tasks = [
        asyncio.create_task(_client(server.dicomweb_root, stop, totals, template))
        for _ in range(clients)
    ]
    tasks += [asyncio.create_task(_slowloris(host, port, stop, totals)) for _ in range(slow)]
    tasks += [
        asyncio.create_task(
            _stalled_reader(host, port, stop, totals, "/dicom-web/studies?limit=1000")
        )
        for _ in range(slow)
    ]
    while time.monotonic() < stop:
        samples.append(await asyncio.to_thread(sample, server.process.pid, started))
        await asyncio.sleep(1)
    await asyncio.gather(*tasks, return_exceptions=True)
    return totals, samples


def report(totals: Totals, samples: list[Sample], warmup: float) -> dict[str, object]:
    """The summary: per-minute table, slopes after warm-up, statuses, slow clients, p99."""
    after = [s for s in samples if s.seconds >= samples[-1].seconds * warmup]
    minutes: dict[int, Sample] = {}
    for s in samples:
        minutes.setdefault(int(s.seconds // 60), s)
    latencies = sorted(totals.latencies)
    return {
        "minutes": [asdict(s) for s in minutes.values()],
        "rss_mb_first_last_after_warmup": [after[0].rss_mb, after[-1].rss_mb] if after else [],
        "rss_slope_mb_per_minute": round(slope([(s.seconds / 60, s.rss_mb) for s in after]), 3),
        "fds_slope_per_minute": round(slope([(s.seconds / 60, s.fds) for s in after]), 3),
        "fds_min_max_after_warmup": [min(s.fds for s in after), max(s.fds for s in after)]
        if after
        else [],
        "statuses": dict(totals.statuses),
        "client_errors": dict(totals.errors),
        "requests": sum(totals.statuses.values()),
        "p50_seconds": round(latencies[len(latencies) // 2], 3) if latencies else None,
        "p99_seconds": round(latencies[int(len(latencies) * 0.99)], 3) if latencies else None,
        "slowloris_cut_off": totals.slow_cut_off,
        "slowloris_answered_408": totals.slow_answered_408,
        "stalled_readers_cut_off": totals.stalled_cut_off,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--slow", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument(
        "--header-timeout", default="30", help="PACSFLOW_HTTP_HEADER_TIMEOUT_SECONDS"
    )
    parser.add_argument("--send-timeout", default="60", help="PACSFLOW_HTTP_SEND_TIMEOUT_SECONDS")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pacsflow-soak-") as work:
        server = start_pacsflow(
            Path(work) / "data",
            settings={
                "PACSFLOW_HTTP_HEADER_TIMEOUT_SECONDS": args.header_timeout,
                "PACSFLOW_HTTP_SEND_TIMEOUT_SECONDS": args.send_timeout,
            },
        )
        try:
            totals, samples = asyncio.run(run(server, args.minutes, args.clients, args.slow))
        finally:
            server.stop()
    summary = report(totals, samples, args.warmup)
    for row in summary["minutes"]:  # type: ignore[attr-defined]
        print(
            f"minute {row['seconds'] / 60:5.1f}  rss {row['rss_mb']:8.1f} MiB  fds {row['fds']:5d}"
        )
    for key, value in summary.items():
        if key != "minutes":
            print(f"{key}: {value}")
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, **summary}, indent=1)
        )
    return 0 if not any(code >= 500 for code in totals.statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
