"""Object key layout: every key derives from the site and the UIDs (idempotent writes).

{site}/studies/{study}/series/{series}/instances/{sop}.dcm       the instance, as received
{site}/studies/{study}/series/{series}/instances/{sop}.sidecar   its DICOM JSON metadata, frame
                                                                 offset table and byte ranges of
                                                                 other bulk values, in one object
                                                                 (``pacsflow.pipeline.sidecar``)
{site}/staging/{request}.{part}.dcm                              claim-checked STOW parts

Instances stored before the sidecar have the three parts in their own objects, ``{sop}.json``,
``{sop}.frames`` and ``{sop}.bulk`` (``LEGACY_SUFFIXES``): they are read while the instance has no
sidecar, and removed with the instance.
"""

from __future__ import annotations

from typing import Final

from pacsflow.dicom.uids import is_valid_uid

__all__ = [
    "LEGACY_SUFFIXES",
    "instance_keys",
    "instance_path",
    "keys_beside",
    "staging_key",
    "staging_prefix",
]

_SUFFIXES: Final = {"dicom": ".dcm", "sidecar": ".sidecar"}
LEGACY_SUFFIXES: Final = {"metadata": ".json", "frames": ".frames", "bulk": ".bulk"}
_ALL_SUFFIXES: Final = {**_SUFFIXES, **LEGACY_SUFFIXES}


def instance_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """The instance's path below the DICOMweb root (PS3.18 10.4.1.1.1)."""
    return f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def instance_keys(site: str, study_uid: str, series_uid: str, sop_uid: str) -> dict[str, str]:
    """The object keys of an instance: ``dicom``, ``sidecar``, and the keys of the layout before
    the sidecar, ``metadata``, ``frames`` and ``bulk`` (read only where there is no sidecar).

    Only UIDs make keys: anything else is a ``ValueError`` (a bug; requests are checked first).
    """
    for uid in (study_uid, series_uid, sop_uid):
        if not is_valid_uid(uid, strict=False):
            raise ValueError(f"not a UID: {uid[:64]!r}")
    base = f"{site}/{instance_path(study_uid, series_uid, sop_uid)}"
    return {name: base + suffix for name, suffix in _ALL_SUFFIXES.items()}


def keys_beside(dicom_key: str) -> list[str]:
    """Every object key the instance stored under ``dicom_key`` (its ``.dcm``) may have, in
    either layout."""
    base = dicom_key.removesuffix(".dcm")
    return [base + suffix for suffix in _ALL_SUFFIXES.values()]


def staging_prefix(site: str, request_id: str) -> str:
    """The prefix of every object a STOW request stages."""
    return f"{site}/staging/{request_id}."


def staging_key(site: str, request_id: str, part: int) -> str:
    """Where the STOW front end stages a part too large to travel inline on the bus."""
    return f"{staging_prefix(site, request_id)}{part:06d}.dcm"
