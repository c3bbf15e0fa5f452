"""Burned-in annotations: patient and technique text, legible, charset-safe (PS3.18 8.3.5.1.1)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from pacsflow.render.annotate import annotate, annotation_lines
from pacsflow.render.params import Window
from tests.support.corpus import CORPUS


def _patient() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane^Q^Dr"
    ds.PatientID = "PID-42"
    ds.PatientBirthDate = "19700131"
    ds.PatientSex = "F"
    ds.Modality = "CT"
    ds.KVP = "120"
    ds.Exposure = "250"
    ds.SliceThickness = "2.5"
    ds.NumberOfFrames = 10
    return ds


def test_patient_lines() -> None:
    top, bottom = annotation_lines(_patient(), frozenset({"patient"}))
    assert top == ["Doe, Dr Jane Q", "ID: PID-42", "Born: 1970-01-31  Sex: F"]
    assert bottom == []


def test_technique_lines_name_the_window_applied() -> None:
    window = Window(40, 400, "sigmoid")
    top, bottom = annotation_lines(
        _patient(), frozenset({"technique"}), window=window, frame_number=3
    )
    assert top == []
    assert bottom == [
        "CT",
        "120 kVp  250 mAs",
        "W 400  C 40 (sigmoid)",
        "Thickness 2.5 mm",
        "Frame 3/10",
    ]


def test_missing_attributes_give_no_empty_lines() -> None:
    assert annotation_lines(Dataset(), frozenset({"patient", "technique"})) == ([], [])


def test_person_name_picks_a_drawable_group() -> None:
    ds = pydicom.dcmread(CORPUS / "charset/chrH31_ISO2022_IR87.dcm")
    top, _ = annotation_lines(ds, frozenset({"patient"}))
    assert top[0] == "Yamada, Tarou"  # the alphabetic group of Yamada^Tarou=山田^太郎=やまだ^たろう


@pytest.mark.parametrize(
    "name",
    [
        "chrArab_ISO_IR_127.dcm",
        "chrGreek_ISO_IR_126.dcm",
        "chrHbrw_ISO_IR_138.dcm",
        "chrI2_ISO2022_IR149.dcm",
        "chrRuss_ISO_IR_144.dcm",
        "chrX1_ISO_IR_192.dcm",
        "chrX2_GB18030.dcm",
        "chrFrenMulti_ISO_IR_100_multivalue.dcm",
    ],
)
def test_unicode_names_render(name: str) -> None:
    ds = pydicom.dcmread(CORPUS / "charset" / name)
    image = Image.new("L", (256, 256), 128)
    out = annotate(image, ds, frozenset({"patient"}))
    assert out.size == image.size and out.mode == "L"
    assert not np.array_equal(np.asarray(out), np.asarray(image))
    assert np.asarray(image).max() == 128  # the input is left alone


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("background", [0, 255])
def test_text_is_outlined_so_it_reads_on_any_background(mode: str, background: int) -> None:
    image = Image.new(mode, (200, 200), (background,) * (1 if mode == "L" else 3))
    out = np.asarray(annotate(image, _patient(), frozenset({"patient", "technique"})))
    assert out.min() == 0 and out.max() == 255  # white text, black outline


def test_no_annotation_returns_the_image() -> None:
    image = Image.new("L", (10, 10))
    assert annotate(image, _patient(), frozenset()) is image
