"""UID syntax check (PS3.5 9.1) and the sets of UIDs pacsflow sorts by.

The UIDs themselves are pydicom's (``pydicom.uid``): one registry, with their names.
"""

from __future__ import annotations

import re
from typing import Final

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    ColorPaletteStorage,
    CTDefinedProcedureProtocolStorage,
    GenericImplantTemplateStorage,
    HangingProtocolStorage,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplantAssemblyTemplateStorage,
    ImplantTemplateGroupStorage,
    InventoryStorage,
    JPEG2000Lossless,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    MediaStorageDirectoryStorage,
    MPEGTransferSyntaxes,
    ProtocolApprovalStorage,
    UncompressedTransferSyntaxes,
    XADefinedProcedureProtocolStorage,
)

from pacsflow.errors import BadRequest

__all__ = [
    "JPEG2000_FAMILY",
    "JPEG_FAMILY",
    "MPEG_FAMILY",
    "NATIVE_TRANSFER_SYNTAXES",
    "NON_PATIENT_SOP_CLASSES",
    "is_valid_uid",
    "require_uid",
]

_UID_RE: Final = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_LENIENT_UID_RE: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")

# Transfer syntax families, by the codec that decodes them.
NATIVE_TRANSFER_SYNTAXES: Final[frozenset[str]] = frozenset(UncompressedTransferSyntaxes)
JPEG_FAMILY: Final[frozenset[str]] = frozenset(JPEGTransferSyntaxes + JPEGLSTransferSyntaxes)
MPEG_FAMILY: Final[frozenset[str]] = frozenset(MPEGTransferSyntaxes)  # video: one stream
JPEG2000_FAMILY: Final[frozenset[str]] = frozenset(
    {JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K}
)

# SOP classes that are not patient/study objects: they belong to the Non-Patient Instance
# service (PS3.18 Chapter 12) or to media (PS3.10), not to the Studies service.
NON_PATIENT_SOP_CLASSES: Final[dict[str, str]] = {
    uid: uid.name
    for uid in (
        MediaStorageDirectoryStorage,
        ColorPaletteStorage,
        HangingProtocolStorage,
        GenericImplantTemplateStorage,
        ImplantAssemblyTemplateStorage,
        ImplantTemplateGroupStorage,
        CTDefinedProcedureProtocolStorage,
        XADefinedProcedureProtocolStorage,
        ProtocolApprovalStorage,
        InventoryStorage,
    )
}


def is_valid_uid(value: str, *, strict: bool = True) -> bool:
    """True if ``value`` follows PS3.5 9.1 (digits and dots, no leading zeros, <= 64 chars).

    With ``strict=False`` components with leading zeros are allowed: legacy modalities wrote
    them and archives must still accept such instances (documented in docs/conformance.md).
    """
    pattern = _UID_RE if strict else _LENIENT_UID_RE
    return 0 < len(value) <= 64 and pattern.match(value) is not None


def require_uid(value: str, what: str) -> str:
    """``value`` when it is a UID (PS3.5 9.1, leading zeros tolerated); ``BadRequest`` if not.

    Called on every UID a request's path names before anything is looked up or any object
    key is built: a UID holds digits and dots only, so no key can leave its site's prefix.
    """
    if not is_valid_uid(value, strict=False):
        shown = value[:64].encode("ascii", "backslashreplace").decode()
        raise BadRequest(f"the path names {shown!r}, which is not a {what} UID")
    return value
