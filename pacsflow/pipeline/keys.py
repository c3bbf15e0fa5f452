"""Object key layout: every key derives from the site and the UIDs (idempotent writes).

{site}/studies/{study}/series/{series}/instances/{sop}.dcm       the instance, as received
{site}/studies/{study}/series/{series}/instances/{sop}.json      DICOM JSON metadata
{site}/studies/{study}/series/{series}/instances/{sop}.frames    frame offset table
{site}/studies/{study}/series/{series}/instances/{sop}.bulk      byte ranges of other bulk values
{site}/staging/{request}.{part}.dcm                              claim-checked STOW parts
"""

from __future__ import annotations

from pacsflow.dicom.uids import is_valid_uid

__all__ = ["instance_keys", "instance_path", "keys_beside", "staging_key", "staging_prefix"]


def instance_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """The instance's path below the DICOMweb root (PS3.18 10.4.1.1.1)."""
    return f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def instance_keys(site: str, study_uid: str, series_uid: str, sop_uid: str) -> dict[str, str]:
    """The object keys of an instance: ``dicom``, ``metadata``, ``frames`` and ``bulk``.

    Only UIDs make keys: anything else is a ``ValueError`` (a bug; requests are checked first).
    """
    for uid in (study_uid, series_uid, sop_uid):
        if not is_valid_uid(uid, strict=False):
            raise ValueError(f"not a UID: {uid[:64]!r}")
    base = f"{site}/{instance_path(study_uid, series_uid, sop_uid)}"
    return {
        "dicom": f"{base}.dcm",
        "metadata": f"{base}.json",
        "frames": f"{base}.frames",
        "bulk": f"{base}.bulk",
    }


def keys_beside(dicom_key: str) -> list[str]:
    """The four object keys of the instance stored under ``dicom_key`` (its ``.dcm``)."""
    base = dicom_key.removesuffix(".dcm")
    return [base + suffix for suffix in (".dcm", ".json", ".frames", ".bulk")]


def staging_prefix(site: str, request_id: str) -> str:
    """The prefix of every object a STOW request stages."""
    return f"{site}/staging/{request_id}."


def staging_key(site: str, request_id: str, part: int) -> str:
    """Where the STOW front end stages a part too large to travel inline on the bus."""
    return f"{staging_prefix(site, request_id)}{part:06d}.dcm"
