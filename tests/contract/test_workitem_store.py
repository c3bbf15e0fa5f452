"""Contract of the workitem store port (``pacsflow.ports.workitems``), run against every adapter.

SQLite (a temp file) and Elasticsearch (osmem on loopback, indices unique to the test). Each
matching case names the workitems that must match, worked out by hand from the corpus; the
same case also runs through ``pacsflow.query.match`` (how a Filtered Worklist Subscription
decides about a new workitem), which must agree with both stores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pacsflow.adapters.sqlite_workitems import SqliteWorkitemStore
from pacsflow.errors import BadRequest
from pacsflow.ports.workitems import (
    Globals,
    GlobalSubscription,
    StoredWorkitem,
    VersionConflict,
    WorkitemExists,
    WorkitemStore,
)
from pacsflow.query.match import matches
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from pacsflow.query.terms import entity_terms
from tests.support.workitems import code, element

JsonDict = dict[str, Any]


def _elasticsearch(request: pytest.FixtureRequest, tmp_path: Path) -> WorkitemStore:
    from pacsflow.adapters.es_workitems import ElasticsearchWorkitemStore

    return ElasticsearchWorkitemStore(
        request.getfixturevalue("es_url"), prefix=f"pacsflow-ups-{uuid.uuid4().hex}"
    )


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], WorkitemStore]] = {
    "sqlite": lambda request, tmp_path: SqliteWorkitemStore(tmp_path / "workitems.sqlite"),
    "elasticsearch": _elasticsearch,
}


@pytest.fixture(params=list(FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WorkitemStore]:
    """A started store; closed after the test."""
    created = FACTORIES[request.param](request, tmp_path)
    await created.start()
    try:
        yield created
    finally:
        await created.close()


def site() -> str:
    return f"site-{uuid.uuid4().hex}"


def attributes(uid: str, **extra: JsonDict) -> JsonDict:
    return {
        "00080018": element("UI", uid),
        "00741000": element("CS", "SCHEDULED"),
        "00741200": element("CS", "MEDIUM"),
        "00741204": element("LO", "label"),
        **extra,
    }


def item(site_: str, uid: str, **changes: Any) -> StoredWorkitem:
    return dataclasses.replace(
        StoredWorkitem(site=site_, uid=uid, attributes=attributes(uid), state="SCHEDULED"),
        **changes,
    )


async def test_a_created_workitem_reads_back_whole(store: WorkitemStore) -> None:
    s = site()
    written = item(
        s,
        "1.2.3.1",
        transaction_uid=None,
        subscribers={"WATCHER": True, "OTHER": False},
        event_seq=2,
        outbox=('{"a": 1}', '{"b": 2}'),
        created=1000.5,
        outbox_since=1001.0,
    )
    version = await store.create(written)
    found = await store.get(s, "1.2.3.1")
    assert found == dataclasses.replace(written, version=version)
    assert found.locked and await store.get(s, "1.2.3.2") is None
    assert not await store.deleted(s, "1.2.3.1")


async def test_a_uid_is_created_once(store: WorkitemStore) -> None:
    s = site()
    await store.create(item(s, "1.2.3.1"))
    with pytest.raises(WorkitemExists):
        await store.create(item(s, "1.2.3.1", state="IN PROGRESS"))
    assert (await store.get(s, "1.2.3.1")).state == "SCHEDULED"  # type: ignore[union-attr]


async def test_replace_needs_the_version_it_read(store: WorkitemStore) -> None:
    s = site()
    first = await store.create(item(s, "1.2.3.1"))
    second = await store.replace(item(s, "1.2.3.1", state="IN PROGRESS"), first)
    assert second != first
    with pytest.raises(VersionConflict):
        await store.replace(item(s, "1.2.3.1", state="CANCELED"), first)
    current = await store.get(s, "1.2.3.1")
    assert current is not None and current.state == "IN PROGRESS" and current.version == second


async def test_of_concurrent_writers_at_one_version_exactly_one_wins(
    store: WorkitemStore,
) -> None:
    s = site()
    for round_ in range(10):
        uid = f"1.2.3.{round_}"
        version = await store.create(item(s, uid))
        writes = [
            store.replace(item(s, uid, transaction_uid=f"1.9.{n}", state="IN PROGRESS"), version)
            for n in range(6)
        ]
        results = await asyncio.gather(*writes, return_exceptions=True)
        winners = [n for n, r in enumerate(results) if isinstance(r, str)]
        assert len(winners) == 1, results
        assert all(isinstance(r, VersionConflict) for r in results if not isinstance(r, str))
        stored = await store.get(s, uid)
        assert stored is not None and stored.transaction_uid == f"1.9.{winners[0]}"


async def test_a_deleted_workitem_leaves_its_uid_behind(store: WorkitemStore) -> None:
    s = site()
    version = await store.create(item(s, "1.2.3.1", subscribers={"A": False}))
    with pytest.raises(VersionConflict):
        await store.delete(item(s, "1.2.3.1"), "999:999" if ":" in version else "999")
    await store.delete(item(s, "1.2.3.1"), version)
    with pytest.raises(VersionConflict):  # a second deleter (another replica) comes too late
        await store.delete(item(s, "1.2.3.1"), version)
    assert await store.get(s, "1.2.3.1") is None
    assert await store.deleted(s, "1.2.3.1")
    with pytest.raises(WorkitemExists):
        await store.create(item(s, "1.2.3.1"))
    assert await store.subscriber_aes(s) == set()


async def test_scan_selects_by_subscriber_outbox_and_retention(store: WorkitemStore) -> None:
    s = site()
    await store.create(item(s, "1.1", subscribers={"A": False}))
    await store.create(item(s, "1.2", subscribers={"A": True, "B": False}))
    await store.create(item(s, "1.3", outbox=("{}",), outbox_since=50.0))
    await store.create(item(s, "1.4", state="COMPLETED", finished=10.0))
    await store.create(item(s, "1.5", state="CANCELED", finished=10.0, subscribers={"C": True}))
    await store.create(item(s, "1.6", state="COMPLETED", finished=500.0))

    async def uids(**criteria: Any) -> list[str]:
        return [found.uid for found in await store.scan(s, **criteria)]

    assert await uids() == ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"]
    assert await uids(subscriber="A") == ["1.1", "1.2"]
    assert await uids(subscriber="B") == ["1.2"]
    assert await uids(outbox_before=100.0) == ["1.3"]
    assert await uids(outbox_before=40.0) == []
    assert await uids(finished_before=100.0) == ["1.4"]  # 1.5 is locked, 1.6 too recent
    assert await uids(after="1.2", limit=2) == ["1.3", "1.4"]
    assert await store.subscriber_aes(s) == {"A", "B", "C"}


async def test_global_subscriptions_are_one_versioned_record(store: WorkitemStore) -> None:
    s = site()
    empty = await store.get_globals(s)
    assert empty == Globals(s) and empty.version == ""
    subscriptions = {
        "ALL": GlobalSubscription("ALL", "global", True),
        "CT": GlobalSubscription("CT", "filtered", False, (("Modality", "CT"),), suspended=True),
    }
    first = await store.put_globals(Globals(s, subscriptions), "")
    with pytest.raises(VersionConflict):
        await store.put_globals(Globals(s, {}), "")  # someone created it first
    assert await store.get_globals(s) == Globals(s, subscriptions, first)
    second = await store.put_globals(Globals(s, {"ALL": subscriptions["ALL"]}), first)
    with pytest.raises(VersionConflict):
        await store.put_globals(Globals(s, {}), first)
    assert (await store.get_globals(s)).subscriptions == {"ALL": subscriptions["ALL"]}
    assert (await store.get_globals(s)).version == second


async def test_sites_never_see_each_other(store: WorkitemStore) -> None:
    one, other = site(), site()
    await store.create(item(one, "1.1", subscribers={"A": False}))
    await store.put_globals(Globals(one, {"A": GlobalSubscription("A")}), "")
    assert await store.get(other, "1.1") is None
    assert await store.scan(other) == []
    assert await store.subscriber_aes(other) == set()
    assert (await store.get_globals(other)).subscriptions == {}
    query = parse_query(Level.WORKITEM, [])
    assert (await store.search(other, query)).total == 0
    assert (await store.search(one, query)).total == 1


# ---- matching: the corpus of one site, and what each query must find ------------------------

ST_CT = code("CT-1", "99X", "CT scanner")
ST_AI = code("AI-1", "99X", "AI node")
CORPUS: dict[str, JsonDict] = {
    "1.5.1": attributes(
        "1.5.1",
        **{
            "00741204": element("LO", "Lung nodule detection"),
            "00404005": element("DT", "20260105120000"),
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]},
            "00404025": element("SQ", ST_AI),
            "00404041": element("CS", "READY"),
        },
    ),
    "1.5.2": attributes(
        "1.5.2",
        **{
            "00741000": element("CS", "IN PROGRESS"),
            "00741200": element("CS", "HIGH"),
            "00741204": element("LO", "Liver segmentation"),
            "00404005": element("DT", "20260106083000"),
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
            "00404025": element("SQ", ST_CT),
            "00404041": element("CS", "INCOMPLETE"),
        },
    ),
    "1.5.3": attributes(
        "1.5.3",
        **{
            "00741000": element("CS", "COMPLETED"),
            "00741204": element("LO", "lung report"),
            "00404005": element("DT", "20260107"),
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "00404025": element("SQ"),  # empty
        },
    ),
    "1.5.4": attributes(
        "1.5.4",
        **{"00741200": element("CS", "LOW"), "00100010": element("PN")},
    ),
}
CASES: list[tuple[str, set[str]]] = [
    ("ProcedureStepState=SCHEDULED", {"1.5.1", "1.5.4"}),
    ("ProcedureStepState=SCHEDULED\\IN PROGRESS", {"1.5.1", "1.5.2", "1.5.4"}),
    ("ScheduledProcedureStepPriority=HIGH", {"1.5.2"}),
    ("ProcedureStepLabel=L*", {"1.5.1", "1.5.2"}),
    ("ProcedureStepLabel=*nodule*", {"1.5.1"}),
    ("ProcedureStepLabel=lung report", {"1.5.3"}),
    ("ScheduledProcedureStepStartDateTime=20260106-", {"1.5.2", "1.5.3"}),
    ("ScheduledProcedureStepStartDateTime=20260105-20260106", {"1.5.1", "1.5.2"}),
    ("PatientName=doe*", {"1.5.2", "1.5.3"}),
    ("PatientName=mueller&fuzzymatching=true", set()),
    ("PatientName=muller&fuzzymatching=true", {"1.5.1"}),
    ('PatientName=""', {"1.5.4"}),
    ("ScheduledStationNameCodeSequence.CodeValue=AI-1", {"1.5.1"}),
    ('ScheduledStationNameCodeSequence=""', {"1.5.3", "1.5.4"}),
    ("InputReadinessState=READY", {"1.5.1"}),
    ("SOPInstanceUID=1.5.1,1.5.4", {"1.5.1", "1.5.4"}),
    ("ProcedureStepState=COMPLETED&PatientName=Doe^Jane", {"1.5.3"}),
]


def _parameters(text: str) -> list[tuple[str, str]]:
    return [tuple(p.split("=", 1)) for p in text.split("&")]  # type: ignore[misc]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_workitem_matching(store: WorkitemStore, query: str, expected: set[str]) -> None:
    s = site()
    for uid, attrs in CORPUS.items():
        await store.create(item(s, uid, attributes=attrs, state="SCHEDULED"))
    parsed = parse_query(Level.WORKITEM, _parameters(query))
    page = await store.search(s, parsed)
    found = {r["00080018"]["Value"][0] for r in page.records}
    assert found == expected and page.total == len(expected)
    for uid, attrs in CORPUS.items():  # the in-memory evaluation agrees
        terms = set(entity_terms(attrs, Level.WORKITEM))
        assert all(matches(c.predicate, terms) for c in parsed.conditions) == (uid in expected)


async def test_pages_follow_the_uid_order(store: WorkitemStore) -> None:
    s = site()
    for n in range(7):
        await store.create(item(s, f"1.6.{n}"))
    seen = []
    for offset in range(0, 7, 3):
        query = parse_query(Level.WORKITEM, [("limit", "3"), ("offset", str(offset))])
        page = await store.search(s, query)
        assert page.total == 7
        seen += [r["00080018"]["Value"][0] for r in page.records]
    assert seen == sorted(f"1.6.{n}" for n in range(7))


def test_the_transaction_uid_is_no_matching_key() -> None:
    with pytest.raises(BadRequest, match="not a matching key"):
        parse_query(Level.WORKITEM, [("TransactionUID", "1.2.3")])
    assert not any(
        t.startswith("00081195")
        for t in entity_terms({"00081195": element("UI", "1.2.3")}, Level.WORKITEM)
    )
