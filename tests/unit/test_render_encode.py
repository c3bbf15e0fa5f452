"""Rendered Media Types: JPEG, PNG, GIF (animated, every frame kept) and JPEG 2000."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageSequence, features

from pacsflow.errors import NotAcceptable
from pacsflow.render import encode
from pacsflow.render.encode import (
    RENDERED_MEDIA_TYPES,
    encode_images,
    supported_media_types,
)


def _gradient(mode: str = "L", size: tuple[int, int] = (64, 48)) -> Image.Image:
    x = np.linspace(0, 255, size[0] * size[1]).reshape(size[1], size[0]).astype(np.uint8)
    if mode == "L":
        return Image.fromarray(x, "L")
    return Image.fromarray(np.stack([x, 255 - x, x // 2], axis=-1), "RGB")


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize(
    ("media_type", "fmt"), [("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/gif", "GIF")]
)
def test_single_frame_formats(mode: str, media_type: str, fmt: str) -> None:
    image = _gradient(mode)
    decoded = _open(encode_images([image], media_type, None))
    assert decoded.format == fmt
    assert decoded.size == image.size
    if media_type == "image/png":
        assert decoded.mode == mode
        assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_png_is_lossless_and_jpeg_close() -> None:
    image = _gradient("L")
    jpeg = np.asarray(_open(encode_images([image], "image/jpeg", None)), dtype=np.int64)
    assert np.abs(jpeg - np.asarray(image, dtype=np.int64)).max() <= 8


def test_jpeg_quality_changes_the_size() -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8))
    small = encode_images([image], "image/jpeg", 10)
    large = encode_images([image], "image/jpeg", 95)
    assert len(small) < len(large)


def test_media_type_parameters_and_case_are_ignored() -> None:
    data = encode_images([_gradient()], "Image/PNG; charset=binary", None)
    assert _open(data).format == "PNG"


def test_animated_gif_keeps_every_frame_with_its_duration() -> None:
    frames = [Image.new("L", (8, 8), v) for v in (10, 10, 200, 10)]  # two identical neighbours
    gif = _open(encode_images(frames, "image/gif", None, frame_time_ms=40))
    assert getattr(gif, "n_frames", 1) == 4
    shown = [f.convert("L").getpixel((0, 0)) for f in ImageSequence.Iterator(gif)]
    assert shown == [10, 10, 200, 10]
    assert [f.info["duration"] for f in ImageSequence.Iterator(gif)] == [40] * 4
    assert gif.info.get("loop") == 0


def test_animated_gif_of_colour_frames_keeps_each_palette() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (8, 8), c) for c in colours]
    gif = _open(encode_images(frames, "image/gif", None))
    shown = [f.convert("RGB").getpixel((3, 3)) for f in ImageSequence.Iterator(gif)]
    assert shown == colours
    assert gif.info["duration"] == encode.DEFAULT_FRAME_TIME_MS


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png", "image/jp2"])
def test_single_frame_types_refuse_several_frames(media_type: str) -> None:
    with pytest.raises(NotAcceptable, match="single frame"):
        encode_images([_gradient(), _gradient()], media_type, None)


@pytest.mark.parametrize("media_type", ["image/tiff", "video/mp4", "application/dicom"])
def test_other_media_types_are_not_acceptable(media_type: str) -> None:
    with pytest.raises(NotAcceptable):
        encode_images([_gradient()], media_type, None)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_2000_lossless_by_default_and_lossy_with_quality(mode: str) -> None:
    assert features.check("jpg_2000")  # the pinned Pillow wheel ships OpenJPEG
    image = _gradient(mode)
    lossless = encode_images([image], "image/jp2", None)
    assert lossless.startswith(b"\x00\x00\x00\x0cjP  ")  # the JP2 signature box
    assert np.array_equal(np.asarray(_open(lossless)), np.asarray(image))
    lossy = encode_images([image], "image/jp2", 5)
    assert len(lossy) < len(lossless)
    assert _open(lossy).size == image.size


def test_jpeg_2000_without_openjpeg_is_not_acceptable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encode, "_have_jpeg2000", lambda: False)
    assert "image/jp2" not in supported_media_types()
    with pytest.raises(NotAcceptable, match="OpenJPEG"):
        encode_images([_gradient()], "image/jp2", None)


def test_rendered_media_types() -> None:
    assert RENDERED_MEDIA_TYPES[0] == "image/jpeg"  # PS3.18 8.7.4: the default
    assert set(supported_media_types()) <= set(RENDERED_MEDIA_TYPES)


def test_icc_profile_is_embedded() -> None:
    profile = b"\x00" * 128 + b"fake"
    png = _open(encode_images([_gradient("RGB")], "image/png", None, icc_profile=profile))
    assert png.info["icc_profile"] == profile
