"""The grayscale and colour pipelines (PS3.4 N.2) against independent references.

Golden references: (1) pydicom's own ``apply_modality_lut`` + ``apply_voi_lut`` /
``apply_color_lut`` pipeline, scaled to 8 bits here; (2) DCMTK's ``dcmj2pnm`` (skipped where it
is not installed). Tolerance: at most 1 grey level anywhere, and a mean difference of at most
0.6 against pydicom, 0.85 against DCMTK (which truncates where pacsflow rounds, and whose
min-max window is one value wider); frames of a lossy JPEG, which DCMTK decodes with another
IDCT, may differ by 2 with a mean of at most 1.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from pacsflow.errors import NotAcceptable
from pacsflow.render.params import Window
from pacsflow.render.pixels import display, display_frame
from tests.support.corpus import CORPUS

MAX_DIFF = 1
MAX_MEAN = 0.6
DCMTK_MAX_MEAN = 0.85
LOSSY_MAX_DIFF = 2
LOSSY_MAX_MEAN = 1.0


def _manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        return {row["path"]: row for row in csv.DictReader(fp)}


MANIFEST = _manifest()
IMAGES = sorted(
    path
    for path, row in MANIFEST.items()
    if row["decode_ok_with"] and row["Rows"] and not path.startswith("malformed/")
)
# Windows in enhanced functional groups: pydicom's top-level functions do not see them.
FUNCTIONAL_GROUP_WINDOWS = {
    "multiframe/enhanced_CT_2frame_supplemental_palette.dcm",
    "multiframe/enhanced_MR_philips_3frame.dcm",
}


def _decode(rel: str, index: int = 0) -> tuple[Dataset, np.ndarray]:
    ds = pydicom.dcmread(CORPUS / rel, force=True)
    source: Path | Dataset = (
        ds if "Deflated" in MANIFEST[rel]["TransferSyntaxName"] else CORPUS / rel
    )
    options: dict[str, Any] = {}
    if "TransferSyntaxUID" not in ds.file_meta:
        options["transfer_syntax_uid"] = pydicom.uid.ImplicitVRLittleEndian
    arr: np.ndarray = pixel_array(source, index=index, **options)
    return ds, arr


def _pydicom_reference(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    """pydicom's pipeline, written out here, scaled to 0..255."""
    photometric = ds.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        peak = 65535 if rgb.dtype == np.uint16 else 255
        palette: np.ndarray = np.rint(rgb.astype(np.float64) * 255 / peak)
        return palette
    if arr.ndim == 3:
        colour: np.ndarray = np.rint(arr.astype(np.float64) * 255 / (2**ds.BitsStored - 1))
        return colour
    values = apply_modality_lut(arr, ds)
    if "WindowCenter" in ds:
        out = apply_voi_lut(values, ds, prefer_lut=False)
        # Windowing clamps to pydicom's output range: probe its two ends.
        low, high = apply_voi_lut(np.array([-1e15, 1e15]), ds, prefer_lut=False)
        ref = (out - low) / (high - low) * 255
    elif "VOILUTSequence" in ds:
        bits = ds.VOILUTSequence[0].LUTDescriptor[2]
        ref = apply_voi_lut(values, ds).astype(np.float64) * 255 / (2**bits - 1)
    else:
        values = values.astype(np.float64)
        span = values.max() - values.min()
        ref = (values - values.min()) / (span or 1) * 255
    if photometric == "MONOCHROME1":
        ref = 255 - ref
    rounded: np.ndarray = np.rint(ref)
    return rounded


def _assert_close(got: np.ndarray, want: np.ndarray, max_diff: int, max_mean: float) -> None:
    assert got.shape == want.shape
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= max_diff, f"max diff {diff.max()}"
    assert diff.mean() <= max_mean, f"mean diff {diff.mean():.3f}"


@pytest.mark.parametrize("rel", sorted(set(IMAGES) - FUNCTIONAL_GROUP_WINDOWS))
def test_matches_pydicom_pipeline(rel: str) -> None:
    ds, arr = _decode(rel)
    got = display_frame(ds, arr, None)
    assert got.dtype == np.uint8
    _assert_close(got, _pydicom_reference(ds, arr), MAX_DIFF, MAX_MEAN)


