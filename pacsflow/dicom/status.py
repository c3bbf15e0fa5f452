"""Failure and Warning Reason codes of the Store Instances Response Module (PS3.18 Annex I).

Codes marked "pacsflow" are implementation-specific, as Table I.2-1 allows; they are listed in
docs/conformance.md.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["FailureReason", "WarningReason"]


class FailureReason(IntEnum):
    """Failure Reason (0008,1197) values (PS3.18 Table I.2-1)."""

    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111  # pacsflow: duplicate policy "reject" (PS3.7 C.4.2 status)
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
    STUDY_INSTANCE_UID_MISMATCH = 0xC409  # pacsflow (the code dcm4chee-arc uses too)
    BULK_DATA_MISSING = 0xC410  # pacsflow: a BulkDataURI matches no part (PS3.18 10.5.1.4)
    BULK_DATA_AMBIGUOUS = 0xC411  # pacsflow: a bulk data part named twice, or two parts one name


class WarningReason(IntEnum):
    """Warning Reason (0008,1196) values (PS3.18 Table I.2-2)."""

    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007
    REPLACED_DIFFERENT_INSTANCE = 0xB100  # pacsflow: duplicate policy "replace"
    ENCODING_TOLERATED = 0xB101  # pacsflow: an encoding deviation tolerated, stored as received
