"""Golden tests of the SQLite translator ``pacsflow.query.sql.to_sql``: exact SQL and parameters.

The queries are built with ``parse_query`` so that each golden is the SQL of a real request.
"""

from __future__ import annotations

from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from pacsflow.query.sql import SqlQuery, glob_prefix, to_sql
from pacsflow.query.terms import MAX_ITEMS, MAX_TERM

SITE = "site-a"
TOP = "\U0010ffff"  # the upper bound of a glob's prefix range


def sql(
    level: Level,
    *parameters: tuple[str, str],
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> SqlQuery:
    query = parse_query(level, parameters, study_uid=study_uid, series_uid=series_uid)
    return to_sql(SITE, query)


ROWS = {
    Level.STUDY: "SELECT e.attributes FROM page JOIN studies e ON e.id = page.id",
    Level.SERIES: (
        "SELECT e.attributes, p.attributes FROM page JOIN series e ON e.id = page.id"
        " JOIN studies p ON p.site = e.site AND p.study_uid = e.study_uid"
    ),
    Level.INSTANCE: (
        "SELECT e.attributes, r.attributes, p.attributes"
        " FROM page JOIN instances e ON e.id = page.id"
        " JOIN series r ON r.site = e.site AND r.series_uid = e.series_uid"
        " JOIN studies p ON p.site = e.site AND p.study_uid = e.study_uid"
    ),
}
ENTITY = {
    Level.STUDY: ("studies", "study_uid"),
    Level.SERIES: ("series", "series_uid"),
    Level.INSTANCE: ("instances", "sop_uid"),
}


def page_select(level: Level, where: str) -> str:
    """The deferred join: one page of ids and UIDs first, then the rows of those ids."""
    table, uid = ENTITY[level]
    return (
        f"WITH page AS (SELECT e.id, e.{uid} AS uid FROM {table} e WHERE {where}"
        f" ORDER BY e.{uid} LIMIT ? OFFSET ?) {ROWS[level]} ORDER BY page.uid"
    )


def study_page(where: str, params: tuple[str | int, ...], limit: int = 100) -> SqlQuery:
    """The SqlQuery of a study search whose WHERE clause follows ``e.site = ?``."""
    clause = f"e.site = ? AND {where}" if where else "e.site = ?"
    return SqlQuery(
        select=page_select(Level.STUDY, clause),
        select_params=(SITE, *params, limit, 0),
        count=f"SELECT COUNT(*) FROM studies e WHERE {clause}",
        count_params=(SITE, *params),
    )


def test_plain_studies_page() -> None:
    assert sql(Level.STUDY) == SqlQuery(
        select=(
            "WITH page AS (SELECT e.id, e.study_uid AS uid FROM studies e WHERE e.site = ?"
            " ORDER BY e.study_uid LIMIT ? OFFSET ?)"
            " SELECT e.attributes FROM page JOIN studies e ON e.id = page.id ORDER BY page.uid"
        ),
        select_params=(SITE, 100, 0),
        count="SELECT COUNT(*) FROM studies e WHERE e.site = ?",
        count_params=(SITE,),
    )
    paged = sql(Level.STUDY, ("limit", "10"), ("offset", "30"))
    assert paged.select_params == (SITE, 10, 30)
    assert paged.count_params == (SITE,)


def test_person_name_wildcard() -> None:
    assert sql(Level.STUDY, ("PatientName", "DOE^J*")) == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term >= ? AND term < ? AND term GLOB ?)",
        ("00100010=doe^j", f"00100010=doe^j{TOP}", "00100010=doe^j*"),
    )


def test_wildcard_brackets_are_literal() -> None:
    assert sql(Level.STUDY, ("StudyDescription", "[a]?*")) == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term >= ? AND term < ? AND term GLOB ?)",
        ("00081030=[a]", f"00081030=[a]{TOP}", "00081030=[[]a]?*"),
    )


