"""Contract of the index port's change feed (``pacsflow.ports.index``), run against every adapter.

Every test uses site names no other test uses, so an adapter backed by a shared cluster can run
the suite without cleaning up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pacsflow.changefeed.entries import Change, DeletionCause, FeedEntry, now
from pacsflow.ports.index import Index, InstanceDocument
from tests.support.indexes import INDEX_TWINS, instance_document


@pytest.fixture(params=list(INDEX_TWINS))
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Index, Index]:
    """Two adapters, not started, over the same storage."""
    return INDEX_TWINS[request.param](request, tmp_path)


def stored(doc: InstanceDocument, origin: str) -> Change:
    """The ``create`` change of indexing ``doc``."""
    return Change(
        origin, doc.site, "create", doc.study_uid, doc.series_uid, doc.sop_uid,
        doc.sop_class_uid, doc.sha256, now(),
    )  # fmt: skip


def rejected(site: str, sop: str, origin: str) -> Change:
    """A ``reject`` change (Failure Reason C000)."""
    return Change(origin, site, "reject", "1.9", "1.9.1", sop, "", "", now(), 0xC000)


async def test_changes_are_numbered_from_one_in_the_order_appended(index: Index, site: str) -> None:
    docs = [instance_document(site, "1.1", "1.1.1", f"1.1.1.{n}") for n in range(1, 4)]
    changes = [stored(doc, f"r1/{n}") for n, doc in enumerate(docs, start=1)]
    assert await index.latest_change(site) is None
    refused = rejected(site, "1.9.1.1", "r2/1")
    await index.upsert_instances(docs, changes)
    await index.upsert_instances([], [refused])
    entries = await index.read_changes(site)
    assert [e.sequence for e in entries] == [1, 2, 3, 4]
    assert [e.change for e in entries] == [*changes, refused]
    assert await index.latest_change(site) == entries[3]
    found = await index.get_instances(site, [d.sop_uid for d in docs])
    assert set(found) == {d.sop_uid for d in docs}  # written together


async def test_reading_resumes_after_a_sequence_and_pages(index: Index, site: str) -> None:
    docs = [instance_document(site, "2.1", "2.1.1", f"2.1.1.{n}") for n in range(1, 8)]
    await index.upsert_instances(docs, [stored(d, f"r/{d.sop_uid}") for d in docs])
    first = await index.read_changes(site, after=0, limit=3)
    rest = await index.read_changes(site, after=first[-1].sequence, limit=100)
    assert [e.sequence for e in first] == [1, 2, 3]
    assert [e.sequence for e in rest] == [4, 5, 6, 7]
    assert [e.change.sop_uid for e in first + rest] == [d.sop_uid for d in docs]
    assert await index.read_changes(site, after=7) == []


async def test_an_origin_appended_again_is_not_fed_twice(index: Index, site: str) -> None:
    doc = instance_document(site, "3.1", "3.1.1", "3.1.1.1")
    await index.upsert_instances([doc], [stored(doc, "req/1")])
    await index.upsert_instances([doc], [stored(doc, "req/1")])  # the record redelivered
    await index.upsert_instances([doc], [stored(doc, "req/1"), stored(doc, "req/1")])
    await index.upsert_instances([doc], [stored(doc, "other/1")])  # stored again by a new request
    entries = await index.read_changes(site)
    assert [(e.sequence, e.change.origin) for e in entries] == [(1, "req/1"), (2, "other/1")]


async def test_a_deletion_is_fed_once(index: Index, site: str) -> None:
    doc = instance_document(site, "4.1", "4.1.1", "4.1.1.1")
    await index.upsert_instances([doc], [stored(doc, "r/1")])
    cause = DeletionCause("del-1/delete", "DELETE request")
    await index.delete_instances(site, [doc.sop_uid], cause)
    await index.delete_instances(site, [doc.sop_uid], cause)  # nothing left: nothing fed
    await index.delete_instances(site, [doc.sop_uid])  # nor by a deletion of its own
    entries = await index.read_changes(site)
    assert [e.change.action for e in entries] == ["create", "delete"]
    gone = entries[1].change
    assert (gone.study_uid, gone.series_uid, gone.sop_uid) == ("4.1", "4.1.1", "4.1.1.1")
    assert gone.sop_class_uid == doc.sop_class_uid
    assert (gone.origin, gone.reason) == ("del-1/delete/4.1.1.1", "DELETE request")
    assert gone.timestamp >= entries[0].change.timestamp
    assert entries[1].to_json("deleted")["Reason"] == "DELETE request"


async def test_a_deletion_feeds_each_instance_it_removes(index: Index, site: str) -> None:
    docs = [instance_document(site, "4.2", f"4.2.{n}", f"4.2.{n}.1") for n in (1, 2)]
    await index.upsert_instances(docs, [stored(d, f"r/{n}") for n, d in enumerate(docs)])
    cause = DeletionCause("del-2/delete", "DELETE request")
    await index.delete_instances(site, [d.sop_uid for d in docs] + ["never.indexed"], cause)
    entries = await index.read_changes(site)
    assert [(e.sequence, e.change.action, e.change.sop_uid) for e in entries[2:]] == [
        (3, "delete", "4.2.1.1"),
        (4, "delete", "4.2.2.1"),
    ]
    # stored again, then a deletion redelivered (same origins): already fed, not fed twice;
    # a new deletion (another origin) is fed
    await index.upsert_instances(docs[:1], [stored(docs[0], "r/again")])
    await index.delete_instances(site, [docs[0].sop_uid], cause)
    await index.delete_instances(site, [docs[0].sop_uid], DeletionCause("del-3/delete"))
    await index.upsert_instances(docs[:1], [stored(docs[0], "r/third")])
    await index.delete_instances(site, [docs[0].sop_uid], DeletionCause("del-4/delete"))
    actions = [(e.change.action, e.change.origin) for e in await index.read_changes(site)]
    assert actions[4:] == [
        ("create", "r/again"),
        ("create", "r/third"),
        ("delete", "del-4/delete/4.2.1.1"),
    ]
    assert await index.get_instances(site, [docs[0].sop_uid]) == {}


async def test_sites_have_feeds_of_their_own(index: Index, site: str) -> None:
    other = f"{site}-other"
    mine = instance_document(site, "5.1", "5.1.1", "5.1.1.1")
    theirs = instance_document(other, "5.2", "5.2.1", "5.2.1.1")
    await index.upsert_instances([mine, theirs], [stored(mine, "r/1"), stored(theirs, "r/2")])
    assert [(e.sequence, e.change.sop_uid) for e in await index.read_changes(site)] == [
        (1, "5.1.1.1")
    ]
    assert [(e.sequence, e.change.sop_uid) for e in await index.read_changes(other)] == [
        (1, "5.2.1.1")
    ]


async def test_sequences_survive_a_restart(twins: tuple[Index, Index], site: str) -> None:
    before, after = twins
    doc = instance_document(site, "6.1", "6.1.1", "6.1.1.1")
    await before.start()
    await before.upsert_instances([doc], [stored(doc, "r/1")])
    await before.close()
    await after.start()
    try:
        again = instance_document(site, "6.1", "6.1.1", "6.1.1.2")
        await after.upsert_instances([again], [stored(again, "r/2")])
        await after.upsert_instances([doc], [stored(doc, "r/1")])  # redelivered after restart
        entries = await after.read_changes(site)
    finally:
        await after.close()
    assert [(e.sequence, e.change.origin) for e in entries] == [(1, "r/1"), (2, "r/2")]


async def test_concurrent_writers_number_every_change_once(
    twins: tuple[Index, Index], site: str
) -> None:
    one, two = twins
    await one.start()
    await two.start()
    try:

        async def write(index: Index, name: str) -> None:
            for n in range(6):
                doc = instance_document(site, f"7.{name}", f"7.{name}.1", f"7.{name}.1.{n}")
                await index.upsert_instances([doc], [stored(doc, f"{name}/{n}")])

        await asyncio.gather(write(one, "1"), write(two, "2"))
        entries: list[FeedEntry] = await one.read_changes(site, limit=100)
    finally:
        await one.close()
        await two.close()
    assert [e.sequence for e in entries] == list(range(1, 13))
    assert sorted(e.change.origin for e in entries) == sorted(
        f"{name}/{n}" for name in "12" for n in range(6)
    )
    for name in "12":  # each writer's changes keep its order
        mine = [e.change.origin for e in entries if e.change.origin.startswith(f"{name}/")]
        assert mine == [f"{name}/{n}" for n in range(6)]
