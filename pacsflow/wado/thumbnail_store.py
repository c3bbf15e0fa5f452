"""Where a series' thumbnail made ahead is kept, and whether it is current (PS3.18 8.3.6).

One object per series, ``{site}/studies/{study}/series/{series}/thumbnail``: a first line
naming the representative instance it shows (the series' middle instance, as a thumbnail of
the series or of its study shows) and that instance's SHA-256, then the JPEG. It answers a
request only while it belongs to the representative as stored now (same instance, same
digest), so a thumbnail made late, never, or for an instance since replaced changes nothing
but the time an answer takes. ``pacsflow.wado.thumbnails`` makes them.
"""

from __future__ import annotations

from pacsflow.ports import InstanceRef, ObjectStore

__all__ = ["series_thumbnail_key", "store_thumbnail", "stored_thumbnail"]


def series_thumbnail_key(site: str, study_uid: str, series_uid: str) -> str:
    """Where a series' thumbnail made ahead is stored."""
    return f"{site}/studies/{study_uid}/series/{series_uid}/thumbnail"


def _label(ref: InstanceRef) -> bytes:
    return f"{ref.sop_uid} {ref.sha256}\n".encode()


def _key(site: str, ref: InstanceRef) -> str:
    return series_thumbnail_key(site, ref.study_uid, ref.series_uid)


async def stored_thumbnail(objects: ObjectStore, site: str, ref: InstanceRef) -> bytes | None:
    """The JPEG made ahead for the series whose representative is ``ref``, if it shows
    ``ref`` as stored now; else ``None``."""
    (held,) = await objects.get_many([_key(site, ref)])
    label = _label(ref)
    return held[len(label) :] if held is not None and held.startswith(label) else None


async def store_thumbnail(objects: ObjectStore, site: str, ref: InstanceRef, jpeg: bytes) -> None:
    """Keep ``jpeg`` as the thumbnail of the series whose representative is ``ref``."""
    await objects.put(_key(site, ref), _label(ref) + jpeg)
