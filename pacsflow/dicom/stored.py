"""The archive's private attributes of a stored instance: SHA-256 and size of the object.

The index keeps the SHA-256 and the size of each instance's bytes as received. QIDO-RS returns
them at instance level when a request names them with ``includefield`` (never otherwise, and
not with ``includefield=all``), in a private block (PS3.5 7.8.1) of group 00A1 reserved by
the Private Creator ``PACSFLOW 1``:

* (00A1,0010) LO ``PACSFLOW 1``, the Private Creator;
* (00A1,1001) LO, the SHA-256 of the stored object as 64 lower-case hex digits;
* (00A1,1002) UV, its size in bytes.

A client that uploads files can then tell whether the archive holds the same bytes without
downloading them (``pacsflow import`` resumes this way). The values replace any (00A1,10xx)
elements of the instance itself in that result.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CREATOR_TAG",
    "PRIVATE_CREATOR",
    "SHA256_TAG",
    "SIZE_TAG",
    "STORED_TAGS",
    "stored_attributes",
]

PRIVATE_CREATOR: Final = "PACSFLOW 1"
CREATOR_TAG: Final = "00A10010"
SHA256_TAG: Final = "00A11001"
SIZE_TAG: Final = "00A11002"
STORED_TAGS: Final = frozenset({CREATOR_TAG, SHA256_TAG, SIZE_TAG})


def stored_attributes(sha256: str, size: int) -> dict[str, Any]:
    """The private block of one stored instance, as DICOM JSON (PS3.18 F.2)."""
    return {
        CREATOR_TAG: {"vr": "LO", "Value": [PRIVATE_CREATOR]},
        SHA256_TAG: {"vr": "LO", "Value": [sha256]},
        SIZE_TAG: {"vr": "UV", "Value": [size]},
    }
