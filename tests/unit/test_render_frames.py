"""``render_frames`` on the real corpus: every image renders, frames chosen, errors typed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageCms, ImageSequence
from pydicom.pixels.utils import pixel_array

from pacsflow.dicom.frames import number_of_frames
from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.render import render_frames
from pacsflow.render.params import RenderParams, Viewport, Window
from pacsflow.render.pixels import display_frame
from pacsflow.render.viewport import DEFAULT_THUMBNAIL_SIDE
from tests.support.corpus import CORPUS, corpus_files


def _manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        return {row["path"]: row for row in csv.DictReader(fp)}


MANIFEST = _manifest()
IMAGES = sorted(
    path
    for path, row in MANIFEST.items()
    if row["decode_ok_with"] and row["Rows"] and not path.startswith("malformed/")
)
MULTIFRAME = [rel for rel in IMAGES if int(MANIFEST[rel]["NumberOfFrames"] or 1) > 1]
NOT_IMAGES = [
    "objects/DICOMDIR_media_directory.dcm",
    "objects/ECG_12lead_waveform.dcm",
    "objects/SR_comprehensive_nested.dcm",
    "objects/RTPLAN_small.dcm",
    "derived/encapsulated_pdf_in_CT_small_study.dcm",
    "derived/GSPS_for_CT_small.dcm",
    "structure/image_without_pixel_data_MR_siemens_csa.dcm",
    "malformed/gen_not_dicom_text.dcm",
]


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_the_corpus_lists_images() -> None:
    assert len(IMAGES) > 60 and len(MULTIFRAME) >= 10
    assert {CORPUS / rel for rel in IMAGES} <= set(corpus_files())


@pytest.mark.parametrize("rel", IMAGES)
def test_every_image_renders_at_its_size_and_mode(rel: str) -> None:
    row = MANIFEST[rel]
    image = _open(render_frames(CORPUS / rel, [1], RenderParams(), "image/png"))
    assert image.size == (int(row["Columns"]), int(row["Rows"]))
    gray = row["PhotometricInterpretation"].startswith("MONOCHROME")
    assert image.mode == ("L" if gray else "RGB")


@pytest.mark.parametrize("rel", MULTIFRAME)
def test_gif_of_a_multiframe_file_has_every_frame(rel: str) -> None:
    data = render_frames(CORPUS / rel, [], RenderParams(viewport=Viewport(64, 64)), "image/gif")
    gif = _open(data)
    assert getattr(gif, "n_frames", 1) == int(MANIFEST[rel]["NumberOfFrames"])


def test_gif_frames_are_the_rendered_frames_timed_by_frame_time() -> None:
    rel = "multiframe/enhanced_MR_10frame.dcm"
    gif = _open(render_frames(CORPUS / rel, [], RenderParams(), "image/gif"))
    ds = pydicom.dcmread(CORPUS / rel)
    for index, frame in enumerate(ImageSequence.Iterator(gif)):
        want = display_frame(ds, pixel_array(CORPUS / rel, index=index), None, frame_index=index)
        assert np.array_equal(np.asarray(frame.convert("L")), want)
        assert frame.info["duration"] == 100  # no Frame Time: the default
    cine = _open(
        render_frames(
            CORPUS / "multiframe/US_cine_30frame_jpeg_ybr_full_422.dcm",
            [1, 2, 3],
            RenderParams(),
            "image/gif",
        )
    )
    assert getattr(cine, "n_frames", 1) == 3
    assert cine.info["duration"] == 30  # Frame Time 33.333 ms in GIF's 10 ms steps


def test_a_chosen_frame_is_rendered_with_its_own_window() -> None:
    rel = "multiframe/enhanced_MR_philips_3frame.dcm"
    ds = pydicom.dcmread(CORPUS / rel)
    for number in (1, 2, 3):
        png = np.asarray(_open(render_frames(CORPUS / rel, [number], RenderParams(), "image/png")))
        want = display_frame(
            ds, pixel_array(CORPUS / rel, index=number - 1), None, frame_index=number - 1
        )
        assert np.array_equal(png, want)


@pytest.mark.parametrize("frame", [0, 4, -1])
def test_frame_out_of_range_is_not_found(frame: int) -> None:
    with pytest.raises(NotFound, match=str(frame)):
        render_frames(
            CORPUS / "multiframe/enhanced_MR_philips_3frame.dcm",
            [frame],
            RenderParams(),
            "image/png",
        )


def test_several_frames_in_a_single_frame_type_is_not_acceptable() -> None:
    rel = "multiframe/SC_rgb_2frame.dcm"
    with pytest.raises(NotAcceptable, match="single frame"):
        render_frames(CORPUS / rel, [1, 2], RenderParams(), "image/jpeg")
    with pytest.raises(NotAcceptable, match="single frame"):
        render_frames(CORPUS / rel, [], RenderParams(), "image/png")  # empty: every frame


@pytest.mark.parametrize("rel", NOT_IMAGES)
def test_non_images_are_not_acceptable(rel: str) -> None:
    with pytest.raises(NotAcceptable):
        render_frames(CORPUS / rel, [1], RenderParams(), "image/jpeg")


def test_frames_pydicom_cannot_find_render_through_the_scanned_fragments() -> None:
    # pydicom 3.0.2 finds none of this file's frames past the first (its fragments have odd
    # lengths; DCMTK and GDCM decode all four): the frames the ingest scan reads do.
    path = CORPUS / "modality/XA_4frame_jpeg_lossless.dcm"
    for number in (1, 2, 3, 4):
        jpeg = render_frames(path, [number], RenderParams(), "image/jpeg")
        assert Image.open(io.BytesIO(jpeg)).size == (512, 512)


def test_unsupported_media_type_is_not_acceptable() -> None:
    with pytest.raises(NotAcceptable, match="image/webp"):
        render_frames(CORPUS / "modality/CT_small.dcm", [1], RenderParams(), "image/webp")


def test_parameters_reach_the_pipeline() -> None:
    path = CORPUS / "modality/CT_small.dcm"
    plain = np.asarray(_open(render_frames(path, [1], RenderParams(), "image/png")))
    windowed = np.asarray(
        _open(render_frames(path, [1], RenderParams(window=Window(40, 80)), "image/png"))
    )
    assert not np.array_equal(plain, windowed)
    small = _open(render_frames(path, [1], RenderParams(viewport=Viewport(32, 64)), "image/png"))
    assert small.size == (32, 32)
    annotated = np.asarray(
        _open(
            render_frames(path, [1], RenderParams(annotation=frozenset({"patient"})), "image/png")
        )
    )
    assert not np.array_equal(plain, annotated)
    jpeg = _open(render_frames(path, [1], RenderParams(quality=50), "image/jpeg"))
    assert jpeg.format == "JPEG" and jpeg.size == (128, 128)


def test_iccprofile_is_attached_to_colour_renderings_only() -> None:
    params = RenderParams(iccprofile="srgb")
    colour = _open(render_frames(CORPUS / "modality/US_rgb.dcm", [1], params, "image/png"))
    assert colour.info.get("icc_profile")
    gray = _open(render_frames(CORPUS / "modality/CT_small.dcm", [1], params, "image/png"))
    assert "icc_profile" not in gray.info


def test_deflated_and_no_meta_files_render() -> None:
    for rel in ("transfer-syntax/deflated_CT_small.dcm", "structure/no_preamble_palette_face.dcm"):
        assert _open(render_frames(CORPUS / rel, [1], RenderParams(), "image/png")).size[0] > 0


def test_a_default_size_shrinks_a_large_frame_and_keeps_a_small_one() -> None:
    rel = "multiframe/US_cine_30frame_jpeg_ybr_full_422.dcm"
    side = DEFAULT_THUMBNAIL_SIDE
    middle = _open(
        render_frames(CORPUS / rel, [15], RenderParams(), "image/jpeg", default_max=side)
    )
    assert middle.size == (128, 96)
    small = CORPUS / "transfer-syntax/explicit_le_MR_small.dcm"
    shrunk = render_frames(small, [1], RenderParams(), "image/png", default_max=side)
    assert _open(shrunk).size == (64, 64)
    assert number_of_frames(pydicom.dcmread(CORPUS / rel, stop_before_pixels=True)) == 30


def test_instance_icc_profile_converts_to_srgb_or_is_passed_on(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    ds = pydicom.dcmread(CORPUS / "modality/US_rgb.dcm")
    ds.ICCProfile = srgb
    path = tmp_path / "with_icc.dcm"
    ds.save_as(path)
    plain = np.asarray(_open(render_frames(path, [1], RenderParams(), "image/png")), dtype=int)
    converted = _open(render_frames(path, [1], RenderParams(iccprofile="srgb"), "image/png"))
    assert np.abs(np.asarray(converted, dtype=int) - plain).max() <= 2  # sRGB to sRGB
    passed_on = _open(render_frames(path, [1], RenderParams(iccprofile="yes"), "image/png"))
    assert passed_on.info["icc_profile"] == srgb
