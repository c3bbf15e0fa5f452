"""Search Workitems (PS3.18 11.9): the workitem query and the attributes of each result.

The query is ``pacsflow.query.parse`` at ``Level.WORKITEM``: the matching rules, ``includefield``,
``fuzzymatching``, ``limit`` and ``offset`` of QIDO-RS (PS3.18 8.3.4) on the attributes of Table
CC.2.5-3 in PS3.4, answered by the workitem store with the index translators of
``pacsflow.query``. A result holds the attributes below (empty when the workitem lacks them),
those matched on or named by ``includefield``, or all of them for ``includefield=all``; never
the Transaction UID (PS3.4 CC.2.8.3, as N-GET: CC.2.7.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pacsflow.dicom.dictionary import dictionary_vr
from pacsflow.ports.workitems import WorkitemStore
from pacsflow.query.model import Level, Query
from pacsflow.query.parse import parse_query
from pacsflow.ups.model import Tag

__all__ = ["RETURN_TAGS", "WorkitemPage", "search_workitems", "shape", "workitem_query"]

JsonDict = dict[str, Any]

# Returned for every match: the identity, state and scheduling of a workitem and its patient.
RETURN_TAGS: Final = (
    Tag.SOP_CLASS_UID,
    Tag.SOP_INSTANCE_UID,
    Tag.PATIENT_NAME,
    Tag.PATIENT_ID,
    Tag.SCHEDULED_PROCEDURE_STEP_START,
    Tag.INPUT_READINESS_STATE,
    Tag.PROCEDURE_STEP_STATE,
    Tag.PRIORITY,
    Tag.WORKLIST_LABEL,
    Tag.PROCEDURE_STEP_LABEL,
)
_IF_PRESENT: Final = (Tag.SPECIFIC_CHARACTER_SET,)


@dataclass(frozen=True, slots=True)
class WorkitemPage:
    """One page of results, the number of all matches, and whether the server cut the page."""

    results: list[JsonDict]
    total: int
    truncated: bool


def workitem_query(parameters: Sequence[tuple[str, str]], max_results: int) -> Query:
    """The query of a Search request's parameters (``BadRequest`` naming a bad one)."""
    return parse_query(Level.WORKITEM, parameters, default_limit=max_results, max_limit=max_results)


def shape(record: JsonDict, query: Query) -> JsonDict:
    """The DICOM JSON result of one matching workitem."""
    record = {tag: element for tag, element in record.items() if tag != Tag.TRANSACTION_UID}
    if query.include_all:
        return dict(sorted(record.items()))
    wanted = (set(RETURN_TAGS) | set(query.return_tags)) - {Tag.TRANSACTION_UID}
    result = {tag: record[tag] for tag in (*wanted, *_IF_PRESENT) if tag in record}
    for tag in wanted - result.keys():
        result[tag] = {"vr": dictionary_vr(int(tag, 16)) or "UN"}
    return dict(sorted(result.items()))


async def search_workitems(
    store: WorkitemStore, site: str, query: Query, *, asked: int | None
) -> WorkitemPage:
    """One page of matching workitems; truncated as QIDO-RS pages are (PS3.18 8.3.4.4)."""
    page = await store.search(site, query)
    results = [shape(record, query) for record in page.records]
    cut = asked is None or asked > query.limit
    truncated = cut and query.offset + len(results) < page.total
    return WorkitemPage(results, page.total, truncated)
