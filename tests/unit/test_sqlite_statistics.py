"""Planner statistics of the SQLite index (``pacsflow.adapters.sqlite_statistics``).

The index gathers ``sqlite_stat1`` once it holds ``analyze_floor`` instances and again each
time they double; with it, searches by UID or by a selective key start from that key instead
of walking every instance of the site in UID order. The plans are read with ``EXPLAIN QUERY
PLAN`` on a second connection, as any reader of the file would plan them.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.adapters.sqlite_statistics import PlannerStatistics, analyzed_rows
from pacsflow.ports.index import InstanceDocument
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from pacsflow.query.sql import to_sql
from tests.support.indexes import instance_document

SITE = "site-a"
# a plan step that walks the entities of the site: the site is the only constraint on them
SITE_WALK = re.compile(r"^SEARCH e USING (COVERING )?INDEX \w+ \(site=\?\)$")


def study(n: int) -> str:
    return f"1.2.826.0.1.3680043.10.1.{n}"


def documents(first: int, count: int) -> list[InstanceDocument]:
    """``count`` CT instances from number ``first`` on: ten per series, two series per study,
    one patient per study."""
    made = []
    for i in range(first, first + count):
        study_uid = study(i // 20)
        document = instance_document(
            SITE, study_uid, f"{study_uid}.{i // 10 % 2}", f"{study_uid}.9.{i}"
        )
        patient = {"00100020": {"vr": "LO", "Value": [f"P-{i // 20}"]}}
        made.append(replace(document, attributes={**document.attributes, **patient}))
    return made


def stat_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return analyzed_rows(db)


async def test_statistics_appear_at_the_floor_and_follow_the_instances_as_they_double(
    tmp_path: Path,
) -> None:
    path = tmp_path / "index.sqlite"
    index = SqliteIndex(path, analyze_floor=50)
    await index.start()
    try:
        await index.upsert_instances(documents(0, 40))
        assert stat_rows(path) == 0  # below the floor: no statistics yet
        await index.upsert_instances(documents(40, 20))
        assert stat_rows(path) == 60
        await index.upsert_instances(documents(0, 60))  # replacements add no instance
        await index.upsert_instances(documents(60, 50))
        assert stat_rows(path) == 60  # 110 < 2 x 60
        await index.upsert_instances(documents(110, 10))
        assert stat_rows(path) == 120
    finally:
        await index.close()


async def test_an_index_opened_without_statistics_is_analysed_when_it_starts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "index.sqlite"
    index = SqliteIndex(path)  # the default floor: 60 instances stay unanalysed
    await index.start()
    await index.upsert_instances(documents(0, 60))
    await index.close()
    assert stat_rows(path) == 0
    reopened = SqliteIndex(path, analyze_floor=50)
    await reopened.start()
    await reopened.close()
    assert stat_rows(path) == 60


def test_removed_instances_count_down_and_never_below_zero() -> None:
    statistics = PlannerStatistics(floor=10)
    statistics.rows, statistics.analyzed = 30, 20
    assert not statistics.due()
    statistics.rows = 40
    assert statistics.due()
    statistics.rows, statistics.analyzed = 5, 0
    assert not statistics.due()  # below the floor
    with sqlite3.connect(":memory:") as db:
        statistics.changed(db, -10)
    assert statistics.rows == 0


LARGE = 10_000  # instances: enough that walking the site costs more than a sort to SQLite


@pytest.fixture(scope="module")
def large_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of ``LARGE`` instances (500 studies), analysed on the way."""
    path = tmp_path_factory.mktemp("large") / "index.sqlite"

    async def load() -> None:
        index = SqliteIndex(path, analyze_floor=100)
        await index.start()
        try:
            for first in range(0, LARGE, 1000):
                await index.upsert_instances(documents(first, 1000))
        finally:
            await index.close()

    asyncio.run(load())
    return path


TARGET = documents(5155, 1)[0]  # study 257, series 1


@pytest.mark.parametrize(
    ("level", "key", "value", "expected"),
    [
        (Level.INSTANCE, "SOPInstanceUID", TARGET.sop_uid, 1),
        (Level.INSTANCE, "SeriesInstanceUID", TARGET.series_uid, 10),
        (Level.INSTANCE, "StudyInstanceUID", TARGET.study_uid, 20),
        (Level.INSTANCE, "PatientID", "P-257", 20),
        (Level.SERIES, "SeriesInstanceUID", TARGET.series_uid, 1),
        (Level.SERIES, "StudyInstanceUID", TARGET.study_uid, 2),
        (Level.SERIES, "PatientID", "P-257", 2),
        (Level.STUDY, "StudyInstanceUID", TARGET.study_uid, 1),
        (Level.STUDY, "PatientID", "P-257", 1),
    ],
)
async def test_a_selective_search_starts_from_its_key_not_from_a_walk_of_the_site(
    large_index: Path, level: Level, key: str, value: str, expected: int
) -> None:
    query = parse_query(level, [(key, value)])
    index = SqliteIndex(large_index)
    await index.start()
    try:
        page = await index.search(SITE, query)
    finally:
        await index.close()
    assert (page.total, len(page.records)) == (expected, expected)
    assert all(record["0020000D"]["Value"] == [TARGET.study_uid] for record in page.records)
    sql = to_sql(SITE, query)
    with sqlite3.connect(large_index) as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql.select}", sql.select_params)]
    assert plan
    assert not [step for step in plan if SITE_WALK.match(step)], plan


async def test_an_unselective_search_still_returns_its_page_in_uid_order(large_index: Path) -> None:
    index = SqliteIndex(large_index)
    await index.start()
    try:
        query = parse_query(Level.INSTANCE, [("Modality", "CT"), ("limit", "50"), ("offset", "7")])
        page = await index.search(SITE, query)
    finally:
        await index.close()
    every = sorted(d.sop_uid for d in documents(0, LARGE))
    assert page.total == LARGE
    assert [r["00080018"]["Value"][0] for r in page.records] == every[7:57]
