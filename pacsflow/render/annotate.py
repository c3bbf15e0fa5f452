"""Burned-in annotations of rendered images (PS3.18 8.3.5.1.1: ``patient`` and ``technique``).

PS3.18 leaves their content to the origin server; pacsflow writes the patient's name, ID, birth
date and sex at the top left, and modality, exposure, the VOI window applied, slice thickness
and frame number at the bottom left, white with a black outline so the text reads on any
background. Names come decoded by pydicom (Specific Character Set); of a Person Name's
alphabetic, ideographic and phonetic groups (PS3.5 6.2) the first the font can draw is shown,
and a character without a glyph becomes '?'. The font is DejaVu Sans where the system has it
(Latin, Greek, Cyrillic, Arabic, Hebrew), else Pillow's built-in one.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from pacsflow.dicom.frames import number_of_frames
from pacsflow.render.params import Window
from pacsflow.render.pixels import frame_attribute

__all__ = ["annotate", "annotation_lines"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_FONT_FILE: Final = "DejaVuSans.ttf"
_NOT_A_CHARACTER: Final = "\uffff"


def annotate(
    image: Image.Image,
    ds: Dataset,
    annotation: frozenset[str],
    *,
    window: Window | None = None,
    frame_number: int | None = None,
) -> Image.Image:
    """A copy of ``image`` with the requested annotations burned in (none: ``image`` itself)."""
    top, bottom = annotation_lines(ds, annotation, window=window, frame_number=frame_number)
    if not top and not bottom:
        return image
    out = image.copy()
    draw = ImageDraw.Draw(out)
    size = max(10, min(24, round(min(out.size) / 24)))
    font = _font(size)
    line_height = round(size * 1.25)
    margin = max(2, size // 4)
    stroke = max(1, size // 10)
    white, black = (255, 0) if out.mode == "L" else ((255, 255, 255), (0, 0, 0))
    bottom_y = out.height - margin - line_height * len(bottom)
    for lines, y in ((top, margin), (bottom, bottom_y)):
        for line in lines:
            text = _drawable(line, font)
            draw.text(
                (margin, y), text, font=font, fill=white, stroke_width=stroke, stroke_fill=black
            )
            y += line_height
    return out


def annotation_lines(
    ds: Dataset,
    annotation: frozenset[str],
    *,
    window: Window | None = None,
    frame_number: int | None = None,
) -> tuple[list[str], list[str]]:
    """The text of the annotations: (patient lines for the top, technique lines for the bottom)."""
    top: list[str] = []
    bottom: list[str] = []
    if "patient" in annotation:
        name = ds.get("PatientName")
        if name:
            top.append(_person_name(name))
        if ds.get("PatientID"):
            top.append(f"ID: {ds.PatientID}")
        born = _date(str(ds.get("PatientBirthDate", "") or ""))
        sex = str(ds.get("PatientSex", "") or "").strip()
        details = "  ".join(t for t in (born and f"Born: {born}", sex and f"Sex: {sex}") if t)
        if details:
            top.append(details)
    if "technique" in annotation:
        bottom.extend(_technique(ds, window, frame_number))
    return top, bottom


def _technique(ds: Dataset, window: Window | None, frame_number: int | None) -> Iterable[str]:
    modality = str(ds.get("Modality", "") or "").strip()
    description = str(ds.get("SeriesDescription", "") or "").strip()
    if modality or description:
        yield "  ".join(t for t in (modality, description) if t)
    exposure = []
    if ds.get("KVP") not in (None, ""):
        exposure.append(f"{_number(ds.KVP)} kVp")
    if ds.get("Exposure") not in (None, ""):
        exposure.append(f"{_number(ds.Exposure)} mAs")
    elif ds.get("XRayTubeCurrent") not in (None, ""):
        exposure.append(f"{_number(ds.XRayTubeCurrent)} mA")
    if ds.get("ExposureTime") not in (None, ""):
        exposure.append(f"{_number(ds.ExposureTime)} ms")
    if exposure:
        yield "  ".join(exposure)
    if window is not None:
        shape = "" if window.function == "linear" else f" ({window.function})"
        yield f"W {_number(window.width)}  C {_number(window.center)}{shape}"
    index = (frame_number or 1) - 1
    thickness = frame_attribute(ds, index, "PixelMeasuresSequence", "SliceThickness")
    if thickness not in (None, ""):
        yield f"Thickness {_number(thickness)} mm"
    frames = number_of_frames(ds)
    if frame_number is not None and frames > 1:
        yield f"Frame {frame_number}/{frames}"


def _number(value: object) -> str:
    try:
        return f"{float(str(value)):.6g}"
    except ValueError:
        return str(value)


def _date(value: str) -> str:
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _person_name(value: object) -> str:
    """'FAMILY, Given Middle' from the first group of a Person Name the font can draw."""
    groups = [str(value)]
    if isinstance(value, PersonName):
        groups = [g for g in (value.alphabetic, value.ideographic, value.phonetic) if g]
    readable = [_pretty_name(g) for g in groups]
    font = _font(12)
    for name in readable:
        if _drawable(name, font) == name:
            return name
    return readable[0] if readable else ""


def _pretty_name(group: str) -> str:
    parts = [p.strip() for p in group.split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    rest = " ".join(p for p in (prefix, given, middle, suffix) if p)
    return ", ".join(p for p in (family, rest) if p)


@lru_cache(maxsize=8)
def _font(size: int) -> Font:
    try:
        return ImageFont.truetype(_FONT_FILE, size)
    except OSError:
        return ImageFont.load_default(size)


def _drawable(text: str, font: Font) -> str:
    """``text`` with each character the font has no glyph for replaced by '?'."""
    return "".join(c if c.isspace() or _has_glyph(font, c) else "?" for c in text)


@lru_cache(maxsize=4096)
def _has_glyph(font: Font, char: str) -> bool:
    if not isinstance(font, ImageFont.FreeTypeFont):
        return char.isascii() and char.isprintable()
    return _glyph_pixels(font, char) != _glyph_pixels(font, _NOT_A_CHARACTER)


def _glyph_pixels(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    side = round(font.size * 2)
    canvas = Image.new("L", (side, side))
    ImageDraw.Draw(canvas).text((0, 0), char, font=font, fill=255)
    return canvas.tobytes()
