"""The steps of the rendered/thumbnail benchmark: data, stores, answer checks, timed rows.

The data is bench/wado_data.py's CT series (512x512, 16-bit, 12 stored, Explicit VR Little
Endian), here 500 instances in one series; pacsflow gets it by STOW-RS, Orthanc by
``POST /instances`` (bench/wado_load.py). Every answer is checked (status, Content-Type, decoded
by Pillow to the expected size) before it is timed; a wrong answer is a reported failure.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from bench.measure import Outcome
from bench.wado_data import DataSet, FileSpec, Scale, generate
from bench.wado_measure import latency

__all__ = ["Knobs", "Row", "Targets", "check_jpeg", "make_data", "measure_rows", "orthanc_ids"]

Log = Callable[[str], None]
JPEG = "image/jpeg"
# A rendering made anew for each request: pacsflow keeps renderings (by ETag) unless asked not
# to; Orthanc 1.10 keeps none, so the header changes nothing there.
NO_CACHE = "Cache-Control: no-cache"
NO_CACHE_HEADER = {"Cache-Control": "no-cache"}
UNCACHED = "made anew (Cache-Control: no-cache)"


@dataclass(frozen=True, slots=True)
class Knobs:
    """How many requests, and for how long, per measurement and server."""

    warmup: int
    repetitions: int
    budget: float
    variants: int


@dataclass
class Row:
    """One measurement: what each server was asked, its outcome, pacsflow's target."""

    name: str
    asked: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    target_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Targets:
    """The request paths (relative to the DICOMweb root, or absolute) of the series."""

    rendered: list[str]  # instances cycled for /rendered
    middle: str  # .../instances/{middle sop}
    series: str  # /studies/{st}/series/{se}
    instances: int  # in the series


def make_data(out: Path, seed: int, instances: int, log: Log) -> tuple[DataSet, list[FileSpec]]:
    """wado_data's generator with only its CT series at scale (the other roles: tiny)."""
    scale = Scale(
        metadata_instances=0,
        frames=2,
        frame_rows=16,
        ct_instances=instances,
        big_instances=0,
    )
    data = generate(out, seed, scale, log)
    return data, sorted(data.of("ct"), key=lambda s: int(s.sop.rsplit(".", 1)[1]))


