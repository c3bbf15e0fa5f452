"""The archive's private SHA-256 and size attributes in QIDO-RS requests (pacsflow.dicom.stored)."""

from __future__ import annotations

import pytest

from pacsflow.dicom.stored import CREATOR_TAG, SHA256_TAG, SIZE_TAG, stored_attributes
from pacsflow.errors import BadRequest
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query


def test_includefield_of_a_stored_attribute_asks_for_its_private_creator_too() -> None:
    query = parse_query(Level.INSTANCE, [("includefield", "00a11001,00A11002")])
    assert {CREATOR_TAG, SHA256_TAG, SIZE_TAG} <= query.return_tags


@pytest.mark.parametrize("level", [Level.STUDY, Level.SERIES])
def test_stored_attributes_are_instance_attributes_only(level: Level) -> None:
    with pytest.raises(BadRequest, match="instance attributes"):
        parse_query(level, [("includefield", SHA256_TAG)])


def test_other_private_attributes_stay_unknown() -> None:
    with pytest.raises(BadRequest, match="not a DICOM attribute"):
        parse_query(Level.INSTANCE, [("includefield", "00A11003")])


def test_the_private_block_in_dicom_json() -> None:
    assert stored_attributes("ab" * 32, 12) == {
        "00A10010": {"vr": "LO", "Value": ["PACSFLOW 1"]},
        "00A11001": {"vr": "LO", "Value": ["ab" * 32]},
        "00A11002": {"vr": "UV", "Value": [12]},
    }
