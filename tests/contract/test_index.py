"""Contract of the index port (``pacsflow.ports.index``), run against every adapter.

Every test uses site names no other test uses, so an adapter backed by a shared cluster can run
the suite without cleaning up.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsflow.errors import BadRequest, IndexUnavailable
from pacsflow.ports.index import SCAN_STUDIES, Index, IndexedEntity, InstanceRef
from pacsflow.query.model import Any_, Condition, Glob, Level, Query, SearchPage
from pacsflow.query.parse import parse_query
from tests.support.indexes import INDEX_FACTORIES, instance_document
from tests.support.servers import free_port

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SR = "1.2.840.10008.5.1.4.1.1.88.33"

JsonDict = dict[str, Any]


def value(attributes: dict[str, Any], tag: str) -> list[Any]:
    """The ``Value`` of ``tag`` (empty when the attribute has none)."""
    return list(attributes[tag].get("Value", []))


def uid(record: JsonDict, tag: str) -> str:
    """The first value of a UI attribute of a record (``0020000D``, ``0020000E``...)."""
    [first] = value(record, tag)
    return str(first)


async def search_studies(index: Index, site: str, limit: int = 1000, offset: int = 0) -> SearchPage:
    """One page of the studies of ``site`` (no matching key)."""
    params = [("limit", str(limit)), ("offset", str(offset))]
    return await index.search(site, parse_query(Level.STUDY, params))


async def studies_list(index: Index, site: str, limit: int = 1000) -> list[JsonDict]:
    """The first ``limit`` studies of ``site``, in Study Instance UID order."""
    return (await search_studies(index, site, limit=limit)).records


async def all_studies(index: Index, site: str) -> dict[str, JsonDict]:
    """Every study of ``site``, by Study Instance UID (in the order the index returns them)."""
    return {uid(s, "0020000D"): s for s in await studies_list(index, site)}


async def series_of(index: Index, site: str, study_uid: str) -> list[JsonDict]:
    """Every series of one study, in Series Instance UID order."""
    query = parse_query(Level.SERIES, [("limit", "1000")], study_uid=study_uid)
    return (await index.search(site, query)).records


async def series_uids(index: Index, site: str, study_uid: str) -> list[str]:
    """The Series Instance UIDs of one study, in the order the index returns them."""
    return [uid(s, "0020000E") for s in await series_of(index, site, study_uid)]


async def test_upsert_then_get_instance_round_trips_every_field(index: Index, site: str) -> None:
    original = instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5")
    await index.upsert_instances([original])

    assert await index.get_instance(site, "1.2.3.4.5") == original
    assert await index.get_instance(site, "9.9.9") is None


async def test_an_instance_ref_is_where_the_document_says_it_is(index: Index, site: str) -> None:
    original = instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5")
    await index.upsert_instances([original])

    ref = await index.get_instance_ref(site, "1.2.3.4.5")
    assert ref == InstanceRef(
        original.study_uid,
        original.series_uid,
        original.sop_uid,
        original.transfer_syntax,
        original.size,
        original.sha256,
    )
    assert ref in await index.list_instances(site, "1.2.3")
    assert await index.get_instance_ref(site, "9.9.9") is None
    assert await index.get_instance_ref(f"{site}-other", "1.2.3.4.5") is None


async def test_upsert_of_the_same_document_twice_leaves_one_entry(index: Index, site: str) -> None:
    first = instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5")
    await index.upsert_instances([first, instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.6")])
    await index.upsert_instances([first])
    await index.upsert_instances([first])

    [study] = await studies_list(index, site, limit=10)
    assert value(study, "00201206") == [1]
    assert value(study, "00201208") == [2]
    [series] = await series_of(index, site, "1.2.3")
    assert value(series, "00201209") == [2]
    instances = parse_query(Level.INSTANCE, [], study_uid="1.2.3", series_uid="1.2.3.4")
    page = await index.search(site, instances)
    assert page.total == 2
    assert sorted(uid(i, "00080018") for i in page.records) == ["1.2.3.4.5", "1.2.3.4.6"]


async def test_replacement_keeps_the_latest_document(index: Index, site: str) -> None:
    await index.upsert_instances(
        [instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5", patient="OLD^NAME")]
    )
    newer = instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5", patient="NEW^NAME")
    await index.upsert_instances([newer])

    assert await index.get_instance(site, "1.2.3.4.5") == newer
    [study] = await studies_list(index, site, limit=10)
    assert value(study, "00100010") == [{"Alphabetic": "NEW^NAME"}]
    assert value(study, "00201208") == [1]


async def test_replacement_moving_an_instance_to_another_study(index: Index, site: str) -> None:
    await index.upsert_instances(
        [
            instance_document(site, "1.1", "1.1.1", "1.1.1.1"),
            instance_document(site, "2.2", "2.2.1", "2.2.1.1"),
        ]
    )

    await index.upsert_instances(
        [instance_document(site, "2.2", "2.2.2", "1.1.1.1", modality="MR")]
    )

    studies = await all_studies(index, site)
    assert list(studies) == ["2.2"]  # the old study became empty and is gone
    moved = studies["2.2"]
    assert value(moved, "00201206") == [2]
    assert value(moved, "00201208") == [2]
    assert value(moved, "00080061") == ["CT", "MR"]
    assert await series_of(index, site, "1.1") == []
    assert await series_uids(index, site, "2.2") == ["2.2.1", "2.2.2"]
    entry = await index.get_instance(site, "1.1.1.1")
    assert entry is not None
    assert (entry.study_uid, entry.series_uid) == ("2.2", "2.2.2")


async def test_replacement_moving_an_instance_leaves_a_non_empty_study(
    index: Index, site: str
) -> None:
    await index.upsert_instances(
        [
            instance_document(site, "1.1", "1.1.1", "1.1.1.1"),
            instance_document(site, "1.1", "1.1.2", "1.1.2.1"),
        ]
    )

    await index.upsert_instances([instance_document(site, "2.2", "2.2.1", "1.1.1.1")])

    studies = await all_studies(index, site)
    assert sorted(studies) == ["1.1", "2.2"]
    assert value(studies["1.1"], "00201206") == [1]
    assert value(studies["1.1"], "00201208") == [1]
    assert await series_uids(index, site, "1.1") == ["1.1.2"]
    assert value(studies["2.2"], "00201208") == [1]


async def test_study_derived_attributes(index: Index, site: str) -> None:
    await index.upsert_instances(
        [
            instance_document(site, "1.5", "1.5.1", "1.5.1.1", modality="MR", sop_class=MR),
            instance_document(site, "1.5", "1.5.1", "1.5.1.2", modality="MR", sop_class=MR),
            instance_document(site, "1.5", "1.5.2", "1.5.2.1", modality="CT", sop_class=CT),
            instance_document(site, "1.5", "1.5.3", "1.5.3.1", modality="SR", sop_class=SR),
            instance_document(site, "1.5", "1.5.3", "1.5.3.2", modality="SR", sop_class=SR),
            instance_document(site, "1.5", "1.5.4", "1.5.4.1", modality="CT", sop_class=CT),
        ]
    )

    [attrs] = await studies_list(index, site, limit=10)
    assert uid(attrs, "0020000D") == "1.5"
    assert attrs["00201206"] == {"vr": "IS", "Value": [4]}  # NumberOfStudyRelatedSeries
    assert attrs["00201208"] == {"vr": "IS", "Value": [6]}  # NumberOfStudyRelatedInstances
    assert attrs["00080061"] == {"vr": "CS", "Value": ["CT", "MR", "SR"]}  # ModalitiesInStudy
    assert attrs["00080062"]["vr"] == "UI"  # SOPClassesInStudy
    assert sorted(value(attrs, "00080062")) == sorted({CT, MR, SR})
    assert len(value(attrs, "00080062")) == 3


async def test_search_series_counts_instances_per_series(index: Index, site: str) -> None:
    await index.upsert_instances(
        [instance_document(site, "1.5", "1.5.2", f"1.5.2.{i}") for i in range(1, 4)]
        + [instance_document(site, "1.5", "1.5.1", "1.5.1.1", modality="MR", sop_class=MR)]
        + [instance_document(site, "1.6", "1.6.1", "1.6.1.1")]
    )

    series = await series_of(index, site, "1.5")

    assert [(uid(s, "0020000D"), uid(s, "0020000E")) for s in series] == [
        ("1.5", "1.5.1"),
        ("1.5", "1.5.2"),
    ]
    assert [s["00201209"] for s in series] == [
        {"vr": "IS", "Value": [1]},
        {"vr": "IS", "Value": [3]},
    ]
    assert [value(s, "00080060") for s in series] == [["MR"], ["CT"]]
    assert [value(s, "0020000E") for s in series] == [["1.5.1"], ["1.5.2"]]
    assert await series_of(index, site, "9.9") == []


async def test_study_level_attributes_come_from_the_instances(index: Index, site: str) -> None:
    await index.upsert_instances(
        [
            instance_document(
                site, "1.7", "1.7.1", "1.7.1.1", patient="ROE^JANE", study_date="19991231"
            )
        ]
    )

    [attrs] = await studies_list(index, site, limit=10)

    assert uid(attrs, "0020000D") == "1.7"
    assert attrs["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "ROE^JANE"}]}
    assert attrs["00080020"] == {"vr": "DA", "Value": ["19991231"]}
    assert attrs["00100020"] == {"vr": "LO", "Value": ["PID-1"]}
    assert value(attrs, "0020000D") == ["1.7"]
    # Instance-level attributes do not belong to the study record.
    assert "00080018" not in attrs
    assert "00280010" not in attrs


async def test_sites_are_isolated(index: Index, site: str) -> None:
    other = f"other-{uuid.uuid4().hex}"
    await index.upsert_instances([instance_document(site, "1.8", "1.8.1", "1.8.1.1")])
    await index.upsert_instances(
        [
            instance_document(other, "1.8", "1.8.1", "1.8.1.1", patient="OTHER^SITE"),
            instance_document(other, "1.8", "1.8.1", "1.8.1.2"),
            instance_document(other, "1.9", "1.9.1", "1.9.1.1"),
        ]
    )

    mine = await all_studies(index, site)
    assert list(mine) == ["1.8"]
    assert value(mine["1.8"], "00201208") == [1]
    assert value(mine["1.8"], "00100010") == [{"Alphabetic": "DOE^JOHN"}]
    theirs = await all_studies(index, other)
    assert sorted(theirs) == ["1.8", "1.9"]
    assert value(theirs["1.8"], "00201208") == [2]
    nobody = await search_studies(index, f"nobody-{uuid.uuid4().hex}", limit=10)
    assert (nobody.records, nobody.total) == ([], 0)

    await index.delete_instances(other, ["1.8.1.1"])
    entry = await index.get_instance(site, "1.8.1.1")
    assert entry is not None
    assert entry.site == site
    assert await index.get_instance(other, "1.8.1.1") is None
    assert value((await all_studies(index, site))["1.8"], "00201208") == [1]


async def test_search_studies_pages_are_stable(index: Index, site: str) -> None:
    uids = [f"1.2.826.0.1.{n}" for n in range(25)]  # 1.2.826.0.1.10 sorts before ...0.1.2
    await index.upsert_instances(
        [instance_document(site, u, f"{u}.1", f"{u}.1.1") for u in reversed(uids)]
    )

    for limit in (1, 7, 10, 25, 30):
        seen: list[str] = []
        for offset in range(0, 30, limit):
            page = await search_studies(index, site, limit=limit, offset=offset)
            assert len(page.records) == max(0, min(limit, len(uids) - offset))
            assert page.total == len(uids), f"limit {limit} offset {offset}"
            seen += [uid(s, "0020000D") for s in page.records]
        assert seen == sorted(uids), f"limit {limit}"
    past_the_end = await search_studies(index, site, limit=10, offset=25)
    assert (past_the_end.records, past_the_end.total) == ([], len(uids))


async def test_delete_instance_is_idempotent_and_drops_empty_studies(
    index: Index, site: str
) -> None:
    await index.upsert_instances(
        [
            instance_document(site, "3.1", "3.1.1", "3.1.1.1"),
            instance_document(site, "3.1", "3.1.2", "3.1.2.1", modality="MR", sop_class=MR),
            instance_document(site, "3.2", "3.2.1", "3.2.1.1"),
        ]
    )

    await index.delete_instances(site, ["3.1.2.1"])
    await index.delete_instances(site, ["3.1.2.1"])
    studies = await all_studies(index, site)
    assert sorted(studies) == ["3.1", "3.2"]
    assert value(studies["3.1"], "00201206") == [1]
    assert value(studies["3.1"], "00080061") == ["CT"]
    assert value(studies["3.1"], "00080062") == [CT]
    assert await series_uids(index, site, "3.1") == ["3.1.1"]

    await index.delete_instances(site, ["3.2.1.1"])
    await index.delete_instances(site, ["3.2.1.1"])
    assert list(await all_studies(index, site)) == ["3.1"]
    assert await series_of(index, site, "3.2") == []
    assert await index.get_instance(site, "3.2.1.1") is None

    await index.delete_instances(site, ["never.indexed"])


async def test_delete_instances_removes_a_batch_and_recounts(index: Index, site: str) -> None:
    await index.upsert_instances(
        [
            *(instance_document(site, "5.1", "5.1.1", f"5.1.1.{i}") for i in range(3)),
            instance_document(site, "5.1", "5.1.2", "5.1.2.1", modality="MR", sop_class=MR),
            instance_document(site, "5.2", "5.2.1", "5.2.1.1"),
        ]
    )

    await index.delete_instances(site, ["5.1.1.0", "5.1.1.1", "5.1.2.1", "5.2.1.1", "never"])
    await index.delete_instances(site, ["5.1.1.0", "5.2.1.1"])
    await index.delete_instances(site, [])

    studies = await all_studies(index, site)
    assert list(studies) == ["5.1"]
    assert value(studies["5.1"], "00201206") == [1]
    assert value(studies["5.1"], "00201208") == [1]
    assert value(studies["5.1"], "00080061") == ["CT"]
    assert await series_uids(index, site, "5.1") == ["5.1.1"]
    assert [r.sop_uid for r in await index.list_instances(site, "5.1")] == ["5.1.1.2"]
    assert await index.list_instances(site, "5.2") == []


async def test_batch_upsert_of_many_documents(index: Index, site: str) -> None:
    docs = [
        instance_document(
            site, f"4.{st}", f"4.{st}.{se}", f"4.{st}.{se}.{i}", modality=("CT", "MR")[se % 2]
        )
        for st in range(10)
        for se in range(3)
        for i in range(20)
    ]
    await index.upsert_instances(docs)
    await index.upsert_instances([])

    studies = await all_studies(index, site)
    assert sorted(studies) == sorted(f"4.{st}" for st in range(10))
    for study in studies.values():
        assert value(study, "00201206") == [3]
        assert value(study, "00201208") == [60]
        assert value(study, "00080061") == ["CT", "MR"]
    series = await series_of(index, site, "4.3")
    assert [value(s, "00201209") for s in series] == [[20], [20], [20]]
    assert await index.get_instance(site, "4.9.2.19") == docs[-1]


async def test_a_batch_may_move_an_instance_it_also_adds(index: Index, site: str) -> None:
    await index.upsert_instances(
        [
            instance_document(site, "5.1", "5.1.1", "5.1.1.1"),
            instance_document(site, "5.2", "5.2.1", "5.1.1.1"),
        ]
    )

    assert list(await all_studies(index, site)) == ["5.2"]
    entry = await index.get_instance(site, "5.1.1.1")
    assert entry is not None
    assert entry.study_uid == "5.2"


async def test_list_instances_of_a_study_or_series(index: Index, site: str) -> None:
    docs = [
        instance_document(site, "7.1", f"7.1.{se}", f"7.1.{se}.{i}")
        for se in (2, 1)
        for i in (3, 1, 2)
    ]
    docs.append(instance_document(site, "7.2", "7.2.1", "7.2.1.1"))
    await index.upsert_instances(docs)
    await index.upsert_instances([instance_document(f"{site}-other", "7.1", "7.1.1", "7.1.1.9")])
    refs = await index.list_instances(site, "7.1")
    assert [(r.series_uid, r.sop_uid) for r in refs] == [
        (f"7.1.{se}", f"7.1.{se}.{i}") for se in (1, 2) for i in (1, 2, 3)
    ]
    first = next(d for d in docs if d.sop_uid == "7.1.1.1")
    assert refs[0] == InstanceRef(
        "7.1", "7.1.1", "7.1.1.1", first.transfer_syntax, first.size, first.sha256
    )
    assert [r.sop_uid for r in await index.list_instances(site, "7.1", "7.1.2")] == [
        "7.1.2.1",
        "7.1.2.2",
        "7.1.2.3",
    ]
    assert await index.list_instances(site, "7.1", "7.2.1") == []
    assert await index.list_instances(site, "9.9") == []


async def test_the_middle_instance_of_each_series(index: Index, site: str) -> None:
    """Of n instances in SOP Instance UID order, the one at n // 2 (what a thumbnail shows)."""
    sizes = {"8.1.1": 4, "8.1.2": 1, "8.1.3": 3}
    docs = [
        instance_document(site, "8.1", series, f"{series}.{i}")
        for series, n in sizes.items()
        for i in reversed(range(1, n + 1))
    ]
    docs.append(instance_document(site, "8.2", "8.2.1", "8.2.1.1"))
    await index.upsert_instances(docs)
    await index.upsert_instances([instance_document(f"{site}-other", "8.1", "8.1.4", "8.1.4.1")])
    middles = await index.list_middle_instances(site, "8.1")
    assert [r.sop_uid for r in middles] == ["8.1.1.3", "8.1.2.1", "8.1.3.2"]
    every = await index.list_instances(site, "8.1")
    assert all(ref in every for ref in middles)  # the same references, digests included
    assert [r.sop_uid for r in await index.list_middle_instances(site, "8.1", "8.1.3")] == [
        "8.1.3.2"
    ]
    assert await index.list_middle_instances(site, "8.1", "8.2.1") == []
    assert await index.list_middle_instances(site, "9.9") == []