def targets_for(series: Sequence[FileSpec], variants: int) -> Targets:
    """Evenly spread instances for /rendered, the middle instance, the series path."""
    first = series[0]
    base = f"/studies/{first.study}/series/{first.series}"
    step = max(1, len(series) // variants)
    picked = series[::step][:variants]
    middle = series[len(series) // 2]
    return Targets(
        [f"{base}/instances/{s.sop}/rendered" for s in picked],
        f"{base}/instances/{middle.sop}",
        base,
        len(series),
    )


def check_jpeg(exact: tuple[int, int] | None, max_side: int | None) -> Callable[..., str | None]:
    """A check of an image answer: 200, image/jpeg, decodes to the size wanted."""

    def check(target: str, response: httpx.Response) -> str | None:
        if response.status_code != 200:
            return f"{target}: HTTP {response.status_code} {response.text[:160]!r}"
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != JPEG:
            return f"{target}: Content-Type {media!r}, not {JPEG}"
        try:
            with Image.open(io.BytesIO(response.content)) as image:
                image.load()
                size, kind = image.size, image.format
        except Exception as exc:  # any decoding failure is the server's
            return f"{target}: Pillow cannot decode the body: {exc}"
        if kind != "JPEG":
            return f"{target}: the body is {kind}, not JPEG"
        if exact is not None and size != exact:
            return f"{target}: {size[0]}x{size[1]}, not {exact[0]}x{exact[1]}"
        if max_side is not None and max(size) > max_side:
            return f"{target}: {size[0]}x{size[1]}, more than {max_side} px a side"
        return None

    return check


def orthanc_ids(base_url: str, sops: Sequence[str]) -> dict[str, str]:
    """Orthanc's instance identifiers of SOP Instance UIDs (``POST /tools/lookup``)."""
    found: dict[str, str] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for sop in sops:
            for hit in client.post("/tools/lookup", content=sop).json():
                if hit.get("Type") == "Instance":
                    found[sop] = str(hit["ID"])
    return found


def _probe(client: httpx.Client, target: str, check: Callable[..., str | None]) -> str | None:
    """Why ``target`` is not a valid small JPEG (None: it is)."""
    response = client.get(target, headers={"Accept": JPEG})
    problem = check(target, response)
    if problem and response.status_code != 200:
        return f"HTTP {response.status_code} {response.text[:120]!r}"
    return problem


def measure_rows(
    clients: dict[str, httpx.Client],
    targets: Targets,
    orthanc_preview: str | None,
    knobs: Knobs,
    log: Log,
) -> tuple[list[Row], list[str]]:
    """The timed rows, and notes (what Orthanc answered to /thumbnail)."""
    notes: list[str] = []

    def timed(
        server: str,
        name: str,
        paths: list[str],
        check: Callable[..., str | None],
        extra: dict[str, str] | None = None,
    ) -> Outcome:
        log(f"{server}: {name}")
        out = latency(
            clients[server],
            server,
            name,
            paths,
            JPEG,
            check,
            knobs.warmup,
            knobs.repetitions,
            knobs.budget,
            extra,
        )
        if out.ok:
            log(f"{server}: {name}: p50 {out.percentile(50):.2f} ms, n={len(out.samples_ms)}")
        else:
            log(f"{server}: {name}: FAILED {out.error}")
        return out

    full = check_jpeg((512, 512), None)
    small = check_jpeg(None, 128)
    rendered = Row(f"rendered 512x512 CT slice ({len(targets.rendered)} instances)", target_ms=15)
    thumb = Row(f"series thumbnail ({targets.instances} instances)", target_ms=50)
    viewport = Row("rendered middle instance, viewport=128,128")
    preview = Row("Orthanc REST preview, middle instance (512x512)")
    fresh = Row(f"{rendered.name}, {UNCACHED}")
    fresh_thumb = Row(f"{thumb.name}, {UNCACHED}")
    fresh_viewport = Row(f"{viewport.name}, {UNCACHED}")
    vp_path = f"{targets.middle}/rendered?viewport=128,128"
    for server in clients:
        rendered.asked[server] = "`.../instances/{sop}/rendered`"
        rendered.outcomes[server] = timed(server, rendered.name, targets.rendered, full)
        fresh.asked[server] = rendered.asked[server] + f" with `{NO_CACHE}`"
        fresh.outcomes[server] = timed(server, fresh.name, targets.rendered, full, NO_CACHE_HEADER)
        thumb_path = f"{targets.series}/thumbnail"
        if server == "orthanc":
            problem = _probe(clients[server], thumb_path, small)
            answer = problem or "a valid thumbnail"
            notes.append(f"Orthanc's answer to `GET .../series/{{se}}/thumbnail`: {answer}.")
            if problem:
                thumb.asked[server] = (
                    "nearest equivalent (no /thumbnail): `.../instances/{middle}/rendered"
                    "?viewport=128,128`"
                )
                thumb_path = vp_path
        thumb.asked.setdefault(server, "`.../series/{se}/thumbnail`")
        thumb.outcomes[server] = timed(server, thumb.name, [thumb_path], small)
        fresh_thumb.asked[server] = thumb.asked[server] + f" with `{NO_CACHE}`"
        fresh_thumb.outcomes[server] = timed(
            server, fresh_thumb.name, [thumb_path], small, NO_CACHE_HEADER
        )
        viewport.asked[server] = "`.../instances/{middle}/rendered?viewport=128,128`"
        viewport.outcomes[server] = timed(server, viewport.name, [vp_path], small)
        fresh_viewport.asked[server] = viewport.asked[server] + f" with `{NO_CACHE}`"
        fresh_viewport.outcomes[server] = timed(
            server, fresh_viewport.name, [vp_path], small, NO_CACHE_HEADER
        )
        if server == "orthanc" and orthanc_preview:
            preview.asked[server] = "`/instances/{orthanc id}/preview` (REST, not DICOMweb)"
            preview.outcomes[server] = timed(server, preview.name, [orthanc_preview], full)
    rows = [rendered, fresh, thumb, fresh_thumb, viewport, fresh_viewport]
    return ([*rows, preview] if preview.outcomes else rows), notes
