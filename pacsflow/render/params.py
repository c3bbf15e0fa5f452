"""Rendering query parameters: the RESTful ones (PS3.18 8.3.5.1) and WADO-URI's (PS3.18 9).

Both parsers turn a request's query pairs into one ``RenderParams``, which the rendering core
(``pacsflow.render``) applies. Parameters the route handles itself (``accept``, WADO-URI's
``studyUID`` …) are named in ``ignore``; any other unknown or malformed parameter is a
``BadRequest`` naming it.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pacsflow.errors import BadRequest

__all__ = [
    "ANNOTATIONS",
    "MAX_VIEWPORT_SIDE",
    "WADO_URI_OBJECT_PARAMETERS",
    "Region",
    "RenderParams",
    "Viewport",
    "WadoUriRender",
    "Window",
    "WindowFunction",
    "parse_rendered_params",
    "parse_wado_uri_params",
]

WindowFunction = Literal["linear", "linear-exact", "sigmoid"]

ANNOTATIONS: Final = frozenset({"patient", "technique"})
_WINDOW_FUNCTIONS: Final[dict[str, WindowFunction]] = {
    "linear": "linear",
    "linear-exact": "linear-exact",
    "sigmoid": "sigmoid",
}
# A bound on vw, vh, rows and columns: an upscaled response is at most this many pixels a side.
MAX_VIEWPORT_SIDE: Final = 8192
# WADO-URI parameters that select the object or its representation (PS3.18 9.1.2.2): the route
# handles them, so ``parse_wado_uri_params`` skips them by default.
WADO_URI_OBJECT_PARAMETERS: Final = frozenset(
    {"requestType", "studyUID", "seriesUID", "objectUID", "contentType", "transferSyntax"}
)
# ICC profiles the renderer can attach (PS3.18 8.3.5.1.5): "yes" (the instance's own, or sRGB)
# and "srgb"; "no" is the default. Adobe RGB and ROMM RGB profiles are not shipped.
_ICC_PROFILES: Final = frozenset({"no", "yes", "srgb"})
_ICC_UNSUPPORTED: Final = frozenset({"adobergb", "rommrgb"})
_DECIMAL: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_UINT: Final = re.compile(r"\d+")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window (PS3.18 8.3.5.1.4; PS3.3 C.11.2.1.2 and C.11.2.1.3)."""

    center: float
    width: float
    function: WindowFunction = "linear"


@dataclass(frozen=True, slots=True)
class Viewport:
    """Response size and source region, in pixels (PS3.18 8.3.5.1.3).

    ``vw``/``vh`` bound the response, which keeps the region's aspect ratio; ``None`` leaves a
    side unbounded (WADO-URI ``rows`` or ``columns`` alone). ``sx``/``sy`` default to 0,
    ``sw``/``sh`` to the rest of the image; a negative ``sw`` (``sh``) flips horizontally
    (vertically).
    """

    vw: int | None
    vh: int | None
    sx: float | None = None
    sy: float | None = None
    sw: float | None = None
    sh: float | None = None


@dataclass(frozen=True, slots=True)
class Region:
    """A WADO-URI source region in coordinates normalized to 0.0-1.0 (PS3.18 9, ``region``)."""

    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class RenderParams:
    """Everything that shapes a rendered response besides the media type and the frames."""

    window: Window | None = None
    viewport: Viewport | None = None
    quality: int | None = None
    annotation: frozenset[str] = frozenset()
    charset: str | None = None
    iccprofile: Literal["yes", "srgb"] | None = None
    region: Region | None = None


@dataclass(frozen=True, slots=True)
class WadoUriRender:
    """A WADO-URI rendering request: the parameters and the ``frameNumber`` (1-based)."""

    params: RenderParams
    frame_number: int | None = None


def parse_rendered_params(
    pairs: Sequence[tuple[str, str]], *, ignore: frozenset[str] = frozenset()
) -> RenderParams:
    """Parse the Retrieve Rendered query parameters (PS3.18 8.3.5.1, Table 8.3.5-1)."""
    values = _single_values(pairs, ignore)
    window = viewport = quality = charset = icc = None
    annotation: frozenset[str] = frozenset()
    for name, value in values.items():
        if name == "window":
            window = _parse_window(value)
        elif name == "viewport":
            viewport = _parse_viewport(value)
        elif name == "quality":
            quality = _parse_quality(name, value)
        elif name == "annotation":
            annotation = _parse_annotation(value)
        elif name == "charset":
            charset = _parse_charset(value)
        elif name == "iccprofile":
            icc = _parse_iccprofile(value)
        else:
            raise BadRequest(f"query parameter {name!r} is not a rendering parameter")
    return RenderParams(window, viewport, quality, annotation, charset, icc)