async def scan_all(
    index: Index, site: str, level: Level, limit: int, after: str = ""
) -> list[IndexedEntity]:
    """Every entity of ``level`` after ``after``, page after page of ``limit`` (an export)."""
    entities: list[IndexedEntity] = []
    while True:
        page = await index.scan(site, level, entities[-1].uid if entities else after, limit)
        entities += page
        if len(page) < limit:
            return entities


async def test_scan_walks_every_level_by_uid_in_pages(index: Index, site: str) -> None:
    docs = [
        instance_document(
            site, f"8.{st}", f"8.{st}.{se}", f"8.{st}.{se}.{i}", modality=("CT", "MR")[se]
        )
        for st in (3, 1, 2)
        for se in (1, 0)
        for i in (2, 1)
    ]
    await index.upsert_instances(docs)
    await index.upsert_instances([instance_document(f"{site}-other", "8.9", "8.9.0", "8.9.0.1")])

    studies = await scan_all(index, site, Level.STUDY, 2)
    assert [e.uid for e in studies] == ["8.1", "8.2", "8.3"]
    assert all(e.study_uid == e.uid and e.series_uid == "" for e in studies)
    assert all(e.document is None for e in studies)
    assert value(studies[0].attributes, "00201208") == [4]  # derived attributes, as searched
    assert value(studies[0].attributes, "00100010") == [{"Alphabetic": "DOE^JOHN"}]
    series = await scan_all(index, site, Level.SERIES, 4)
    assert [(e.study_uid, e.uid) for e in series] == [
        (f"8.{st}", f"8.{st}.{se}") for st in (1, 2, 3) for se in (0, 1)
    ]
    assert all(e.series_uid == e.uid for e in series)
    assert value(series[0].attributes, "00080060") == ["CT"]
    assert value(series[0].attributes, "00201209") == [2]
    instances = await scan_all(index, site, Level.INSTANCE, 5)
    assert [e.uid for e in instances] == sorted(d.sop_uid for d in docs)
    by_uid = {d.sop_uid: d for d in docs}
    for entity in instances:
        assert entity.document == by_uid[entity.uid]
        assert (entity.study_uid, entity.series_uid) == (
            by_uid[entity.uid].study_uid,
            by_uid[entity.uid].series_uid,
        )
        assert entity.attributes == by_uid[entity.uid].attributes
    assert await index.scan(site, Level.STUDY, "8.3") == []
    assert await index.scan(f"{site}-none", Level.INSTANCE) == []


