"""UID value type and syntax check (PS3.5 9.1) and the UIDs pacsflow names."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "JPEG2000_FAMILY",
    "JPEG_FAMILY",
    "NATIVE_TRANSFER_SYNTAXES",
    "NON_PATIENT_SOP_CLASSES",
    "RLE_LOSSLESS",
    "UID",
    "is_valid_uid",
]

_UID_RE: Final = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_LENIENT_UID_RE: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")

IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN: Final = "1.2.840.10008.1.2.2"

# Transfer syntax families, by the codec that decodes them.
NATIVE_TRANSFER_SYNTAXES: Final = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
)
JPEG_FAMILY: Final = frozenset(
    {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
    }
)
JPEG2000_FAMILY: Final = frozenset(
    {
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    }
)
RLE_LOSSLESS: Final = "1.2.840.10008.1.2.5"

# SOP classes that are not patient/study objects: they belong to the Non-Patient Instance
# service (PS3.18 10.9) or to media (PS3.10), not to the Studies service.
NON_PATIENT_SOP_CLASSES: Final[dict[str, str]] = {
    "1.2.840.10008.1.3.10": "Media Storage Directory Storage (DICOMDIR)",
    "1.2.840.10008.5.1.4.39.1": "Color Palette Storage",
    "1.2.840.10008.5.1.4.38.1": "Hanging Protocol Storage",
    "1.2.840.10008.5.1.4.43.1": "Generic Implant Template Storage",
    "1.2.840.10008.5.1.4.44.1": "Implant Assembly Template Storage",
    "1.2.840.10008.5.1.4.45.1": "Implant Template Group Storage",
    "1.2.840.10008.5.1.4.1.1.200.1": "CT Defined Procedure Protocol Storage",
    "1.2.840.10008.5.1.4.1.1.200.2": "Protocol Approval Storage",
}


class UID(str):
    """A DICOM UID (PS3.5 9.1): at most 64 characters, dotted numeric components."""

    __slots__ = ()

    def __new__(cls, value: str) -> UID:
        """Validate ``value`` and wrap it; raise ``ValueError`` when it is not a UID."""
        if not is_valid_uid(value):
            raise ValueError(f"not a valid DICOM UID: {value!r}")
        return super().__new__(cls, value)


def is_valid_uid(value: str, *, strict: bool = True) -> bool:
    """True if ``value`` follows PS3.5 9.1 (digits and dots, no leading zeros, <= 64 chars).

    With ``strict=False`` components with leading zeros are allowed: legacy modalities wrote
    them and archives must still accept such instances (documented in docs/conformance.md).
    """
    pattern = _UID_RE if strict else _LENIENT_UID_RE
    return 0 < len(value) <= 64 and pattern.match(value) is not None
