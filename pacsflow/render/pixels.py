"""One decoded frame to display-ready 8-bit pixels: the PS3.4 N.2 grayscale and colour pipelines.

Grayscale: Modality LUT or rescale (PS3.3 C.11.1), then the VOI (PS3.3 C.11.2: the request's
window, else the first Window Center/Width with its VOI LUT Function, else the first VOI LUT
Sequence item, else the data's own min..max), then the polarity (MONOCHROME1 or a Presentation
LUT Shape of INVERSE, PS3.3 C.11.6). Colour: Palette Color LUTs (PS3.3 C.7.6.3.1.5), YBR to RGB,
and sample values scaled to 8 bits. The LUT and windowing arithmetic is pydicom's
(``pydicom.pixels``); this module picks the transforms, applies the request's window by giving
pydicom a Dataset whose output range is 0-255, and reads the per-frame values of enhanced
multi-frame objects (PS3.3 C.7.6.16: Pixel Value Transformation, Frame VOI LUT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    convert_color_space,
)

from pacsflow.errors import NotAcceptable
from pacsflow.render.params import Window, WindowFunction

__all__ = ["DisplayFrame", "display", "display_frame", "frame_attribute"]

MONOCHROME: Final = frozenset({"MONOCHROME1", "MONOCHROME2"})
# What pydicom's ``pixel_array`` returns RGB for (raw=False): it converts YBR_FULL(_422), and the
# JPEG 2000 decoders undo the RCT/ICT component transforms themselves.
_DECODED_AS_RGB: Final = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"})
_FUNCTIONS: Final[dict[str, WindowFunction]] = {
    "LINEAR": "linear",
    "LINEAR_EXACT": "linear-exact",
    "SIGMOID": "sigmoid",
}
# Lookup tables of up to 2^16 entries (16-bit data); wider spans are computed per pixel.
_LUT_MAX_ENTRIES: Final = 1 << 16
_PIXEL_MODULE: Final = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "PresentationLUTShape",
)


@dataclass(frozen=True, slots=True)
class DisplayFrame:
    """A display-ready frame: uint8 (H, W) or (H, W, 3), and the VOI window it went through."""

    array: np.ndarray
    window: Window | None


def display_frame(
    ds: Dataset,
    pixels: np.ndarray,
    window: Window | None,
    *,
    frame_index: int = 0,
    color_space: str | None = None,
) -> np.ndarray:
    """Render one decoded frame to uint8 (H, W) grayscale or (H, W, 3) RGB (PS3.4 N.2)."""
    return display(ds, pixels, window, frame_index=frame_index, color_space=color_space).array


def display(
    ds: Dataset,
    pixels: np.ndarray,
    window: Window | None,
    *,
    frame_index: int = 0,
    color_space: str | None = None,
) -> DisplayFrame:
    """Like ``display_frame``, also telling which window was applied (for annotations).

    ``pixels`` is one frame as ``pydicom.pixels.pixel_array`` returns it: RGB for YBR data
    unless ``color_space`` names the space it is really in (``"YBR_FULL"`` after ``raw=True``).
    ``frame_index`` (0-based) picks the per-frame functional groups of enhanced objects.
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric in MONOCHROME:
        if pixels.ndim != 2:
            raise NotAcceptable(f"a {photometric} frame must be 2-dimensional")
        return _grayscale(_frame_view(ds, frame_index), pixels, window)
    if photometric == "PALETTE COLOR":
        return DisplayFrame(_palette(ds, pixels), None)
    if photometric in _DECODED_AS_RGB and pixels.ndim == 3 and pixels.shape[-1] == 3:
        if color_space in ("YBR_FULL", "YBR_FULL_422"):
            pixels = convert_color_space(pixels, "YBR_FULL", "RGB")
        return DisplayFrame(_to_8bit(pixels, int(ds.get("BitsStored", 8))), None)
    raise NotAcceptable(f"Photometric Interpretation {photometric or '(none)'!r} is not rendered")


def frame_attribute(ds: Dataset, frame_index: int, sequence: str, keyword: str) -> object:
    """An attribute of a functional group (per-frame first, then shared) or the top level."""
    for groups, index in (
        (ds.get("PerFrameFunctionalGroupsSequence"), frame_index),
        (ds.get("SharedFunctionalGroupsSequence"), 0),
    ):
        if groups and 0 <= index < len(groups):
            items = groups[index].get(sequence)
            if items and keyword in items[0]:
                return items[0][keyword].value
    return ds.get(keyword)


def _frame_view(ds: Dataset, frame_index: int) -> Dataset:
    """The grayscale pipeline's attributes for one frame, flattened to the top level."""
    view = Dataset()
    for keyword in _PIXEL_MODULE:
        if keyword in ds:
            view[keyword] = ds[keyword]
    functional = (
        ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept")),
        ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
    )
    for sequence, keywords in functional:
        for keyword in keywords:
            value = frame_attribute(ds, frame_index, sequence, keyword)
            if value is not None and value != "":
                setattr(view, keyword, value)
    if hasattr(ds, "file_meta"):
        view.file_meta = ds.file_meta
    view.set_original_encoding(*ds.original_encoding)
    return view