def test_enhanced_frames_take_their_own_functional_group_window() -> None:
    rel = "multiframe/enhanced_MR_philips_3frame.dcm"
    for index in range(3):
        ds, arr = _decode(rel, index)
        item = ds.PerFrameFunctionalGroupsSequence[index].FrameVOILUTSequence[0]
        flat = Dataset()
        for keyword in ("PhotometricInterpretation", "BitsStored", "PixelRepresentation"):
            setattr(flat, keyword, ds[keyword].value)
        flat.WindowCenter, flat.WindowWidth = item.WindowCenter, item.WindowWidth
        shown = display(ds, arr, None, frame_index=index)
        assert shown.window == Window(float(item.WindowCenter), float(item.WindowWidth))
        _assert_close(shown.array, _pydicom_reference(flat, arr), MAX_DIFF, MAX_MEAN)


def test_enhanced_ct_rescale_and_window_from_shared_groups() -> None:
    ds, arr = _decode("multiframe/enhanced_CT_2frame_supplemental_palette.dcm")
    shown = display(ds, arr, None)
    assert shown.window == Window(49, 102)
    hu = arr.astype(np.float64) - 1024  # shared Pixel Value Transformation: slope 1, -1024
    assert (shown.array[hu <= 49 - 0.5 - 101 / 2] == 0).all()
    assert (shown.array[hu > 49 - 0.5 + 101 / 2] == 255).all()


# --- DCMTK -------------------------------------------------------------------------------------

DCMJ2PNM = shutil.which("dcmj2pnm")
# DCMTK (as packaged) decodes neither JPEG 2000 nor JPEG-LS, nor segmented palettes.
DCMTK_IMAGES = [
    rel
    for rel in IMAGES
    if not any(codec in MANIFEST[rel]["TransferSyntaxName"] for codec in ("JPEG 2000", "JPEG-LS"))
    and rel != "modality/US_palette_segmented_16bit_lut.dcm"
    and rel != "structure/no_preamble_palette_face.dcm"
]


