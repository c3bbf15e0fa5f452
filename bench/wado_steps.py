"""The WADO-RS measurements of the benchmark, each checked before it is timed.

What is asked is the same for both servers (the Accept values below); the ground truth is
the generated files: the series' SOP Instance UIDs, the stored frames, the files' sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from bench.measure import Outcome
from bench.wado_data import DataSet, FileSpec, stored_frames
from bench.wado_measure import (
    Counted,
    MemoryPeak,
    Reader,
    Row,
    Throughput,
    latency,
    memory_while,
    multipart_parts,
    throughput,
)
from pacsflow.dicom.frames import unpadded

__all__ = [
    "ACCEPT_FRAMES_AS_STORED",
    "ACCEPT_FRAMES_NATIVE",
    "ACCEPT_INSTANCES",
    "ACCEPT_METADATA",
    "Knobs",
    "frames_rows",
    "memory_peak",
    "metadata_row",
    "series_throughput",
]

ACCEPT_METADATA: Final = "application/dicom+json"
ACCEPT_FRAMES_NATIVE: Final = 'multipart/related; type="application/octet-stream"'
ACCEPT_FRAMES_AS_STORED: Final = (
    'multipart/related; type="application/octet-stream"; transfer-syntax=*'
)
ACCEPT_INSTANCES: Final = 'multipart/related; type="application/dicom"; transfer-syntax=*'
SOP_INSTANCE_UID: Final = "00080018"
PART_OVERHEAD: Final = 4096  # bytes of part headers and delimiters allowed per instance
FRAME_ROLES: Final = (
    ("mf-native-500", ACCEPT_FRAMES_NATIVE),
    ("mf-native-2", ACCEPT_FRAMES_NATIVE),
    ("mf-jls-500", ACCEPT_FRAMES_AS_STORED),
    ("mf-jls-2", ACCEPT_FRAMES_AS_STORED),
)


@dataclass(frozen=True, slots=True)
class Knobs:
    """How many requests, and for how long at most."""

    warmup: int
    repetitions: int
    budget: float
    frame_variants: int
    series_warmup: int
    series_repetitions: int


def _series_path(spec: FileSpec) -> str:
    return f"/studies/{spec.study}/series/{spec.series}"


def metadata_row(
    clients: Mapping[str, httpx.Client], data: DataSet, knobs: Knobs, log: Callable[[str], None]
) -> Row:
    """Series metadata of the 1,000-instance series: the UIDs must be exactly the series'."""
    specs = data.of("metadata")
    expected = {s.sop for s in specs}
    target = _series_path(specs[0]) + "/metadata"

    def check(_target: str, response: httpx.Response) -> str | None:
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]!r}"
        items = response.json()
        uids = {item.get(SOP_INSTANCE_UID, {}).get("Value", [""])[0] for item in items}
        if len(items) != len(expected) or uids != expected:
            return f"{len(items)} instances in the metadata, {len(expected)} expected"
        return None

    outcomes = {}
    for server, client in clients.items():
        outcomes[server] = latency(
            client,
            server,
            "series metadata",
            [target],
            ACCEPT_METADATA,
            check,
            knobs.warmup,
            knobs.repetitions,
            knobs.budget,
        )
        _log_outcome(log, outcomes[server])
    name = f"series metadata, {len(specs):,} instances"
    return Row(name, dict.fromkeys(clients, ACCEPT_METADATA), outcomes)


def _frame_numbers(frames: int, count: int) -> list[int]:
    """Frame numbers spread over the instance (a stride prime to the count), first and last in."""
    numbers = [1, frames]
    stride = 7919 if frames % 7919 else 7907
    numbers += [1 + (i * stride) % frames for i in range(1, count)]
    return list(dict.fromkeys(numbers))[: max(count, 2)] if frames > 2 else [1, 2]