def test_date_range() -> None:
    assert sql(Level.STUDY, ("StudyDate", "20240101-20240131")) == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term BETWEEN ? AND ?)",
        ("00080020=20240101", "00080020=20240131"),
    )
    assert sql(Level.STUDY, ("StudyDate", "20240101-")) == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term BETWEEN ? AND ?)",
        ("00080020=20240101", f"00080020={MAX_TERM}"),
    )


def test_combined_date_time_range() -> None:
    query = sql(Level.STUDY, ("StudyDate", "20240101-20240102"), ("StudyTime", "10-11"))
    assert query == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term BETWEEN ? AND ?)",
        (
            "00080020+00080030=20240101100000.000000",
            "00080020+00080030=20240102115959.999999",
        ),
    )


def test_fuzzy_person_name() -> None:
    glob = "SELECT id FROM study_terms WHERE term >= ? AND term < ? AND term GLOB ?"
    query = sql(Level.STUDY, ("PatientName", "Jürgen MUL"), ("fuzzymatching", "true"))
    assert query == study_page(
        f"e.id IN (SELECT id FROM ({glob}) INTERSECT SELECT id FROM ({glob}))",
        (
            "00100010~jurgen",
            f"00100010~jurgen{TOP}",
            "00100010~jurgen*",
            "00100010~mul",
            f"00100010~mul{TOP}",
            "00100010~mul*",
        ),
    )


def test_uid_list() -> None:
    assert sql(Level.STUDY, ("StudyInstanceUID", "1.2.3,1.2.4\\1.2.5")) == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term IN (?,?,?))",
        ("0020000D=1.2.3", "0020000D=1.2.4", "0020000D=1.2.5"),
    )


def test_several_values_become_one_term_list() -> None:
    assert sql(Level.STUDY, ("ModalitiesInStudy", "CT\\MR")) == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term IN (?,?))",
        ("00080061=CT", "00080061=MR"),
    )


def test_empty_value_is_not_in() -> None:
    assert sql(Level.STUDY, ("AccessionNumber", '""')) == study_page(
        "e.id NOT IN (SELECT id FROM study_terms WHERE term BETWEEN ? AND ?)",
        ("00080050=", f"00080050={MAX_TERM}"),
    )


def test_several_conditions_all_hold() -> None:
    query = sql(Level.STUDY, ("PatientID", "P1"), ("AccessionNumber", '""'), ("limit", "5"))
    assert query == study_page(
        "e.id IN (SELECT id FROM study_terms WHERE term = ?)"
        " AND e.id NOT IN (SELECT id FROM study_terms WHERE term BETWEEN ? AND ?)",
        ("00100020=P1", "00080050=", f"00080050={MAX_TERM}"),
        limit=5,
    )


def test_sequence_one_key_any_item() -> None:
    places = ",".join("?" * MAX_ITEMS)
    where = f"e.site = ? AND e.id IN (SELECT id FROM series_terms WHERE term IN ({places}))"
    terms = tuple(f"00400275[{i}].00400009=SPS-1" for i in range(MAX_ITEMS))
    assert sql(Level.SERIES, ("RequestAttributesSequence.ScheduledProcedureStepID", "SPS-1")) == (
        SqlQuery(
            select=page_select(Level.SERIES, where),
            select_params=(SITE, *terms, 100, 0),
            count=f"SELECT COUNT(*) FROM series e WHERE {where}",
            count_params=(SITE, *terms),
        )
    )


