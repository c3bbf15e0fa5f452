"""Viewport and region: crop, flip, scale to fit (PS3.18 8.3.5.1.3; WADO-URI rows, region)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pacsflow.errors import BadRequest
from pacsflow.render.params import Region, Viewport
from pacsflow.render.viewport import apply_viewport, fit_size, thumbnail_size


def _coordinates(width: int = 200, height: int = 100) -> Image.Image:
    """An RGB image whose red channel is x and green channel y: every pixel says where it is."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _xy(image: Image.Image, x: int, y: int) -> tuple[int, int]:
    r, g, _ = image.getpixel((x, y))  # type: ignore[misc]
    return r, g


def test_no_viewport_is_the_image_itself() -> None:
    image = _coordinates()
    out = apply_viewport(image, None)
    assert out.size == (200, 100)
    assert np.array_equal(np.asarray(out), np.asarray(image))


@pytest.mark.parametrize(
    ("viewport", "size"),
    [
        (Viewport(100, 100), (100, 50)),  # width bounds
        (Viewport(1000, 25), (50, 25)),  # height bounds
        (Viewport(400, 400), (400, 200)),  # enlarged to fit
        (Viewport(None, 50), (100, 50)),  # WADO-URI rows alone
        (Viewport(60, None), (60, 30)),  # WADO-URI columns alone
        (Viewport(None, None), (200, 100)),
        (Viewport(1, 1), (1, 1)),  # never 0 pixels
    ],
)
def test_scale_to_fit_keeps_the_aspect_ratio(viewport: Viewport, size: tuple[int, int]) -> None:
    assert apply_viewport(_coordinates(), viewport).size == size


def test_source_region_in_pixels_is_cut_out_exactly() -> None:
    out = apply_viewport(_coordinates(), Viewport(50, 40, 10, 20, 50, 40))
    assert out.size == (50, 40)
    assert _xy(out, 0, 0) == (10, 20)
    assert _xy(out, 49, 39) == (59, 59)


def test_source_region_defaults_to_the_rest_of_the_image() -> None:
    out = apply_viewport(_coordinates(), Viewport(190, 95, 10, 5, None, None))
    assert out.size == (190, 95)
    assert _xy(out, 0, 0) == (10, 5)
    assert _xy(out, 189, 94) == (199, 99)


def test_source_region_is_clipped_to_the_image() -> None:
    out = apply_viewport(_coordinates(), Viewport(50, 100, 150, 0, 500, 100))
    assert out.size == (50, 100)  # columns 150..199 of 200, 1:1
    assert _xy(out, 0, 0) == (150, 0)
    assert _xy(out, 49, 99) == (199, 99)


def test_negative_sw_flips_horizontally_and_sh_vertically() -> None:
    image = _coordinates()
    flipped = apply_viewport(image, Viewport(200, 100, 0, 0, -200, None))
    assert _xy(flipped, 0, 0) == (199, 0)
    assert _xy(flipped, 199, 0) == (0, 0)
    both = apply_viewport(image, Viewport(50, 40, 10, 20, -50, -40))
    assert _xy(both, 0, 0) == (59, 59)
    assert _xy(both, 49, 39) == (10, 20)
    assert np.array_equal(np.asarray(both)[::-1, ::-1], np.asarray(image)[20:60, 10:60])


def test_crop_then_scale() -> None:
    out = apply_viewport(_coordinates(), Viewport(20, 20, 100, 0, 100, 100))
    assert out.size == (20, 20)
    r, _ = _xy(out, 0, 0)
    assert 100 <= r <= 105  # the region's left edge, averaged over 5 source columns


@pytest.mark.parametrize(
    "viewport",
    [
        Viewport(10, 10, 200, 0, None, None),
        Viewport(10, 10, 0, 100, 5, 5),
        Viewport(10, 10, 250, 0, 5, 5),
    ],
)
def test_region_outside_the_image_is_a_bad_request(viewport: Viewport) -> None:
    with pytest.raises(BadRequest, match="'viewport'"):
        apply_viewport(_coordinates(), viewport)


def test_wado_uri_region_is_normalized_then_scaled() -> None:
    image = _coordinates()
    out = apply_viewport(image, None, region=Region(0.5, 0.5, 1.0, 1.0))
    assert out.size == (100, 50)
    assert _xy(out, 0, 0) == (100, 50)
    rows_bound = apply_viewport(image, Viewport(None, 25), region=Region(0, 0, 0.5, 1))
    assert rows_bound.size == (25, 25)


def test_default_max_only_shrinks() -> None:
    image = _coordinates()
    assert apply_viewport(image, None, default_max=50).size == (50, 25)
    assert apply_viewport(image, None, default_max=500).size == (200, 100)
    assert apply_viewport(image, Viewport(300, 300), default_max=50).size == (300, 150)


def test_grayscale_keeps_its_mode() -> None:
    gray = Image.new("L", (64, 32), 90)
    out = apply_viewport(gray, Viewport(16, 16))
    assert out.mode == "L" and out.size == (16, 8)
    assert set(np.asarray(out).ravel()) == {90}


def test_thumbnail_and_fit_sizes() -> None:
    assert thumbnail_size(512, 256) == (128, 64)
    assert thumbnail_size(64, 64) == (64, 64)
    assert thumbnail_size(100, 1000, 50) == (5, 50)
    assert fit_size(3, 1, 10, 10) == (10, 3)
    assert fit_size(3, 1, None, None) == (3, 1)