def frames_rows(
    clients: Mapping[str, httpx.Client], data: DataSet, knobs: Knobs, log: Callable[[str], None]
) -> list[Row]:
    """One frame per request, n varying over the frames; each checked against the file."""
    rows = []
    for role, accept in FRAME_ROLES:
        spec = data.one(role)
        truth = stored_frames(spec)
        numbers = _frame_numbers(spec.frames, knobs.frame_variants)
        base = f"{_series_path(spec)}/instances/{spec.sop}/frames/"
        targets = [f"{base}{n}" for n in numbers]

        def check(
            target: str,
            response: httpx.Response,
            truth: list[bytes] = truth,
            syntax: str = spec.transfer_syntax,
        ) -> str | None:
            if response.status_code != 200:
                return f"{target}: HTTP {response.status_code}: {response.text[:200]!r}"
            parts = multipart_parts(response)
            number = int(target.rsplit("/", 1)[1])
            # A codestream's pad byte (PS3.5 A.4) is not part of the frame: pacsflow drops it,
            # Orthanc keeps it; both are the stored frame.
            stored = unpadded(syntax, truth[number - 1])
            if len(parts) != 1 or unpadded(syntax, parts[0]) != stored:
                sizes = [len(p) for p in parts]
                return f"frame {number}: parts of {sizes} bytes, not the stored frame"
            return None

        outcomes: dict[str, Outcome] = {}
        for server, client in clients.items():
            outcomes[server] = latency(
                client,
                server,
                role,
                targets,
                accept,
                check,
                knobs.warmup,
                knobs.repetitions,
                knobs.budget,
            )
            _log_outcome(log, outcomes[server])
        kind = "native" if "native" in role else "JPEG-LS, as stored"
        name = f"one frame of a {spec.frames}-frame instance ({kind}; {len(numbers)} frames cycled)"
        rows.append(Row(name, dict.fromkeys(clients, accept), outcomes))
    return rows


def _expect(specs: Sequence[FileSpec]) -> Callable[[Counted], str | None]:
    stored = sum(s.size for s in specs)

    def expect(counted: Counted) -> str | None:
        if counted.status != 200:
            return f"HTTP {counted.status}: {counted.text!r}"
        if counted.parts != len(specs):
            return f"{counted.parts} parts, {len(specs)} instances expected"
        if not stored <= counted.size <= stored + PART_OVERHEAD * len(specs):
            return f"{counted.size:,} bytes received for {stored:,} bytes stored"
        return None

    return expect


def _timed_reads(
    readers: Mapping[str, Reader],
    pids: Mapping[str, int],
    name: str,
    path: str,
    specs: Sequence[FileSpec],
    knobs: Knobs,
    log: Callable[[str], None],
) -> list[Throughput]:
    """``GET path`` of ``specs``, as stored, read to the end; the servers take turns,
    repetition by repetition."""
    results = throughput(
        readers,
        pids,
        name,
        path,
        ACCEPT_INSTANCES,
        _expect(specs),
        knobs.series_warmup,
        knobs.series_repetitions,
    )
    for result in results:
        if result.ok:
            log(
                f"{result.server:8} {name}: {result.rate(result.median):,.0f} MB/s,"
                f" {result.median:.2f} s"
            )
        else:
            log(f"{result.server:8} {name}: FAILED {result.error}")
    return results


def series_throughput(
    readers: Mapping[str, Reader],
    pids: Mapping[str, int],
    data: DataSet,
    knobs: Knobs,
    log: Callable[[str], None],
    role: str = "ct",
) -> list[Throughput]:
    """``GET /studies/{st}/series/{se}`` of the CT series (``role`` ``ct``), or ``GET
    .../instances/{sop}`` of the large multi-frame instance (``mf-large``), as stored, read
    to the end."""
    specs = data.of(role)
    path = _series_path(specs[0])
    name = f"CT series, {len(specs)} instances"
    if role != "ct":
        name, path = f"one {specs[0].frames}-frame instance", f"{path}/instances/{specs[0].sop}"
    return _timed_reads(readers, pids, name, path, specs, knobs, log)


def memory_peak(
    reader: Reader, pid: int, server: str, data: DataSet, log: Callable[[str], None]
) -> MemoryPeak:
    """RSS of the server process tree before and while ``GET /studies/{big}`` is read."""
    specs = data.of("big")
    target = f"/studies/{specs[0].study}"
    result = memory_while(pid, server, lambda: reader.read(target, ACCEPT_INSTANCES, True))
    if result.error is None and result.counted is not None:
        result.error = _expect(specs)(result.counted)
    mib = 1024**2
    log(
        f"{server:8} big study: before {result.before / mib:,.0f} MiB, peak "
        f"{result.peak / mib:,.0f} MiB{f', FAILED {result.error}' if result.error else ''}"
    )
    return result


def _log_outcome(log: Callable[[str], None], outcome: Outcome) -> None:
    if outcome.ok:
        log(
            f"{outcome.server:8} {outcome.query}: p50 {outcome.percentile(50):.2f} ms,"
            f" p95 {outcome.percentile(95):.2f} ms"
        )
    else:
        log(f"{outcome.server:8} {outcome.query}: FAILED {outcome.error}")
