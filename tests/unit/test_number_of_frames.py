"""The one reader of Number of Frames (0028,0008): ``pacsflow.dicom.frames.number_of_frames``,
and ``frame_count`` under it for the value of a DICOM JSON attribute (WADO-WS metadata)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from pacsflow.dicom.frames import frame_count, number_of_frames


@pytest.mark.parametrize(("value", "count"), [(None, 1), ("", 1), ("0", 1), ("1", 1), ("30", 30)])
def test_absent_empty_or_zero_is_one_frame(value: str | None, count: int) -> None:
    ds = Dataset()
    if value is not None:
        ds.NumberOfFrames = value
    assert number_of_frames(ds) == count


def test_a_negative_count_is_refused() -> None:
    ds = Dataset()
    ds.NumberOfFrames = "-2"
    with pytest.raises(ValueError, match="negative"):
        number_of_frames(ds)


def test_several_values_are_refused() -> None:
    ds = Dataset()
    ds.NumberOfFrames = ["2", "3"]
    with pytest.raises(ValueError, match="not a number"):
        number_of_frames(ds)


@pytest.mark.parametrize(("value", "count"), [(None, 1), (0, 1), (10, 10), ("10", 10), (" 7", 7)])
def test_a_dicom_json_value_reads_the_same(value: object, count: int) -> None:
    """An IS value in DICOM JSON is a number or a string (PS3.18 F.2.3)."""
    assert frame_count(value) == count


def test_a_dicom_json_value_that_is_no_count_is_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        frame_count("ten")
