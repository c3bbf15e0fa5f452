"""Rendered resources: DICOM image frames as JPEG, PNG, GIF or JPEG 2000 (PS3.18 8.3.5, 10.4).

A pure core that the HTTP routes (``/rendered``, ``/thumbnail``, WADO-URI) call: ``params``
parses the query, ``pixels`` runs the PS3.4 N.2 grayscale or colour pipeline on one decoded
frame, ``viewport`` crops, flips and scales, ``annotate`` burns in text, and ``encode`` writes
the media type. ``render_frames`` strings them together for a stored Part 10 file, decoding
only the frames asked for with ``pydicom.pixels.pixel_array``; ``render_image`` takes the header
and a frame decoder instead (``pacsflow.render.stored``: frames read through the frame table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_icc_profile, create_icc_transform
from pydicom.pixels.utils import pixel_array
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from pacsflow.dicom.frames import number_of_frames
from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.render.annotate import annotate
from pacsflow.render.encode import (
    RENDERED_MEDIA_TYPES,
    SINGLE_FRAME_MEDIA_TYPES,
    GifAnimation,
    encode_images,
    supported_media_types,
)
from pacsflow.render.fragments import with_scanned_frames
from pacsflow.render.params import (
    RenderParams,
    Viewport,
    Window,
    parse_rendered_params,
    parse_wado_uri_params,
)
from pacsflow.render.pixels import display, display_frame
from pacsflow.render.viewport import apply_viewport, thumbnail_size

__all__ = [
    "MAX_ANIMATION_FRAMES",
    "MAX_ANIMATION_PIXELS",
    "RENDERED_MEDIA_TYPES",
    "RenderParams",
    "Viewport",
    "Window",
    "display_frame",
    "encode_images",
    "frame_count",
    "image_header",
    "parse_rendered_params",
    "parse_wado_uri_params",
    "read_header",
    "read_image_header",
    "render_frames",
    "render_image",
    "supported_media_types",
    "thumbnail_size",
]

# Decoder and pipeline failures on pixel data that the header promised: the object cannot be
# rendered (pydicom raises these for unsupported or corrupt encodings).
_DECODE_ERRORS = (
    ValueError,
    RuntimeError,
    NotImplementedError,
    AttributeError,
    KeyError,
    IndexError,
)
_NON_INTEGER_PIXELS = ("FloatPixelData", "DoubleFloatPixelData")
# The work of one animated image/gif: each frame is decoded, rendered and encoded in turn, so
# memory holds one frame and the encoded bytes; these bound the frames decoded and the bytes.
MAX_ANIMATION_FRAMES = 2048
MAX_ANIMATION_PIXELS = 64 * 1024 * 1024  # 64 frames of 1024x1024, 218 of 640x480


def read_header(path: Path) -> Dataset:
    """A stored object's data set, values over 4 KB (Pixel Data) deferred; ``NotAcceptable``
    when it cannot be read as DICOM."""
    try:
        return dcmread(path, defer_size="4 KB", force=True)
    except (InvalidDicomError, ValueError, EOFError) as exc:
        raise NotAcceptable(f"the object cannot be read as DICOM: {exc}") from exc


def image_header(ds: Dataset) -> Dataset:
    """``ds`` if it is an image this module renders, else ``NotAcceptable``."""
    if any(k in ds for k in _NON_INTEGER_PIXELS):
        raise NotAcceptable("float pixel data (e.g. parametric maps) is not rendered")
    if "PixelData" not in ds or "Rows" not in ds or "Columns" not in ds:
        raise NotAcceptable("the object is not an image: it has no Pixel Data to render")
    return ds


def read_image_header(path: Path) -> Dataset:
    """The header of a stored image (Pixel Data deferred); ``NotAcceptable`` for a non-image."""
    return image_header(read_header(path))


def frame_count(ds: Dataset) -> int:
    """Number of Frames of an image to render; ``NotAcceptable`` when it is not a number."""
    try:
        return number_of_frames(ds)
    except ValueError as exc:
        raise NotAcceptable(str(exc)) from exc


def render_frames(
    path: Path,
    frame_numbers: Sequence[int],
    params: RenderParams,
    media_type: str,
    *,
    default_max: int | None = None,
    header: Dataset | None = None,
) -> bytes:
    """Render frames (1-based; empty: every frame) of a Part 10 file as ``media_type``.

    image/jpeg, image/png and image/jp2 take one frame, image/gif any number (an animation
    timed by Frame Time). Without a viewport, ``default_max`` shrinks each frame to fit that
    many pixels a side. ``header``: the file's data set when the caller has read it
    (``read_header``), so that it is parsed once. Raises ``NotAcceptable`` for a non-image, an
    unsupported media type or several frames in a single-frame type, and ``NotFound`` for a
    frame number out of range.
    """
    ds = image_header(header) if header is not None else read_image_header(path)
    # pydicom decodes straight from the file, reading one frame, except a deflated data set,
    # which only a whole read inflates.
    source: Path | Dataset = dcmread(path, force=True) if _is_deflated(ds) else path
    return render_image(
        ds,
        frame_numbers,
        params,
        media_type,
        lambda index: _decode(source, ds, index),
        default_max=default_max,
    )


def render_image(
    ds: Dataset,
    frame_numbers: Sequence[int],
    params: RenderParams,
    media_type: str,
    decode: Callable[[int], np.ndarray],
    *,
    default_max: int | None = None,
) -> bytes:
    """Render frames of the image whose header is ``ds``, ``decode(index)`` giving the pixels
    of a frame (0-based, as ``pydicom.pixels.pixel_array``); see ``render_frames``."""
    kind = media_type.split(";")[0].strip().lower()
    if kind not in RENDERED_MEDIA_TYPES:
        raise NotAcceptable(f"{media_type!r} is not a rendered media type of this server")
    count = frame_count(ds)
    numbers = list(frame_numbers) or list(range(1, count + 1))
    for number in numbers:
        if not 1 <= number <= count:
            raise NotFound(f"frame {number} is outside 1..{count}")
    if kind in SINGLE_FRAME_MEDIA_TYPES and len(numbers) > 1:
        raise NotAcceptable(f"{kind} holds a single frame; {len(numbers)} frames were asked for")
    if kind == "image/gif":  # rendered and encoded a frame at a time, within bounds
        return _animation(decode, ds, numbers, count, params, default_max)
    images = [
        _render_one(decode, ds, number, count, params, default_max=default_max)
        for number in numbers
    ]
    icc = _icc_profile_bytes(ds, params) if images[0].mode == "RGB" else None
    return encode_images(
        images, kind, params.quality, frame_time_ms=_frame_time_ms(ds), icc_profile=icc
    )


def _animation(
    decode: Callable[[int], np.ndarray],
    ds: Dataset,
    numbers: Sequence[int],
    count: int,
    params: RenderParams,
    default_max: int | None,
) -> bytes:
    """An image/gif of ``numbers``, rendered and encoded one frame at a time, within
    ``MAX_ANIMATION_FRAMES`` frames and ``MAX_ANIMATION_PIXELS`` pixels."""
    if len(numbers) > MAX_ANIMATION_FRAMES:
        raise NotAcceptable(_too_large(f"{len(numbers)} frames"))
    animation = GifAnimation(_frame_time_ms(ds), len(numbers))
    for number in numbers:
        image = _render_one(decode, ds, number, count, params, default_max=default_max)
        if (pixels := len(numbers) * image.width * image.height) > MAX_ANIMATION_PIXELS:
            raise NotAcceptable(_too_large(f"{pixels} pixels"))
        animation.add(image)
    return animation.finish()


def _too_large(size: str) -> str:
    return (
        f"an image/gif of {size} is more than this server renders in one response"
        f" ({MAX_ANIMATION_FRAMES} frames, {MAX_ANIMATION_PIXELS} pixels); ask for fewer"
        " frames (.../frames/1,2,3/rendered) or a smaller viewport"
    )


def _render_one(
    decode: Callable[[int], np.ndarray],
    ds: Dataset,
    number: int,
    count: int,
    params: RenderParams,
    *,
    default_max: int | None,
) -> Image.Image:
    pixels = decode(number - 1)
    try:
        shown = display(ds, pixels, params.window, frame_index=number - 1)
    except _DECODE_ERRORS as exc:
        raise NotAcceptable(f"frame {number} cannot be rendered: {exc}") from exc
    array = shown.array
    if array.ndim == 3 and params.iccprofile == "srgb" and ds.get("ICCProfile"):
        array = _to_srgb(ds, array)
    image = Image.fromarray(array, "RGB" if array.ndim == 3 else "L")
    image = apply_viewport(image, params.viewport, region=params.region, default_max=default_max)
    return annotate(
        image,
        ds,
        params.annotation,
        window=shown.window,
        frame_number=number if count > 1 else None,
    )


def _is_deflated(ds: Dataset) -> bool:
    meta: Dataset | None = getattr(ds, "file_meta", None)
    return meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian


def _decode(source: Path | Dataset, ds: Dataset, index: int) -> np.ndarray:
    options: dict[str, Any] = {}
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        # A file without File Meta Information: pydicom read the encoding off the data set.
        implicit, little = ds.original_encoding
        options["transfer_syntax_uid"] = (
            ImplicitVRLittleEndian
            if implicit
            else ExplicitVRLittleEndian
            if little
            else ExplicitVRBigEndian
        )
    try:
        array: np.ndarray = pixel_array(source, index=index, **options)
    except _DECODE_ERRORS as exc:
        rescanned = with_scanned_frames(source) if isinstance(source, Path) else None
        if rescanned is None:  # not encapsulated data a tolerated padding displaced
            raise NotAcceptable(f"frame {index + 1} cannot be decoded: {exc}") from exc
        try:
            array = pixel_array(rescanned, index=index, **options)
        except _DECODE_ERRORS as again:
            raise NotAcceptable(f"frame {index + 1} cannot be decoded: {again}") from again
    return array


def _frame_time_ms(ds: Dataset) -> float | None:
    """Frame Time (0018,1063) in ms, else 1000 / Recommended Display Frame Rate or Cine Rate."""
    for keyword, per_second in (
        ("FrameTime", False),
        ("RecommendedDisplayFrameRate", True),
        ("CineRate", True),
    ):
        try:
            value = float(ds.get(keyword) or 0)
        except (TypeError, ValueError):
            continue
        if value > 0:
            return 1000 / value if per_second else value
    return None


@lru_cache(maxsize=1)
def _srgb_profile() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def _icc_profile_bytes(ds: Dataset, params: RenderParams) -> bytes | None:
    """The ICC profile to attach (PS3.18 8.3.5.1.5): the instance's for "yes", else sRGB."""
    if params.iccprofile == "yes" and ds.get("ICCProfile"):
        return bytes(ds.ICCProfile)
    return _srgb_profile() if params.iccprofile is not None else None


def _to_srgb(ds: Dataset, rgb: np.ndarray) -> np.ndarray:
    try:
        transform = create_icc_transform(ds, color_space="sRGB")
    except (ValueError, OSError, ImageCms.PyCMSError) as exc:
        raise NotAcceptable(f"the instance's ICC Profile cannot be applied: {exc}") from exc
    converted: np.ndarray = apply_icc_profile(rgb, transform=transform)
    return converted