def test_sequence_two_keys_same_item() -> None:
    term = "SELECT id FROM series_terms WHERE term = ?"
    item = f"SELECT id FROM (SELECT id FROM ({term}) INTERSECT SELECT id FROM ({term}))"
    where = f"e.site = ? AND e.id IN ({' UNION '.join([item] * MAX_ITEMS)})"
    terms = tuple(
        value
        for i in range(MAX_ITEMS)
        for value in (f"00400275[{i}].00400009=SPS-1", f"00400275[{i}].00401001=RP-2")
    )
    query = sql(
        Level.SERIES,
        ("RequestAttributesSequence.ScheduledProcedureStepID", "SPS-1"),
        ("RequestAttributesSequence.RequestedProcedureID", "RP-2"),
    )
    assert query == SqlQuery(
        select=page_select(Level.SERIES, where),
        select_params=(SITE, *terms, 100, 0),
        count=f"SELECT COUNT(*) FROM series e WHERE {where}",
        count_params=(SITE, *terms),
    )


def test_relational_series_query_with_patient_id() -> None:
    where = (
        "e.site = ? AND e.study_uid IN (SELECT p.study_uid FROM studies p WHERE p.site = ?"
        " AND p.id IN (SELECT id FROM study_terms WHERE term = ?))"
    )
    assert sql(Level.SERIES, ("PatientID", "PID-1")) == SqlQuery(
        select=page_select(Level.SERIES, where),
        select_params=(SITE, SITE, "00100020=PID-1", 100, 0),
        count=f"SELECT COUNT(*) FROM series e WHERE {where}",
        count_params=(SITE, SITE, "00100020=PID-1"),
    )


def test_series_of_one_study() -> None:
    where = (
        "e.site = ? AND e.study_uid = ? AND e.id IN (SELECT id FROM series_terms WHERE term = ?)"
    )
    assert sql(Level.SERIES, ("Modality", "CT"), study_uid="1.2.3") == SqlQuery(
        select=page_select(Level.SERIES, where),
        select_params=(SITE, "1.2.3", "00080060=CT", 100, 0),
        count=f"SELECT COUNT(*) FROM series e WHERE {where}",
        count_params=(SITE, "1.2.3", "00080060=CT"),
    )


def test_instances_within_study_and_series() -> None:
    where = (
        "e.site = ? AND e.study_uid = ? AND e.series_uid = ?"
        " AND e.id IN (SELECT id FROM instance_terms WHERE term = ?)"
    )
    query = sql(
        Level.INSTANCE,
        ("InstanceNumber", "2"),
        ("limit", "10"),
        ("offset", "20"),
        study_uid="1.2.3",
        series_uid="1.2.3.4",
    )
    assert query == SqlQuery(
        select=page_select(Level.INSTANCE, where),
        select_params=(SITE, "1.2.3", "1.2.3.4", "00200013=2", 10, 20),
        count=f"SELECT COUNT(*) FROM instances e WHERE {where}",
        count_params=(SITE, "1.2.3", "1.2.3.4", "00200013=2"),
    )


def test_relational_instance_query_with_study_and_series_keys() -> None:
    where = (
        "e.site = ?"
        " AND e.study_uid NOT IN (SELECT p.study_uid FROM studies p WHERE p.site = ?"
        " AND p.id IN (SELECT id FROM study_terms WHERE term BETWEEN ? AND ?))"
        " AND e.series_uid IN (SELECT p.series_uid FROM series p WHERE p.site = ?"
        " AND p.id IN (SELECT id FROM series_terms WHERE term = ?))"
    )
    params = (SITE, SITE, "00080050=", f"00080050={MAX_TERM}", SITE, "00080060=MR")
    assert sql(Level.INSTANCE, ("AccessionNumber", '""'), ("Modality", "MR")) == SqlQuery(
        select=page_select(Level.INSTANCE, where),
        select_params=(*params, 100, 0),
        count=f"SELECT COUNT(*) FROM instances e WHERE {where}",
        count_params=params,
    )


def test_glob_prefix() -> None:
    assert glob_prefix("00100010=doe^j*") == "00100010=doe^j"
    assert glob_prefix("00080050=A?C*") == "00080050=A"
    assert glob_prefix("00080050=*") == "00080050="
    assert glob_prefix("00080050=ABC") == "00080050=ABC"
