"""The rendered resources of the WADO scenario (PS3.18 8.3.5, 8.3.6), each checked before timing.

The data is bench/wado_data.py's CT series (512x512, 16-bit, 12 stored, Explicit VR Little
Endian). Every distinct request is checked (HTTP 200, ``Content-Type: image/jpeg``, decoded by
Pillow to the expected size) before it is timed; a wrong answer is a reported failure.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
from PIL import Image

from bench.measure import Outcome
from bench.wado_data import FileSpec
from bench.wado_measure import Row, latency
from bench.wado_steps import Knobs

__all__ = ["Targets", "check_jpeg", "measure_rows", "orthanc_preview", "targets_for"]

Log = Callable[[str], None]
JPEG = "image/jpeg"
# A rendering made anew for each request: pacsflow keeps renderings (by ETag) unless asked not
# to; Orthanc 1.10 keeps none, so the header changes nothing there.
NO_CACHE = "Cache-Control: no-cache"
NO_CACHE_HEADER = {"Cache-Control": "no-cache"}
UNCACHED = "made anew (Cache-Control: no-cache)"


@dataclass(frozen=True, slots=True)
class Targets:
    """The request paths (relative to the DICOMweb root, or absolute) of the series."""

    rendered: list[str]  # instances cycled for /rendered
    middle: str  # .../instances/{middle sop}
    series: str  # /studies/{st}/series/{se}
    instances: int  # in the series


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


def orthanc_preview(base_url: str, targets: Targets) -> str | None:
    """The URL of Orthanc's own REST preview of the series' middle instance (``None``: not
    found), looked up by its SOP Instance UID (``POST /tools/lookup``)."""
    sop = targets.middle.rsplit("/", 1)[1]
    try:
        hits = httpx.post(f"{base_url}/tools/lookup", content=sop, timeout=30).json()
    except (httpx.HTTPError, ValueError):
        return None
    for hit in hits:
        if hit.get("Type") == "Instance":
            return f"{base_url}/instances/{hit['ID']}/preview"
    return None


def _probe(client: httpx.Client, target: str, check: Callable[..., str | None]) -> str | None:
    """Why ``target`` is not a valid small JPEG (None: it is)."""
    response = client.get(target, headers={"Accept": JPEG})
    problem = check(target, response)
    if problem and response.status_code != 200:
        return f"HTTP {response.status_code} {response.text[:120]!r}"
    return problem


def measure_rows(
    clients: Mapping[str, httpx.Client],
    targets: Targets,
    preview_url: str | None,
    knobs: Knobs,
    log: Log,
) -> tuple[list[Row], list[str]]:
    """The timed rows, and notes (what Orthanc answered to /thumbnail). ``preview_url``:
    Orthanc's REST preview of the middle instance, timed on Orthanc for reference."""
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
    rendered = Row(f"rendered 512x512 CT slice ({len(targets.rendered)} instances)")
    thumb = Row(f"series thumbnail ({targets.instances} instances)")
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
        if server == "orthanc" and preview_url:
            preview.asked[server] = "`/instances/{orthanc id}/preview` (REST, not DICOMweb)"
            preview.outcomes[server] = timed(server, preview.name, [preview_url], full)
    rows = [rendered, fresh, thumb, fresh_thumb, viewport, fresh_viewport]
    return ([*rows, preview] if preview.outcomes else rows), notes
