"""Find the stored instances a WADO resource names (PS3.18 10.4.1.1), or 404."""

from __future__ import annotations

from pacsflow.errors import NotFound
from pacsflow.pipeline.keys import instance_keys
from pacsflow.ports import Index, InstanceDocument, InstanceRef
from pacsflow.wado.retrieval import ResourceKey

__all__ = ["find_instance", "find_ref", "keys_of", "locate"]


async def find_instance(index: Index, site: str, key: ResourceKey) -> InstanceDocument:
    """The index entry of the instance ``key`` names, or ``NotFound``."""
    if key.instance is None:
        raise NotFound(f"{key} is not an instance")
    doc = await index.get_instance(site, key.instance)
    if doc is None or doc.study_uid != key.study or doc.series_uid != key.series:
        raise NotFound(f"no {key}")
    return doc


async def find_ref(index: Index, site: str, key: ResourceKey) -> InstanceRef:
    """Where the instance ``key`` names is stored, or ``NotFound``; its attributes (indexed as
    DICOM JSON, megabytes for an RT Structure Set or an enhanced multi-frame) are not read."""
    if key.instance is None:
        raise NotFound(f"{key} is not an instance")
    ref = await index.get_instance_ref(site, key.instance)
    if ref is None or ref.study_uid != key.study or ref.series_uid != key.series:
        raise NotFound(f"no {key}")
    return ref


async def locate(index: Index, site: str, key: ResourceKey) -> list[InstanceRef]:
    """The instances of a study, series or single instance; ``NotFound`` if there are none."""
    if key.instance is not None:
        return [await find_ref(index, site, key)]
    refs = await index.list_instances(site, key.study, key.series)
    if not refs:
        raise NotFound(f"no {key}")
    return refs


def keys_of(site: str, ref: InstanceRef) -> dict[str, str]:
    """The object keys of an instance (``pacsflow.pipeline.keys``)."""
    return instance_keys(site, ref.study_uid, ref.series_uid, ref.sop_uid)
