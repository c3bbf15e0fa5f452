"""Find the stored instances a WADO resource names (PS3.18 10.4.1.1), or 404."""

from __future__ import annotations

from pacsflow.errors import NotFound
from pacsflow.pipeline.keys import instance_keys, instance_path
from pacsflow.ports import Index, InstanceDocument, InstanceRef
from pacsflow.wado.retrieval import ResourceKey

__all__ = ["bulkdata_url", "find_instance", "keys_of", "locate"]


async def find_instance(index: Index, site: str, key: ResourceKey) -> InstanceDocument:
    """The index entry of the instance ``key`` names, or ``NotFound``."""
    if key.instance is None:
        raise NotFound(f"{key} is not an instance")
    doc = await index.get_instance(site, key.instance)
    if doc is None or doc.study_uid != key.study or doc.series_uid != key.series:
        raise NotFound(f"no {key}")
    return doc


async def locate(index: Index, site: str, key: ResourceKey) -> list[InstanceRef]:
    """The instances of a study, series or single instance; ``NotFound`` if there are none."""
    if key.instance is not None:
        doc = await find_instance(index, site, key)
        where = (doc.study_uid, doc.series_uid, doc.sop_uid)
        return [InstanceRef(*where, doc.transfer_syntax, doc.size, doc.sha256)]
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