def parse_wado_uri_params(
    pairs: Sequence[tuple[str, str]], *, ignore: frozenset[str] = WADO_URI_OBJECT_PARAMETERS
) -> WadoUriRender:
    """Parse WADO-URI's rendering parameters (PS3.18 9: rows, columns, region, windowCenter,
    windowWidth, frameNumber, imageQuality, annotation, charset)."""
    values = _single_values(pairs, ignore)
    rows = columns = frame = quality = None
    region = charset = None
    annotation: frozenset[str] = frozenset()
    for name, value in values.items():
        if name in ("rows", "columns"):
            side = _parse_uint(name, value, low=1, high=MAX_VIEWPORT_SIDE)
            rows, columns = (side, columns) if name == "rows" else (rows, side)
        elif name == "region":
            region = _parse_region(value)
        elif name == "frameNumber":
            frame = _parse_uint(name, value, low=1)
        elif name == "imageQuality":
            quality = _parse_quality(name, value)
        elif name == "annotation":
            annotation = _parse_annotation(value)
        elif name == "charset":
            charset = _parse_charset(value)
        elif name not in ("windowCenter", "windowWidth"):
            raise BadRequest(f"query parameter {name!r} is not supported by this WADO-URI service")
    window = None
    if ("windowCenter" in values) != ("windowWidth" in values):
        raise BadRequest("query parameters 'windowCenter' and 'windowWidth' go together")
    if "windowCenter" in values:
        center = _parse_decimal("windowCenter", values["windowCenter"])
        width = _parse_decimal("windowWidth", values["windowWidth"])
        window = _checked_window("windowWidth", center, width, "linear")
    viewport = None if rows is None and columns is None else Viewport(columns, rows)
    params = RenderParams(window, viewport, quality, annotation, charset, None, region)
    return WadoUriRender(params, frame)


def _single_values(pairs: Sequence[tuple[str, str]], ignore: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in ignore:
            continue
        if name in values:
            raise BadRequest(f"query parameter {name!r} is given more than once")
        values[name] = value
    return values


def _parse_decimal(name: str, text: str) -> float:
    text = text.strip()
    if not _DECIMAL.fullmatch(text) or not math.isfinite(value := float(text)):
        raise BadRequest(f"query parameter {name!r}: {text!r} is not a decimal number")
    return value


def _parse_uint(name: str, text: str, *, low: int = 0, high: int | None = None) -> int:
    text = text.strip()
    if not _UINT.fullmatch(text):
        raise BadRequest(f"query parameter {name!r}: {text!r} is not an unsigned integer")
    value = int(text)
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequest(f"query parameter {name!r}: {value} is outside {bound}")
    return value


def _parse_quality(name: str, text: str) -> int:
    return _parse_uint(name, text, low=1, high=100)


def _checked_window(name: str, center: float, width: float, function: WindowFunction) -> Window:
    # PS3.3 C.11.2.1.2.1: LINEAR needs a width of at least 1; C.11.2.1.3: the others above 0.
    if (function == "linear" and width < 1) or width <= 0:
        minimum = "at least 1" if function == "linear" else "above 0"
        raise BadRequest(f"query parameter {name!r}: a {function} window width must be {minimum}")
    return Window(center, width, function)


def _parse_window(text: str) -> Window:
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise BadRequest("query parameter 'window' must be center,width[,function]")
    center = _parse_decimal("window", parts[0])
    width = _parse_decimal("window", parts[1])
    name = parts[2].strip().lower() if len(parts) == 3 else "linear"
    function = _WINDOW_FUNCTIONS.get(name)
    if function is None:
        raise BadRequest(
            f"query parameter 'window': function {name!r} is not linear, linear-exact or sigmoid"
        )
    return _checked_window("window", center, width, function)


def _parse_viewport(text: str) -> Viewport:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 6):
        raise BadRequest("query parameter 'viewport' must be vw,vh[,sx,sy,sw,sh]")
    vw, vh = (_parse_uint("viewport", p, low=1, high=MAX_VIEWPORT_SIDE) for p in parts[:2])
    if len(parts) == 2:
        return Viewport(vw, vh)
    sx, sy, sw, sh = (None if p == "" else _parse_decimal("viewport", p) for p in parts[2:])
    if (sx is not None and sx < 0) or (sy is not None and sy < 0):
        raise BadRequest("query parameter 'viewport': sx and sy must not be negative")
    if sw == 0 or sh == 0:
        raise BadRequest("query parameter 'viewport': sw and sh must not be 0")
    return Viewport(vw, vh, sx, sy, sw, sh)


def _parse_region(text: str) -> Region:
    parts = text.split(",")
    if len(parts) != 4:
        raise BadRequest("query parameter 'region' must be x1,y1,x2,y2")
    x1, y1, x2, y2 = (_parse_decimal("region", p) for p in parts)
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise BadRequest(
            "query parameter 'region': need 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 "
            "(normalized top-left and bottom-right corners)"
        )
    return Region(x1, y1, x2, y2)


def _parse_annotation(text: str) -> frozenset[str]:
    words = [w.strip().lower() for w in text.split(",")]
    unknown = [w for w in words if w not in ANNOTATIONS]
    if unknown:
        raise BadRequest(
            f"query parameter 'annotation': {unknown[0]!r} is not 'patient' or 'technique'"
        )
    return frozenset(words)


def _parse_charset(text: str) -> str:
    names = [part.split(";")[0].strip() for part in text.split(",")]
    for name in names:
        if not _TOKEN.fullmatch(name):
            raise BadRequest(f"query parameter 'charset': {name!r} is not a character set token")
        if name != "*":
            try:
                codecs.lookup(name)
            except LookupError:
                raise BadRequest(f"query parameter 'charset': {name!r} is not known") from None
    return text.strip()


def _parse_iccprofile(text: str) -> Literal["yes", "srgb"] | None:
    value = text.strip().lower()
    if value in _ICC_UNSUPPORTED:
        raise BadRequest(f"query parameter 'iccprofile': {value!r} is not supported (yes, srgb)")
    if value not in _ICC_PROFILES:
        raise BadRequest(f"query parameter 'iccprofile': {value!r} is not no, yes or srgb")
    return None if value == "no" else "yes" if value == "yes" else "srgb"
