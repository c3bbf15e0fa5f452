"""The NPI Service transactions (PS3.18 12.4 Retrieve, 12.5 Store, 12.6 Search) over the
Studies pipeline: STOW's ingest log and processors, the index, the object store.

Store publishes the parts through ``StowService`` with an ``NpiPlacement`` (the partition and
filing of ``pacsflow.nonpatient.resources``); Search is a relational instance-level query of
the partition restricted to the category's SOP Classes; Retrieve reads the instance as WADO-RS
does, once the index says it belongs to the category named in the path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from pacsflow.dicom.dictionary import dictionary_vr
from pacsflow.dicom.header import PartHeader
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import is_valid_uid, require_uid
from pacsflow.errors import BadRequest, NotFound
from pacsflow.nonpatient.resources import NpiResource, file_under_instance, npi_site, resource_of
from pacsflow.ports import Index
from pacsflow.qido.search import SearchResult
from pacsflow.query.model import Condition, Level, Query, Terms
from pacsflow.stow.admission import Failure
from pacsflow.stow.response import StowResult
from pacsflow.stow.service import StowService
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval
from pacsflow.wado.service import WadoService

__all__ = ["NonPatientService", "NpiPlacement"]

JsonDict = dict[str, Any]

_SOP_CLASS: Final = "00080016"
_SOP_INSTANCE: Final = "00080018"
# Derived attributes of the study and series the partition files each instance under.
_DERIVED: Final = frozenset({"00080061", "00080062", "00201206", "00201208", "00201209"})


@dataclass(frozen=True, slots=True)
class NpiPlacement:
    """Parts stored at ``/{npi-name}`` or ``/{npi-name}/{uid}`` (PS3.18 12.5)."""

    npi: NpiResource
    target: str | None = None

    @property
    def resource(self) -> str:
        """The ``npi-name`` of the target resource."""
        return self.npi.name

    def place(self, header: PartHeader) -> PartHeader | Failure:
        """The part filed under its SOP Instance UID, if it is an instance of the category."""
        if resource_of(header.sop_class_uid) is not self.npi:
            other = resource_of(header.sop_class_uid)
            where = f"/{other.name}" if other is not None else "/studies"
            return (
                FailureReason.SOP_CLASS_NOT_SUPPORTED,
                f"SOP Class {header.sop_class_uid[:64]!r} is not a {self.npi}"
                f" (PS3.18 Table 12.1.1-1): store it at {where}",
            )
        if not is_valid_uid(header.sop_uid, strict=False):
            return (
                FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                f"{header.sop_uid[:80]!r} is not a valid SOP Instance UID (PS3.5 9.1)",
            )
        if self.target is not None and header.sop_uid != self.target:
            return (
                FailureReason.STUDY_INSTANCE_UID_MISMATCH,
                f"SOP Instance UID {header.sop_uid} does not match the target {self.target}",
            )
        return file_under_instance(header)


class NonPatientService:
    """Store, Search and Retrieve of Non-Patient Instances, per ``npi-name``."""

    def __init__(self, stow: StowService, index: Index, wado: WadoService) -> None:
        self._stow = stow
        self._index = index
        self._wado = wado

    async def store(
        self,
        npi: NpiResource,
        target: str | None,
        body: AsyncIterator[bytes],
        boundary: str,
        consistency: Literal["durable"] | None,
        *,
        site: str,
    ) -> StowResult:
        """Store Transaction (PS3.18 12.5): the parts go through the ingest log."""
        if target is not None:
            require_uid(target, "SOP Instance UID")
        placement = NpiPlacement(npi, target)
        return await self._stow.store_instances(
            body, boundary, None, consistency, site=npi_site(site), placement=placement
        )

    async def search(
        self, npi: NpiResource, query: Query, site: str, root_url: str, *, asked: int | None
    ) -> SearchResult:
        """Search Transaction (PS3.18 12.6): instances of the category matching ``query``."""
        if query.level is not Level.INSTANCE:
            raise BadRequest("an NPI search is a search for instances")
        classes = tuple(sorted(f"{_SOP_CLASS}={uid}" for uid in npi.sop_classes))
        only = Condition(Level.INSTANCE, "SOPClassUID", Terms(classes))
        query = replace(query, conditions=(*query.conditions, only))
        page = await self._index.search(npi_site(site), query)
        results = [_shape(record, npi, query, root_url) for record in page.records]
        cut = asked is None or asked > query.limit
        truncated = cut and query.offset + len(results) < page.total
        return SearchResult(results, page.total, truncated)

    async def retrieve(self, npi: NpiResource, uid: str, retrieval: Retrieval) -> Payload:
        """Retrieve Transaction (PS3.18 12.4): the instance, if it belongs to the category."""
        require_uid(uid, "SOP Instance UID")
        site = npi_site(retrieval.site)
        doc = await self._index.get_instance(site, uid)
        if doc is None or doc.sop_class_uid not in npi.sop_classes:
            raise NotFound(f"no {npi} {uid}")
        key = ResourceKey(doc.study_uid, doc.series_uid, doc.sop_uid)
        return await self._wado.retrieve_instances(key, replace(retrieval, site=site))


def _shape(record: JsonDict, npi: NpiResource, query: Query, root_url: str) -> JsonDict:
    """One result: the model's return keys, the matching and requested ones (PS3.18 12.6.3)."""
    if query.include_all:
        result = {tag: value for tag, value in record.items() if tag not in _DERIVED}
    else:
        wanted = {_SOP_CLASS, _SOP_INSTANCE, *npi.return_tags, *query.return_tags}
        result = {tag: record[tag] for tag in wanted if tag in record}
    for tag in (_SOP_CLASS, _SOP_INSTANCE):
        result.setdefault(tag, {"vr": dictionary_vr(int(tag, 16)) or "UI"})
    uid = (record.get(_SOP_INSTANCE, {}).get("Value") or [""])[0]
    result["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
    result["00081190"] = {"vr": "UR", "Value": [f"{root_url}/{npi.name}/{uid}"]}
    return dict(sorted(result.items()))
