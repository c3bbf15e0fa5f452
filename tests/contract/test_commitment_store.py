"""Contract of the commitment store port (``pacsflow.ports.commitments``), against every adapter.

SQLite (a temp file) and Elasticsearch (osmem on loopback, an index unique to the test).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pacsflow.adapters.sqlite_commitments import SqliteCommitmentStore
from pacsflow.errors import IndexUnavailable
from pacsflow.ports.commitments import CommitmentStore, StoredCommitment, TransactionInUse


def _elasticsearch(request: pytest.FixtureRequest, tmp_path: Path) -> CommitmentStore:
    from pacsflow.adapters.es_commitments import ElasticsearchCommitmentStore

    prefix = f"pacsflow-commit-{uuid.uuid5(uuid.NAMESPACE_URL, str(tmp_path)).hex}"  # per test
    return ElasticsearchCommitmentStore(request.getfixturevalue("es_url"), prefix=prefix)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> CommitmentStore:
    return SqliteCommitmentStore(tmp_path / "commitments.sqlite")


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], CommitmentStore]] = {
    "sqlite": _sqlite,
    "elasticsearch": _elasticsearch,
}


@pytest.fixture(params=list(FACTORIES))
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], CommitmentStore]:
    """Builds stores of one adapter over the same backing data (a file, an index)."""
    return lambda: FACTORIES[request.param](request, tmp_path)


@pytest.fixture
async def store(factory: Callable[[], CommitmentStore]) -> AsyncIterator[CommitmentStore]:
    created = factory()
    await created.start()
    await created.start()  # idempotent
    try:
        yield created
    finally:
        await created.close()


def record(site: str, uid: str | None = None, **changes: object) -> StoredCommitment:
    values: dict[str, object] = {
        "site": site,
        "transaction_uid": uid or f"2.25.{uuid.uuid4().int}",
        "request": {"form": "sop", "references": [["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]]},
        "created": 1000.0,
        "barrier": {0: 3, 1: 0, 5: 12},
        **changes,
    }
    return StoredCommitment(**values)  # type: ignore[arg-type]


RESULT = {"00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]}}


async def test_a_record_reads_back_whole(store: CommitmentStore) -> None:
    item = record("north")
    await store.create(item)

    assert await store.get("north", item.transaction_uid) == item
    assert await store.get("north", "2.25.1") is None


async def test_a_transaction_uid_is_in_use_once_per_site(store: CommitmentStore) -> None:
    item = record("north")
    await store.create(item)
    await store.finish("north", item.transaction_uid, RESULT, 2000.0)

    with pytest.raises(TransactionInUse):
        await store.create(record("north", item.transaction_uid))
    await store.create(record("south", item.transaction_uid))  # sites are apart
    assert (await store.get("south", item.transaction_uid)) == record("south", item.transaction_uid)


async def test_the_first_finish_wins(store: CommitmentStore) -> None:
    item = record("north")
    await store.create(item)
    other = {"00081198": {"vr": "SQ"}}

    first = await store.finish("north", item.transaction_uid, RESULT, 2000.0)
    second = await store.finish("north", item.transaction_uid, other, 3000.0)

    assert first.state == second.state == "done"
    assert first.result == second.result == RESULT
    assert first.finished == second.finished == 2000.0
    assert await store.get("north", item.transaction_uid) == first
    with pytest.raises(KeyError):
        await store.finish("north", "2.25.404", RESULT, 1.0)


async def test_concurrent_finishes_agree_on_one_result(store: CommitmentStore) -> None:
    item = record("north")
    await store.create(item)
    results = [{"00081197": {"vr": "US", "Value": [n]}} for n in range(6)]

    done = await asyncio.gather(
        *(store.finish("north", item.transaction_uid, r, 2000.0 + n) for n, r in enumerate(results))
    )

    assert len({str(d.result) for d in done}) == 1
    assert done[0].result in results


async def test_purge_removes_only_done_records_finished_before(store: CommitmentStore) -> None:
    old, recent, working = record("north"), record("north"), record("north")
    elsewhere = record("south")
    for item in (old, recent, working, elsewhere):
        await store.create(item)
    await store.finish("north", old.transaction_uid, RESULT, 2000.0)
    await store.finish("north", recent.transaction_uid, RESULT, 4000.0)
    await store.finish("south", elsewhere.transaction_uid, RESULT, 2000.0)

    assert await store.purge("north", 3000.0) == 1

    assert await store.get("north", old.transaction_uid) is None
    assert await store.get("north", recent.transaction_uid) is not None
    assert await store.get("north", working.transaction_uid) == working
    assert await store.get("south", elsewhere.transaction_uid) is not None


async def test_records_survive_a_new_store_on_the_same_data(
    factory: Callable[[], CommitmentStore],
) -> None:
    first = factory()
    await first.start()
    item = record("north")
    await first.create(item)
    done = await first.finish("north", item.transaction_uid, RESULT, 2000.0)
    await first.close()

    second = factory()
    await second.start()
    try:
        assert await second.get("north", item.transaction_uid) == done
    finally:
        await second.close()


async def test_check_passes_then_fails_once_closed(store: CommitmentStore) -> None:
    await asyncio.wait_for(store.check(), 10)
    await store.close()
    with pytest.raises(IndexUnavailable):
        await asyncio.wait_for(store.check(), 10)