@pytest.mark.parametrize("rel", DCMTK_IMAGES)
def test_matches_dcmtk(rel: str, tmp_path: Path) -> None:
    assert DCMJ2PNM is not None, "DCMTK's dcmj2pnm is missing: apt-get install dcmtk (.ci/run does)"
    ds, arr = _decode(rel)
    shown = display(ds, arr, None)
    options: list[str] = []
    if shown.array.ndim == 2:
        if shown.window is None:
            options = ["+Wl", "1"]  # the VOI LUT Sequence
        elif shown.window.function == "linear-exact":
            options = ["+Wm"]  # no VOI in the header: DCMTK's min-max window
        elif rel in FUNCTIONAL_GROUP_WINDOWS:
            options = ["+Ww", f"{shown.window.center}", f"{shown.window.width}"]
        else:
            options = ["+Wi", "1"]
    out = tmp_path / "frame.pnm"
    command = [
        str(DCMJ2PNM),
        "--no-overlays",
        "+F",
        "1",
        *options,
        "+op",
        str(CORPUS / rel),
        str(out),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    want = np.asarray(Image.open(out))
    lossy = MANIFEST[rel]["TransferSyntaxName"].startswith("JPEG Extended")
    _assert_close(
        shown.array,
        want,
        LOSSY_MAX_DIFF if lossy else MAX_DIFF,
        LOSSY_MAX_MEAN if lossy else DCMTK_MAX_MEAN,
    )


# --- behaviours ------------------------------------------------------------------------------


def _ramp(bits: int = 12, photometric: str = "MONOCHROME2") -> tuple[Dataset, np.ndarray]:
    ds = Dataset()
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16, bits, 0
    ds.SamplesPerPixel = 1
    arr = np.arange(2**bits, dtype=np.uint16).reshape(2 ** (bits // 2), -1)
    return ds, arr


def test_explicit_linear_window_clamps_below_and_above() -> None:
    ds, arr = _ramp()
    out = display_frame(ds, arr, Window(1000, 401))
    assert (out[arr <= 1000 - 0.5 - 200] == 0).all()
    assert (out[arr > 1000 - 0.5 + 200] == 255).all()
    inside = (arr > 800) & (arr < 1200)
    assert np.all(np.diff(out[inside].astype(int)) >= 0)  # monotone within the window
    assert out[arr == 1000][0] in (127, 128)


def test_linear_exact_follows_ps33_c11_2_1_3_2() -> None:
    ds, arr = _ramp()
    c, w = 2000.0, 1000.0
    out = display_frame(ds, arr, Window(c, w, "linear-exact"))
    x = arr.astype(np.float64)
    want = np.where(x <= c - w / 2, 0, np.where(x > c + w / 2, 255, ((x - c) / w + 0.5) * 255))
    _assert_close(out, np.rint(want), 0, 0)


def test_sigmoid_follows_ps33_c11_2_1_3_1() -> None:
    ds, arr = _ramp()
    c, w = 2000.0, 500.0
    out = display_frame(ds, arr, Window(c, w, "sigmoid"))
    want = 255 / (1 + np.exp(-4 * (arr.astype(np.float64) - c) / w))
    _assert_close(out, np.rint(want), 0, 0)


def test_request_window_overrides_the_header() -> None:
    ds, arr = _decode("modality/CT_small.dcm")
    default = display(ds, arr, None)
    bone = display(ds, arr, Window(400, 1800))
    assert bone.window == Window(400, 1800)
    assert not np.array_equal(default.array, bone.array)


def test_header_window_linear_by_default_and_its_function_honoured() -> None:
    ds, arr = _decode("transfer-syntax/explicit_le_MR_small.dcm")
    assert display(ds, arr, None).window == Window(600, 1600, "linear")
    ds.VOILUTFunction = "SIGMOID"
    sigmoid = display(ds, arr, None)
    assert sigmoid.window == Window(600, 1600, "sigmoid")
    _assert_close(sigmoid.array, display_frame(ds, arr, Window(600, 1600, "sigmoid")), 0, 0)


def test_monochrome1_is_inverted() -> None:
    ds, arr = _ramp(photometric="MONOCHROME2")
    mono2 = display_frame(ds, arr, Window(2048, 4096))
    ds.PhotometricInterpretation = "MONOCHROME1"
    mono1 = display_frame(ds, arr, Window(2048, 4096))
    assert np.array_equal(mono1, 255 - mono2)
    assert mono1[0, 0] == 255 and mono1[-1, -1] == 0


def test_corpus_monochrome1_renders_bright_where_values_are_low() -> None:
    ds, arr = _decode("modality/CR_RG3_mono1_j2k_lossless.dcm")
    out = display_frame(ds, arr, None)
    assert out[arr == arr.min()].min() == 255
    assert out[arr == arr.max()].max() < out[arr == arr.min()].min()
    ds.PhotometricInterpretation = "MONOCHROME2"
    assert np.array_equal(out, 255 - display_frame(ds, arr, None))


def test_presentation_lut_shape_inverse() -> None:
    ds, arr = _ramp()
    plain = display_frame(ds, arr, None)
    ds.PresentationLUTShape = "INVERSE"
    assert np.array_equal(display_frame(ds, arr, None), 255 - plain)
    ds.PhotometricInterpretation = "MONOCHROME1"  # DX: INVERSE is MONOCHROME1's one inversion
    assert np.array_equal(display_frame(ds, arr, None), 255 - plain)


@pytest.mark.parametrize(
    ("bits", "signed"), [(8, False), (8, True), (12, False), (12, True), (16, False), (16, True)]
)
def test_full_range_without_voi_spans_0_to_255(bits: int, signed: bool) -> None:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.PixelRepresentation = bits, int(signed)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    dtype = f"{'i' if signed else 'u'}{ds.BitsAllocated // 8}"
    arr = np.linspace(low, high, 64 * 64).round().astype(dtype).reshape(64, 64)
    shown = display(ds, arr, None)
    assert shown.array.min() == 0 and shown.array.max() == 255
    assert shown.window is not None and shown.window.function == "linear-exact"
    assert np.all(np.diff(shown.array.ravel().astype(int)) >= 0)


def test_constant_image_is_black() -> None:
    ds, _ = _ramp()
    assert not display_frame(ds, np.full((4, 4), 7, dtype=np.uint16), None).any()


@pytest.mark.parametrize(
    "rel",
    [
        rel
        for rel in IMAGES
        if MANIFEST[rel]["PhotometricInterpretation"] not in ("MONOCHROME1", "MONOCHROME2")
    ],
)
def test_palette_ybr_and_rgb_come_out_rgb(rel: str) -> None:
    ds, arr = _decode(rel)
    out = display_frame(ds, arr, None)
    assert out.dtype == np.uint8 and out.shape == (ds.Rows, ds.Columns, 3)


def test_ybr_passed_raw_is_converted() -> None:
    rel = "transfer-syntax/jpeg_baseline_ybr_full.dcm"
    ds, rgb = _decode(rel)
    ybr = pixel_array(CORPUS / rel, raw=True)
    converted = display_frame(ds, ybr, None, color_space="YBR_FULL")
    _assert_close(converted, display_frame(ds, rgb, None), 1, 0.5)


def test_sixteen_bit_rgb_is_scaled_to_eight_bits() -> None:
    ds, arr = _decode("transfer-syntax/rle_rgb_16bit.dcm")
    assert arr.dtype == np.uint16
    out = display_frame(ds, arr, None)
    _assert_close(out, np.rint(arr / 257), 0, 0)


def test_window_on_a_colour_image_is_ignored() -> None:
    ds, arr = _decode("modality/US_rgb.dcm")
    assert np.array_equal(display_frame(ds, arr, Window(10, 20)), arr)


def test_unsupported_photometric_interpretation() -> None:
    ds, _ = _ramp()
    ds.PhotometricInterpretation = "CMYK"
    with pytest.raises(NotAcceptable, match="CMYK"):
        display_frame(ds, np.zeros((2, 2, 4), dtype=np.uint8), None)


# --- lookup table --------------------------------------------------------------------------


@pytest.mark.parametrize("rel", sorted(IMAGES))
def test_lookup_table_equals_the_per_pixel_pipeline(
    rel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grayscale frames go through a table of their stored values: exactly the same pixels
    and window as the pipeline applied to every pixel (a table of 0 entries forces that)."""
    ds, arr = _decode(rel)
    if str(ds.get("PhotometricInterpretation", "")) not in ("MONOCHROME1", "MONOCHROME2"):
        return
    fast = display(ds, arr, None)
    for window in (None, Window(40, 400), Window(1000, 3000, "sigmoid")):
        with monkeypatch.context() as patched:
            patched.setattr("pacsflow.render.pixels._LUT_MAX_ENTRIES", 0)
            slow = display(ds, arr, window)
        shown = fast if window is None else display(ds, arr, window)
        assert shown.window == slow.window
        assert shown.array.dtype == slow.array.dtype == np.uint8
        assert np.array_equal(shown.array, slow.array)


@pytest.mark.parametrize(("dtype", "low", "high"), [(np.int16, -2000, 3000), (np.uint8, 3, 250)])
def test_lookup_table_over_signed_and_narrow_values(
    dtype: type, low: int, high: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = np.dtype(dtype).itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.PixelRepresentation = int(np.dtype(dtype).kind == "i")
    ds.RescaleSlope, ds.RescaleIntercept = 2, -7
    arr = np.random.default_rng(3).integers(low, high, size=(300, 300)).astype(dtype)
    fast = display(ds, arr, None)
    monkeypatch.setattr("pacsflow.render.pixels._LUT_MAX_ENTRIES", 0)
    slow = display(ds, arr, None)
    assert fast.window == slow.window and np.array_equal(fast.array, slow.array)
