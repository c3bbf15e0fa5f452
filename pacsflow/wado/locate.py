"""Find the stored instances a WADO-RS resource names (PS3.18 10.4.1.1), or 404."""

from __future__ import annotations

from pacsflow.errors import NotFound
from pacsflow.pipeline.keys import instance_keys
from pacsflow.ports import Index, InstanceDocument, InstanceRef

__all__ = ["find_instance", "keys_of", "locate"]


async def find_instance(
    index: Index, site: str, study: str, series: str, sop: str
) -> InstanceDocument:
    """The index entry of one instance of the series and study named, or ``NotFound``."""
    doc = await index.get_instance(site, sop)
    if doc is None or doc.study_uid != study or doc.series_uid != series:
        raise NotFound(f"no instance {sop} in series {series} of study {study}")
    return doc


async def locate(
    index: Index, site: str, study: str, series: str | None = None, sop: str | None = None
) -> list[InstanceRef]:
    """The instances of a study, series or single instance; ``NotFound`` if there are none."""
    if sop is not None:
        doc = await find_instance(index, site, study, series or "", sop)
        return [
            InstanceRef(
                doc.study_uid, doc.series_uid, sop, doc.transfer_syntax, doc.size, doc.sha256
            )
        ]
    refs = await index.list_instances(site, study, series)
    if not refs:
        raise NotFound(f"no series {series} in study {study}" if series else f"no study {study}")
    return refs


def keys_of(site: str, ref: InstanceRef) -> dict[str, str]:
    """The object keys of an instance (``pacsflow.pipeline.keys``)."""
    return instance_keys(site, ref.study_uid, ref.series_uid, ref.sop_uid)