def _header_window(view: Dataset) -> Window | None:
    center, width = view.get("WindowCenter"), view.get("WindowWidth")
    if center is None or width is None or center == "" or width == "":
        return None
    first_center = center[0] if isinstance(center, MultiValue | list) else center
    first_width = width[0] if isinstance(width, MultiValue | list) else width
    name = str(view.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    function = _FUNCTIONS.get(name, "linear")
    c, w = float(first_center), float(first_width)
    if not (np.isfinite(c) and np.isfinite(w)) or w <= 0 or (function == "linear" and w < 1):
        return None
    return Window(c, w, function)


def _grayscale(view: Dataset, pixels: np.ndarray, window: Window | None) -> DisplayFrame:
    """The grayscale pipeline through a lookup table when the frame's stored values span fewer
    entries than it has pixels (every step maps one stored value to one output value, so
    transforming each value present once gives exactly the per-pixel result), else per pixel."""
    kind = pixels.dtype
    if pixels.size and kind.kind in "iu" and kind.isnative and kind.itemsize <= 4:
        low, high = int(pixels.min()), int(pixels.max())
        if high - low < min(pixels.size, _LUT_MAX_ENTRIES):
            domain = np.arange(low, high + 1).astype(pixels.dtype)
            unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
            # pixel - low, with wrap-around in the unsigned type: exact as the span fits it
            offsets = pixels.view(unsigned) - unsigned.type(
                low & (2 ** (8 * unsigned.itemsize) - 1)
            )

            def present(values: np.ndarray) -> np.ndarray:
                """The values of the stored values the frame holds (for its min..max)."""
                counts = np.bincount(offsets.ravel(), minlength=domain.size)
                return values[counts > 0]

            lut, used = _grayscale_values(view, domain, window, present)
            return DisplayFrame(np.take(lut, offsets), used)
    shown, used = _grayscale_values(view, pixels, window, lambda values: values)
    return DisplayFrame(np.ascontiguousarray(shown, dtype=np.uint8), used)


def _grayscale_values(
    view: Dataset,
    pixels: np.ndarray,
    window: Window | None,
    present: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, Window | None]:
    """Modality, VOI and polarity (PS3.4 N.2.1) applied to each of ``pixels``; ``present``
    picks, from the modality values, those whose min..max spans a window-less frame."""
    values = apply_modality_lut(pixels, view)
    used = window or _header_window(view)
    if used is not None:
        shown = window_to_8bit(values, used)
    elif view.get("VOILUTSequence") and "LUTData" in view.VOILUTSequence[0]:
        shown = _voi_lut(view, values)
    else:
        seen = present(values)
        low, high = float(np.min(seen)), float(np.max(seen))
        if high > low:
            # The full range as a LINEAR_EXACT window maps the minimum to 0 and the maximum to 255.
            used = Window((low + high) / 2, high - low, "linear-exact")
            shown = window_to_8bit(values, used)
        else:
            shown = np.zeros(values.shape, dtype=np.uint8)
    shape = str(view.get("PresentationLUTShape", "") or "").strip().upper()
    if view.PhotometricInterpretation == "MONOCHROME1" or shape == "INVERSE":
        # A MONOCHROME1 image's INVERSE shape (DX, PS3.3 C.8.11) is that same one inversion.
        shown = 255 - shown
    return shown.astype(np.uint8, copy=False), used


def window_to_8bit(values: np.ndarray, window: Window) -> np.ndarray:
    """Apply a VOI window with pydicom's LINEAR/LINEAR_EXACT/SIGMOID, output 0-255 (uint8)."""
    target = Dataset()
    target.PhotometricInterpretation = "MONOCHROME2"
    target.BitsStored = 8  # pydicom takes the output range from Bits Stored: 0..255
    target.PixelRepresentation = 0
    target.WindowCenter = window.center
    target.WindowWidth = window.width
    target.VOILUTFunction = window.function.upper().replace("-", "_")
    out: np.ndarray = apply_windowing(values.astype(np.float64), target)
    shown: np.ndarray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return shown


def _voi_lut(view: Dataset, values: np.ndarray) -> np.ndarray:
    descriptor = view.VOILUTSequence[0].LUTDescriptor
    bits = int(descriptor[2])
    lut_out = apply_voi(np.rint(values).astype(np.int64), view)
    # PS3.3 C.11.2.1.1: the LUT output range is 0 .. 2^bits - 1 of the descriptor's third value.
    scaled: np.ndarray = np.rint(lut_out.astype(np.float64) * 255 / (2**bits - 1))
    shown: np.ndarray = np.clip(scaled, 0, 255).astype(np.uint8)
    return shown


def _palette(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim != 2:
        raise NotAcceptable("a PALETTE COLOR frame must be 2-dimensional")
    rgb = apply_color_lut(pixels, ds)
    bits = 16 if rgb.dtype == np.uint16 else 8
    return _to_8bit(rgb, bits)


def _to_8bit(rgb: np.ndarray, bits: int) -> np.ndarray:
    if rgb.dtype == np.uint8 and bits <= 8:
        return np.ascontiguousarray(rgb)
    peak = float(2 ** max(bits, 1) - 1)
    scaled = np.rint(rgb.astype(np.float64) * (255 / peak))
    return np.ascontiguousarray(np.clip(scaled, 0, 255), dtype=np.uint8)
