"""Reading the change feed: ``GET /changefeed`` and ``GET /changefeed/latest`` (docs/operations.md).

The shape of Azure's DICOM change feed: a JSON array of entries in sequence order, each with
its ``State`` worked out when read, from what the index holds of the instance now: ``current``
(the index holds the bytes this entry stored), ``replaced`` (other bytes, stored later),
``deleted`` (nothing), ``rejected`` (a ``reject`` entry: nothing was stored). ``Metadata`` is
the instance's DICOM JSON (PS3.18 Annex F, bulk data left out) while the entry is current.
An entry without a study is a Non-Patient Instance's, looked up in the site's NPI partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pacsflow.changefeed.entries import FeedEntry, State
from pacsflow.errors import BadRequest
from pacsflow.nonpatient.resources import npi_site
from pacsflow.ports.index import Index, InstanceDocument

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "FeedWindow", "latest_entry", "read_feed"]

JsonDict = dict[str, Any]

DEFAULT_LIMIT: Final = 10  # as Azure's
MAX_LIMIT: Final = 1000  # Azure's is 100; a follower catching up reads more at once
_BOOLEANS: Final = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class FeedWindow:
    """Which entries a request asks for: those above ``after``, at most ``limit``."""

    after: int = 0
    limit: int = DEFAULT_LIMIT
    include_metadata: bool = True

    @classmethod
    def parse(cls, parameters: Sequence[tuple[str, str]]) -> FeedWindow:
        """``startSequence`` (first sequence, from 1) or ``offset`` (Azure's: the sequence to
        read after), ``limit`` (1 to ``MAX_LIMIT``) and ``includemetadata``; else BadRequest."""
        given = {name.lower(): value for name, value in parameters}
        if "startsequence" in given and "offset" in given:
            raise BadRequest("startSequence and offset: give one of them")
        after = 0
        if "startsequence" in given:
            after = _integer("startSequence", given["startsequence"], 1) - 1
        elif "offset" in given:
            after = _integer("offset", given["offset"], 0)
        limit = _integer("limit", given.get("limit", str(DEFAULT_LIMIT)), 1)
        if limit > MAX_LIMIT:
            raise BadRequest(f"limit: at most {MAX_LIMIT}")
        flag = given.get("includemetadata", "true").lower()
        if flag not in _BOOLEANS:
            raise BadRequest("includemetadata: true or false")
        return cls(after, limit, _BOOLEANS[flag])


def _integer(name: str, text: str, least: int) -> int:
    if not text.isdigit() or int(text) < least:
        raise BadRequest(f"{name}: an integer of at least {least}, not {text[:32]!r}")
    return int(text)


def state_of(entry: FeedEntry, stored: InstanceDocument | None) -> State:
    """What became of the instance of ``entry``, from what the index holds now."""
    if entry.change.action == "reject":
        return "rejected"
    if stored is None:
        return "deleted"
    if entry.change.action == "create" and stored.sha256 == entry.change.sha256:
        return "current"
    return "replaced"


async def _render(
    index: Index, site: str, entries: list[FeedEntry], include_metadata: bool
) -> list[JsonDict]:
    stored = await index.get_instances(site, [e.change.sop_uid for e in entries])
    # Non-Patient Instances (no study) are held in the site's NPI partition (PS3.18 12.1)
    npi = [e.change.sop_uid for e in entries if not e.change.study_uid]
    if npi:
        stored.update(await index.get_instances(npi_site(site), npi))
    rendered = []
    for entry in entries:
        held = stored.get(entry.change.sop_uid)
        state = state_of(entry, held)
        metadata = held.attributes if include_metadata and held and state == "current" else None
        rendered.append(entry.to_json(state, metadata))
    return rendered


async def read_feed(index: Index, site: str, window: FeedWindow) -> list[JsonDict]:
    """The entries of ``window``, in sequence order (Azure's ``GET /changefeed``)."""
    entries = await index.read_changes(site, window.after, window.limit)
    return await _render(index, site, entries, window.include_metadata)


async def latest_entry(index: Index, site: str, include_metadata: bool) -> JsonDict | None:
    """The entry with the highest sequence, or ``None`` while the feed is empty."""
    latest = await index.latest_change(site)
    if latest is None:
        return None
    [rendered] = await _render(index, site, [latest], include_metadata)
    return rendered
