"""The Store Instances Response (``pacsflow.stow.response``): status code and DICOM JSON."""

from __future__ import annotations

from typing import Any

import pytest

from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.stow.response import PartOutcome, StowResult

ROOT = "http://archive.example/dicom-web"
CT = "1.2.840.10008.5.1.4.1.1.2"


def stored(number: int, study: str = "1.2", *, processed: bool = True, **kw: Any) -> PartOutcome:
    """A part published to the bus (and processed, unless told otherwise)."""
    return PartOutcome(
        number,
        sop_class_uid=CT,
        sop_uid=f"{study}.3.{number}",
        study_uid=study,
        series_uid=f"{study}.3",
        published=True,
        processed=processed,
        **kw,
    )


def failed(
    number: int, reason: FailureReason | None = FailureReason.CANNOT_UNDERSTAND
) -> PartOutcome:
    part = PartOutcome(number, sop_class_uid=CT, sop_uid=f"9.9.{number}", study_uid="9.9")
    if reason is not None:
        part.fail(reason, "refused")
    return part


def result(*parts: PartOutcome, study: str | None = None) -> StowResult:
    return StowResult(study_uid=study, consistency="indexed", parts=list(parts))


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ([stored(1)], 200),
        ([stored(1), stored(2, "5.6")], 200),
        ([stored(1), failed(2)], 202),
        ([stored(1, warning_reason=int(WarningReason.REPLACED_DIFFERENT_INSTANCE))], 202),
        ([stored(1), stored(2, processed=False)], 202),
        ([failed(1)], 409),
        ([failed(1), failed(2, FailureReason.SOP_CLASS_NOT_SUPPORTED)], 409),
        ([failed(1, None)], 409),  # never published
        ([], 409),
    ],
    ids=[
        "one stored",
        "two studies stored",
        "some failed",
        "warning",
        "unprocessed",
        "none stored",
        "all failed",
        "not published",
        "no parts",
    ],
)
def test_status_code(parts: list[PartOutcome], code: int) -> None:
    assert result(*parts).status_code == code


def test_a_published_part_that_failed_processing_is_not_stored() -> None:
    part = stored(1)
    part.fail(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "no Study Instance UID")

    assert not part.stored
    assert result(part).status_code == 409


def _items(body: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    assert body[tag]["vr"] == "SQ"
    return list(body[tag]["Value"])


def test_to_json_references_stored_and_lists_failed_instances() -> None:
    ok = stored(1, "1.2")
    warned = stored(2, "1.2", warning_reason=int(WarningReason.COERCION_OF_DATA_ELEMENTS))
    bad = failed(3, FailureReason.SOP_CLASS_NOT_SUPPORTED)

    body = result(ok, warned, bad).to_json(ROOT)

    referenced = _items(body, "00081199")
    instances = f"{ROOT}/studies/1.2/series/1.2.3/instances"
    assert referenced == [
        {
            "00081150": {"vr": "UI", "Value": [CT]},
            "00081155": {"vr": "UI", "Value": ["1.2.3.1"]},
            "00081190": {"vr": "UR", "Value": [f"{instances}/1.2.3.1"]},
        },
        {
            "00081150": {"vr": "UI", "Value": [CT]},
            "00081155": {"vr": "UI", "Value": ["1.2.3.2"]},
            "00081190": {"vr": "UR", "Value": [f"{instances}/1.2.3.2"]},
            "00081196": {"vr": "US", "Value": [0xB000]},
        },
    ]
    assert _items(body, "00081198") == [
        {
            "00081150": {"vr": "UI", "Value": [CT]},
            "00081155": {"vr": "UI", "Value": ["9.9.3"]},
            "00081197": {"vr": "US", "Value": [0x0122]},
        }
    ]
    assert body["00081190"] == {"vr": "UR", "Value": [f"{ROOT}/studies/1.2"]}


def test_a_part_without_uids_is_listed_with_empty_references() -> None:
    part = PartOutcome(1)
    part.fail(FailureReason.CANNOT_UNDERSTAND, "not DICOM")

    body = result(part).to_json(ROOT)

    assert _items(body, "00081198") == [
        {
            "00081150": {"vr": "UI"},
            "00081155": {"vr": "UI"},
            "00081197": {"vr": "US", "Value": [0xC000]},
        }
    ]
    assert "00081199" not in body


def test_a_part_that_was_never_published_fails_with_processing_failure() -> None:
    body = result(failed(1, None)).to_json(ROOT)

    [item] = _items(body, "00081198")
    assert item["00081197"] == {"vr": "US", "Value": [0x0110]}


def test_all_stored_has_no_failed_sequence() -> None:
    body = result(stored(1), stored(2)).to_json(ROOT)

    assert "00081198" not in body
    assert len(_items(body, "00081199")) == 2


def test_study_retrieve_url_only_when_one_study() -> None:
    two_studies = result(stored(1, "1.2"), stored(2, "5.6")).to_json(ROOT)
    assert two_studies["00081190"] == {"vr": "UR"}

    none_stored = result(failed(1)).to_json(ROOT)
    assert none_stored["00081190"] == {"vr": "UR"}

    # A failed part of another study does not count: the URL names the study that holds data.
    one_study = result(stored(1, "1.2"), failed(2)).to_json(ROOT)
    assert one_study["00081190"] == {"vr": "UR", "Value": [f"{ROOT}/studies/1.2"]}


def test_stow_to_a_study_names_that_study() -> None:
    body = result(stored(1, "1.2"), study="1.2").to_json(ROOT)

    assert body["00081190"] == {"vr": "UR", "Value": [f"{ROOT}/studies/1.2"]}