async def test_scan_of_chosen_studies_walks_only_them(index: Index, site: str) -> None:
    docs = [
        instance_document(site, f"8.{st}", f"8.{st}.{se}", f"8.{st}.{se}.{i}")
        for st in (1, 2, 3, 4)
        for se in (1, 2)
        for i in (1, 2, 3)
    ]
    await index.upsert_instances(docs)
    await index.upsert_instances([instance_document(f"{site}-other", "8.2", "8.2.1", "8.2.1.9")])
    chosen = ["8.4", "8.2", "8.9"]  # 8.9: no such study

    async def walk(level: Level, limit: int) -> list[IndexedEntity]:
        entities: list[IndexedEntity] = []
        while True:
            after = entities[-1].uid if entities else ""
            page = await index.scan(site, level, after, limit, studies=chosen)
            entities += page
            if len(page) < limit:
                return entities

    assert [e.uid for e in await walk(Level.STUDY, 1)] == ["8.2", "8.4"]
    assert [e.uid for e in await walk(Level.SERIES, 3)] == ["8.2.1", "8.2.2", "8.4.1", "8.4.2"]
    instances = await walk(Level.INSTANCE, 5)
    assert [e.uid for e in instances] == sorted(d.sop_uid for d in docs if d.study_uid in chosen)
    assert all(e.document is not None and e.document.site == site for e in instances)
    with pytest.raises(ValueError):
        await index.scan(site, Level.STUDY, studies=[f"9.{n}" for n in range(SCAN_STUDIES + 1)])


