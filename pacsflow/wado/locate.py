"""Find the stored instances a WADO resource names (PS3.18 10.4.1.1), or 404."""

from __future__ import annotations

from typing import Protocol, TypeVar

from pacsflow.errors import NotFound
from pacsflow.pipeline.keys import instance_keys, instance_path
from pacsflow.ports import Index, InstanceDocument, InstanceRef
from pacsflow.wado.retrieval import ResourceKey

__all__ = ["bulkdata_url", "find_instance", "find_ref", "keys_of", "locate"]


class _Placed(Protocol):
    """An index entry or a reference: what places an instance in its study and series."""

    @property
    def study_uid(self) -> str: ...

    @property
    def series_uid(self) -> str: ...


Placed = TypeVar("Placed", bound=_Placed)


def _instance_uid(key: ResourceKey) -> str:
    """The SOP Instance UID of ``key``; ``NotFound`` for a study or series."""
    if key.instance is None:
        raise NotFound(f"{key} is not an instance")
    return key.instance


def _in_place(found: Placed | None, key: ResourceKey) -> Placed:
    """``found`` if it is in the study and series ``key`` names, else ``NotFound``."""
    if found is None or found.study_uid != key.study or found.series_uid != key.series:
        raise NotFound(f"no {key}")
    return found


async def find_instance(index: Index, site: str, key: ResourceKey) -> InstanceDocument:
    """The index entry of the instance ``key`` names, or ``NotFound``."""
    return _in_place(await index.get_instance(site, _instance_uid(key)), key)


async def find_ref(index: Index, site: str, key: ResourceKey) -> InstanceRef:
    """Where the instance ``key`` names is stored, or ``NotFound``; its attributes (indexed as
    DICOM JSON, megabytes for an RT Structure Set or an enhanced multi-frame) are not read."""
    return _in_place(await index.get_instance_ref(site, _instance_uid(key)), key)


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


def bulkdata_url(root_url: str, study: str, series: str, sop: str, path: str) -> str:
    """The absolute BulkDataURI of a value of an instance (PS3.18 10.4.1.1.5)."""
    return f"{root_url}/{instance_path(study, series, sop)}/bulkdata/{path}"
