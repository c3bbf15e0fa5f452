"""QIDO-RS Search Transaction (PS3.18 10.6): the use case between HTTP and the index port.

The route parses the request into a :class:`~pacsflow.query.model.Query`
(``pacsflow.query.parse``); this module asks the index for one page and shapes each result:
the attributes PS3.18 Tables 10.6.3-3 to -5 require at the level (and at the levels above when
the path does not fix them), the matching keys and ``includefield`` attributes, empty
attributes for required or requested ones the entity lacks, RetrieveURL (0008,1190) and
InstanceAvailability (0008,0056). No match is a 200 with no results (CP-2473).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pacsflow.dicom.dictionary import dictionary_vr
from pacsflow.dicom.stored import STORED_TAGS, stored_attributes
from pacsflow.ports import Index
from pacsflow.query.attributes import CONDITIONAL_RETURN_TAGS, REQUIRED_RETURN_TAGS
from pacsflow.query.model import STUDY_ROOT_LEVELS, Level, Query

__all__ = ["SearchResult", "retrieve_url", "search", "shape"]

JsonDict = dict[str, Any]

_UIDS: Final = {Level.STUDY: "0020000D", Level.SERIES: "0020000E", Level.INSTANCE: "00080018"}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of results, the number of all matches, and whether the server cut the page."""

    results: list[JsonDict]
    total: int
    truncated: bool


def retrieve_url(root_url: str, record: JsonDict, level: Level) -> str:
    """The WADO-RS URL of a study, series or instance (PS3.18 10.4.1)."""
    uids = [_uid(record, _UIDS[lv]) for lv in STUDY_ROOT_LEVELS if lv.depth <= level.depth]
    url = f"{root_url}/studies/{uids[0]}"
    if level is not Level.STUDY:
        url += f"/series/{uids[1]}"
    if level is Level.INSTANCE:
        url += f"/instances/{uids[2]}"
    return url


def _uid(record: JsonDict, tag: str) -> str:
    values = record.get(tag, {}).get("Value") or [""]
    return str(values[0])


def _return_tags(query: Query) -> tuple[set[str], set[str]]:
    """(tags returned even if empty, tags returned only if present)."""
    levels = [query.level]
    if query.level is not Level.STUDY and query.study_uid is None:
        levels.append(Level.STUDY)
    if query.level is Level.INSTANCE and query.series_uid is None:
        levels.append(Level.SERIES)
    required = {tag for level in levels for tag in REQUIRED_RETURN_TAGS[level]}
    conditional = required & CONDITIONAL_RETURN_TAGS
    return (required - conditional) | set(query.return_tags), conditional


def shape(record: JsonDict, query: Query, root_url: str) -> JsonDict:
    """The DICOM JSON result of one matching entity (PS3.18 10.6.3)."""
    always, if_present = _return_tags(query)
    if query.include_all:
        result = dict(record)
    else:
        result = {tag: record[tag] for tag in always | if_present if tag in record}
    for tag in always - result.keys():
        result[tag] = {"vr": dictionary_vr(int(tag, 16)) or "UN"}
    result["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
    result["00081190"] = {"vr": "UR", "Value": [retrieve_url(root_url, record, query.level)]}
    return dict(sorted(result.items()))


async def search(
    index: Index, site: str, query: Query, root_url: str, *, asked: int | None
) -> SearchResult:
    """Search the index; ``asked`` is the client's ``limit`` (``None`` if it gave none).

    The archive's private SHA-256 and size of instances come from their index entries when
    asked for (``pacsflow.dicom.stored``).

    The page is *truncated* when the server's maximum (or its default page size, for a client
    that gave no limit) cut it short of the matches the client asked for (PS3.18 8.3.4.4).
    """
    page = await index.search(site, query)
    records = page.records
    if query.return_tags & STORED_TAGS:
        records = await _with_stored(index, site, records)
    results = [shape(record, query, root_url) for record in records]
    cut = asked is None or asked > query.limit
    truncated = cut and query.offset + len(results) < page.total
    return SearchResult(results, page.total, truncated)


async def _with_stored(index: Index, site: str, records: list[JsonDict]) -> list[JsonDict]:
    """The records with the archive's SHA-256 and size of each instance (``dicom.stored``)."""
    refs = {}
    for study in dict.fromkeys(_uid(record, _UIDS[Level.STUDY]) for record in records):
        refs.update({ref.sop_uid: ref for ref in await index.list_instances(site, study)})
    found = []
    for record in records:
        ref = refs.get(_uid(record, _UIDS[Level.INSTANCE]))
        found.append(record if ref is None else record | stored_attributes(ref.sha256, ref.size))
    return found
