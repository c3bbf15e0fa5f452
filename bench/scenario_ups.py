"""UPS-RS, the Worklist (PS3.18 Chapter 11): workitem throughput and event latency.

On the pacsflow targets (Orthanc has no Worklist Service; the scenario skips it):

- Throughput: ``performers`` threads, each with its own keep-alive connection, take workitems
  through their whole life: create (201), claim (PUT state IN PROGRESS, 200), describe the
  performed procedure (POST update, 200), complete (PUT state COMPLETED, 200). Every status is
  checked; a run with a wrong one is a failure, not a figure. Reported: workitems per second
  (four requests each), at each concurrency of the profile.
- Event latency: an AE title holds a Worklist Subscription and the WebSocket event channel
  (``websockets``); one workitem at a time is claimed, and the time from sending the Change
  Workitem State request to receiving its UPS State Report (checked: that workitem, IN
  PROGRESS) is one sample. Reported: p50, p95, p99.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson
from pydicom.uid import generate_uid
from websockets.sync.client import connect

from bench.collect import Collector
from bench.context import Context, record_peaks, sampler
from bench.measure import Outcome
from bench.targets import Target

__all__ = ["run"]

THROUGHPUT: Final = "workitem throughput"
LATENCY: Final = "event latency"
GLOBAL: Final = "1.2.840.10008.5.1.4.34.5"
JSON: Final = {"content-type": "application/dicom+json"}
EVENT_WAIT: Final = 30.0  # seconds an event may take before the measurement fails
WORKITEMS: Final = {"smoke": 8, "standard": 100}  # per performer count and run
LATENCY_SAMPLES: Final = {"smoke": 10, "standard": 200}


def _element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _code(value: str, meaning: str) -> dict[str, Any]:
    return {
        "00080100": _element("SH", value),
        "00080102": _element("SH", "DCM"),
        "00080104": _element("LO", meaning),
    }


WORKITEM: Final = orjson.dumps(
    {
        "00741200": _element("CS", "MEDIUM"),
        "00741204": _element("LO", "bench workitem"),
        "00404005": _element("DT", "20260105120000"),
        "00404041": _element("CS", "READY"),
        "00741000": _element("CS", "SCHEDULED"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Bench^Patient"}]},
        "00100020": _element("LO", "BENCH-1"),
    }
)
PERFORMED: Final = orjson.dumps(
    {
        "00741216": _element(
            "SQ",
            {
                "00404050": _element("DT", "20260105120500"),
                "00404051": _element("DT", "20260105121000"),
                "00404028": _element("SQ", _code("110001", "Image Processing")),
                "00404019": _element("SQ", _code("110001", "Image Processing")),
            },
        )
    }
)


def _state(value: str, owner: str) -> bytes:
    return orjson.dumps({"00741000": _element("CS", value), "00081195": _element("UI", owner)})


class Wrong(Exception):
    """A response that is not the one the standard asks for."""


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise Wrong(f"{what}: {response.status_code} {response.text[:200]}")


def lifecycle(client: httpx.Client) -> None:
    """Create, claim, describe and complete one workitem, every answer checked."""
    uid, owner = str(generate_uid()), str(generate_uid())
    _expect(
        client.post(f"/workitems?workitem={uid}", content=WORKITEM, headers=JSON), 201, "create"
    )
    _expect(
        client.put(f"/workitems/{uid}/state", content=_state("IN PROGRESS", owner), headers=JSON),
        200,
        "claim",
    )
    _expect(
        client.post(f"/workitems/{uid}?transaction={owner}", content=PERFORMED, headers=JSON),
        200,
        "update",
    )
    _expect(
        client.put(f"/workitems/{uid}/state", content=_state("COMPLETED", owner), headers=JSON),
        200,
        "complete",
    )


@dataclass
class Throughput:
    workitems_per_s: float = 0.0
    error: str | None = None


def throughput(root: str, performers: int, workitems: int) -> Throughput:
    """Workitems per second through their whole life with ``performers`` threads."""
    clients = [httpx.Client(base_url=root, timeout=120) for _ in range(performers)]
    share = [workitems // performers + (n < workitems % performers) for n in range(performers)]

    def perform(n: int) -> None:
        for _ in range(share[n]):
            lifecycle(clients[n])

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(performers) as pool:
            for future in [pool.submit(perform, n) for n in range(performers)]:
                future.result()
        return Throughput(workitems / (time.perf_counter() - started))
    except (Wrong, httpx.HTTPError) as exc:
        return Throughput(error=str(exc))
    finally:
        for client in clients:
            client.close()


def event_latency(root: str, ae: str, samples: int) -> Outcome:
    """Change Workitem State → its State Report on the channel, ``samples`` times (ms)."""
    outcome = Outcome("claim to State Report", root)
    channel_url = "ws" + root.removeprefix("http") + f"/subscribers/{ae}"
    with httpx.Client(base_url=root, timeout=120) as client:
        try:
            _expect(client.post(f"/workitems/{GLOBAL}/subscribers/{ae}"), 201, "subscribe")
            with connect(channel_url, open_timeout=EVENT_WAIT) as channel:
                for _ in range(samples):
                    uid, owner = str(generate_uid()), str(generate_uid())
                    created = client.post(
                        f"/workitems?workitem={uid}", content=WORKITEM, headers=JSON
                    )
                    _expect(created, 201, "create")
                    _wait_for(channel, uid, "SCHEDULED")
                    started = time.perf_counter()
                    claim = client.put(
                        f"/workitems/{uid}/state",
                        content=_state("IN PROGRESS", owner),
                        headers=JSON,
                    )
                    _expect(claim, 200, "claim")
                    _wait_for(channel, uid, "IN PROGRESS")
                    outcome.samples_ms.append((time.perf_counter() - started) * 1000)
        except (Wrong, httpx.HTTPError, OSError, TimeoutError) as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


def _wait_for(channel: Any, uid: str, state: str) -> None:
    """Read the channel until the State Report of ``uid`` in ``state`` (others are skipped)."""
    deadline = time.monotonic() + EVENT_WAIT
    while True:
        report = orjson.loads(channel.recv(timeout=max(0.0, deadline - time.monotonic())))
        about = report.get("00001000", {}).get("Value")
        if about == [uid] and report.get("00741000", {}).get("Value") == [state]:
            return


def _measure(ctx: Context, collector: Collector, kind: str, root: str, ae: str) -> None:
    """One run on one target: throughput at each concurrency, then event latency."""
    workitems = WORKITEMS.get(ctx.profile.name, WORKITEMS["standard"])
    for performers in ctx.profile.concurrency:
        result = throughput(root, performers, workitems)
        shown = result.error or f"{result.workitems_per_s:,.1f} workitems/s"
        ctx.log(f"ups: {kind:18} performers={performers}: {shown}")
        collector.values(
            kind,
            THROUGHPUT,
            "create, claim, update, complete",
            None if result.error else {"per_s": result.workitems_per_s},
            unit="workitems/s",
            better="higher",
            primary="per_s",
            error=result.error,
            samples=workitems,
            params={"performers": performers},
        )
    samples = LATENCY_SAMPLES.get(ctx.profile.name, LATENCY_SAMPLES["standard"])
    outcome = event_latency(root, ae, samples)
    shown = f"p50 {outcome.percentile(50):.1f} ms" if outcome.ok else str(outcome.error)
    ctx.log(f"ups: {kind:18} event latency: {shown}")
    collector.latency(kind, LATENCY, outcome)


def run(ctx: Context) -> tuple[Collector, list[str]]:
    """Throughput at each concurrency, then event latency, run after run."""
    collector = Collector("ups")
    notes: list[str] = []
    kinds = [k for k in ctx.kinds if k.startswith("pacsflow")]
    if len(kinds) < len(ctx.kinds):
        notes.append("Orthanc has no Worklist Service (UPS-RS): measured on pacsflow only.")
    workitems = WORKITEMS.get(ctx.profile.name, WORKITEMS["standard"])
    samples = LATENCY_SAMPLES.get(ctx.profile.name, LATENCY_SAMPLES["standard"])
    notes.append(
        f"Throughput: {workitems} workitems per concurrency and run, each created, claimed,"
        " updated with its performed procedure and completed (4 requests, each answer"
        f" checked). Event latency: {samples} claims one at a time, from sending the Change"
        " Workitem State request to receiving its State Report on the WebSocket of a"
        " Worklist Subscription."
    )
    targets: dict[str, Target] = {}
    try:
        for kind in kinds:
            try:
                targets[kind] = ctx.fresh(kind, "ups")
            except Exception as exc:
                notes.append(f"{kind}: failed to start: {exc}")
        memory = sampler(targets)
        for number in range(ctx.profile.runs):
            with memory.window() as peaks:
                for kind, target in targets.items():
                    _measure(ctx, collector, kind, target.dicomweb_root, f"BENCH{number}")
            record_peaks(ctx, "ups", peaks)
    finally:
        for target in targets.values():
            target.stop()
    return collector, notes