async def test_scan_pages_neither_skip_nor_repeat_while_entries_change(
    index: Index, site: str
) -> None:
    await index.upsert_instances(
        [instance_document(site, "9.1", "9.1.1", f"9.1.1.{i}") for i in range(10)]
    )
    first = await index.scan(site, Level.INSTANCE, "", 4)
    # an entry before the cursor goes, one after it comes: the walk goes on from the cursor
    await index.delete_instances(site, ["9.1.1.0"])
    await index.upsert_instances([instance_document(site, "9.1", "9.1.1", "9.1.1.95")])
    rest = await scan_all(index, site, Level.INSTANCE, 3, after=first[-1].uid)
    assert [e.uid for e in first + rest] == [f"9.1.1.{i}" for i in range(10)] + ["9.1.1.95"]


# ---- check(): the readiness probe's question, answered quickly either way

CHECK_WAIT = 10.0  # upper bound of a check that fails; a healthy index answers long before


async def test_check_passes_on_a_live_index(index: Index) -> None:
    await asyncio.wait_for(index.check(), CHECK_WAIT)


@pytest.mark.parametrize("kind", list(INDEX_FACTORIES))
async def test_check_raises_once_the_index_is_closed(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    created = INDEX_FACTORIES[kind](request, tmp_path)
    with pytest.raises(IndexUnavailable):
        await created.check()  # never started
    await created.start()
    await created.check()
    await created.close()
    with pytest.raises(IndexUnavailable):
        await asyncio.wait_for(created.check(), CHECK_WAIT)


async def test_elasticsearch_check_raises_on_a_closed_port() -> None:
    from pacsflow.adapters.es_index import ElasticsearchIndex

    created = ElasticsearchIndex(f"http://127.0.0.1:{free_port()}", prefix="pacsflow-closed")
    try:
        with pytest.raises(IndexUnavailable):
            await created.start()
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(IndexUnavailable):
            await asyncio.wait_for(created.check(), CHECK_WAIT)
        assert loop.time() - began < CHECK_WAIT
    finally:
        await created.close()


async def test_elasticsearch_check_raises_when_an_index_is_deleted(es_url: str) -> None:
    from pacsflow.adapters.es_index import ElasticsearchIndex, index_bodies

    prefix = f"pacsflow-test-{uuid.uuid4().hex}"
    created = ElasticsearchIndex(es_url, prefix=prefix)
    await created.start()
    try:
        await created.check()
        async with httpx.AsyncClient() as client:
            name = next(iter(index_bodies(prefix)))
            assert (await client.delete(f"{es_url}/{name}")).status_code == 200
        with pytest.raises(IndexUnavailable):
            await asyncio.wait_for(created.check(), CHECK_WAIT)
    finally:
        await created.close()


async def test_get_instances_returns_the_known_ones(index: Index, site: str) -> None:
    first, second = (
        instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5"),
        instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.6"),
    )
    await index.upsert_instances([first, second])
    found = await index.get_instances(site, ["1.2.3.4.6", "9.9.9", "1.2.3.4.5", "1.2.3.4.5"])
    assert found == {"1.2.3.4.5": first, "1.2.3.4.6": second}
    assert await index.get_instances(site, []) == {}
    assert await index.get_instances(f"{site}-other", ["1.2.3.4.5"]) == {}


async def test_a_query_beyond_the_sqlite_limits_is_the_clients_error(
    request: pytest.FixtureRequest, tmp_path: Path, site: str
) -> None:
    """Thousands of alternatives (past SQLite's 500 compound SELECT terms): a BadRequest, never
    IndexUnavailable (503, an outage). SQLite only: osmem has no clause limit, and Elasticsearch's
    (1,024 bool clauses) answers 400, which the adapter maps the same way."""
    index = INDEX_FACTORIES["sqlite"](request, tmp_path)
    await index.start()
    await index.upsert_instances([instance_document(site, "1.2.3", "1.2.3.4", "1.2.3.4.5")])
    alternatives = tuple(Glob(f"00100010=DOE{n}*") for n in range(5000))
    condition = Condition(Level.STUDY, "PatientName", Any_(alternatives))
    query = Query(level=Level.STUDY, conditions=(condition,))
    with pytest.raises(BadRequest):
        await index.search(site, query)
    assert (await search_studies(index, site)).total == 1  # the index still answers
    await index.close()


async def test_totals_count_every_level_and_the_bytes(index: Index, site: str) -> None:
    """Over all sites (the suite shares the adapter's storage): compared before and after."""
    before = await index.totals()
    docs = [
        instance_document(site, "8.1", "8.1.1", "8.1.1.1"),
        instance_document(site, "8.1", "8.1.2", "8.1.2.1"),
        instance_document(f"{site}-other", "8.2", "8.2.1", "8.2.1.1"),
    ]
    await index.upsert_instances(docs)
    await index.upsert_instances(docs[:1])  # indexed again: counted once
    after = await index.totals()
    grown = (
        after.studies - before.studies,
        after.series - before.series,
        after.instances - before.instances,
        after.bytes - before.bytes,
    )
    assert grown == (2, 3, 3, sum(d.size for d in docs))
    await index.delete_instances(site, ["8.1.2.1"])
    left = await index.totals()
    assert (left.series, left.instances) == (after.series - 1, after.instances - 1)
    assert left.bytes == after.bytes - docs[1].size
