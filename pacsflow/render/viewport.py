"""Source region, flips and scaling of a rendered frame (PS3.18 8.3.5.1.3 viewport, 9 region).

The order is PS3.18 8.3.5.1's: the source region is cut out first (WADO-URI's normalized
``region``, then the viewport's ``sx,sy,sw,sh`` in pixels of what is left), then the result is
flipped for a negative ``sw``/``sh`` and scaled to fit ``vw`` x ``vh`` keeping its aspect ratio.
Pillow resamples (Lanczos, after a block average for large shrinks); a box with fractional
edges is resampled, not rounded.
"""

from __future__ import annotations

from typing import Final

from PIL import Image

from pacsflow.errors import BadRequest
from pacsflow.render.params import Region, Viewport

__all__ = ["DEFAULT_THUMBNAIL_SIDE", "apply_viewport", "fit_size", "thumbnail_size"]

DEFAULT_THUMBNAIL_SIDE: Final = 128
# A shrink by 4x or more first averages whole blocks (Image.reduce), then resamples what is left
# by at least this factor: a quarter of the Lanczos taps of a 512 -> 128 thumbnail, the same look.
REDUCING_GAP: Final = 2.0

Box = tuple[float, float, float, float]


def thumbnail_size(
    width: int, height: int, max_side: int = DEFAULT_THUMBNAIL_SIDE
) -> tuple[int, int]:
    """The size of a thumbnail: the image shrunk (never enlarged) to fit max_side x max_side."""
    if width <= max_side and height <= max_side:
        return width, height
    return fit_size(width, height, max_side, max_side)


def fit_size(
    width: float, height: float, max_width: int | None, max_height: int | None
) -> tuple[int, int]:
    """The largest size with the aspect ratio of width x height inside the bounds (None: any)."""
    scales = [b / s for b, s in ((max_width, width), (max_height, height)) if b is not None]
    if not scales:
        return max(1, round(width)), max(1, round(height))
    scale = min(scales)
    return max(1, round(width * scale)), max(1, round(height * scale))


def apply_viewport(
    image: Image.Image,
    viewport: Viewport | None,
    *,
    region: Region | None = None,
    default_max: int | None = None,
) -> Image.Image:
    """Crop, flip and scale ``image`` for ``viewport`` (and a WADO-URI ``region``).

    Without a viewport the region is returned at its size, or shrunk to ``default_max`` a side
    (thumbnails). A source region outside the image is a ``BadRequest``.
    """
    box: Box = (0.0, 0.0, float(image.width), float(image.height))
    if region is not None:
        box = (
            region.x1 * image.width,
            region.y1 * image.height,
            region.x2 * image.width,
            region.y2 * image.height,
        )
    flip_x = flip_y = False
    if viewport is not None:
        box, flip_x, flip_y = _source_box(box, viewport)
    width, height = box[2] - box[0], box[3] - box[1]
    if viewport is not None:
        size = fit_size(width, height, viewport.vw, viewport.vh)
    elif default_max is not None and (width > default_max or height > default_max):
        size = fit_size(width, height, default_max, default_max)
    else:
        size = (max(1, round(width)), max(1, round(height)))
    out = _resample(image, box, size)
    if flip_x:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if flip_y:
        out = out.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return out


def _source_box(outer: Box, viewport: Viewport) -> tuple[Box, bool, bool]:
    """The viewport's source rectangle inside ``outer`` (sx, sy relative to its corner)."""
    left, top, right, bottom = outer
    x0 = left + (viewport.sx or 0.0)
    y0 = top + (viewport.sy or 0.0)
    x1 = right if viewport.sw is None else min(right, x0 + abs(viewport.sw))
    y1 = bottom if viewport.sh is None else min(bottom, y0 + abs(viewport.sh))
    if x0 >= right or y0 >= bottom or x1 <= x0 or y1 <= y0:
        raise BadRequest(
            "query parameter 'viewport': the source region sx,sy,sw,sh lies outside the "
            f"{right - left:g}x{bottom - top:g} image"
        )
    flip_x = viewport.sw is not None and viewport.sw < 0
    flip_y = viewport.sh is not None and viewport.sh < 0
    return (x0, y0, x1, y1), flip_x, flip_y


def _resample(image: Image.Image, box: Box, size: tuple[int, int]) -> Image.Image:
    if all(float(v).is_integer() for v in box):
        left, top, right, bottom = (int(v) for v in box)
        cut = image.crop((left, top, right, bottom))
        if cut.size == size:
            return cut
        return cut.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
