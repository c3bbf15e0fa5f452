"""Golden tests of the Elasticsearch query translator (``pacsflow.query.es``).

Queries come from ``parse_query`` as a request would; the expected DSL is written out in full.
"""

from __future__ import annotations

from typing import Any

import pytest

from pacsflow.query.es import (
    MAX_PARENT_UIDS,
    level_query,
    parent_levels,
    parent_query,
    predicate_query,
    search_body,
    sort,
)
from pacsflow.query.model import (
    All,
    Any_,
    Condition,
    Glob,
    Level,
    Not,
    Query,
    Range,
    Term,
    Terms,
)
from pacsflow.query.parse import parse_query

JsonDict = dict[str, Any]

SITE = {"term": {"site": "default"}}
MAX = "\U0010ffff"
CT = "1.2.840.10008.5.1.4.1.1.2"


def studies(*parameters: tuple[str, str]) -> Query:
    return parse_query(Level.STUDY, list(parameters))


def page(
    query: JsonDict, *, sort_field: str = "study_uid", offset: int = 0, size: int = 100
) -> JsonDict:
    """A search body with the default paging."""
    return {
        "query": query,
        "sort": [{sort_field: "asc"}],
        "from": offset,
        "size": size,
        "track_total_hits": True,
    }


def test_no_matching_key_is_the_site_in_uid_order() -> None:
    assert search_body("default", studies()) == page({"bool": {"filter": [SITE]}})


def test_wildcard_person_name_is_a_wildcard_query_on_the_folded_name() -> None:
    assert search_body("default", studies(("PatientName", "Doe^J*"))) == page(
        {"bool": {"filter": [SITE, {"wildcard": {"terms": {"value": "00100010=doe^j*"}}}]}}
    )


def test_single_character_wildcard_and_brackets_stay_literal() -> None:
    query = studies(("StudyDescription", "CT [A]?B=1^ü*"))
    assert level_query("default", query) == {
        "bool": {"filter": [SITE, {"wildcard": {"terms": {"value": "00081030=CT [A]?B=1^ü*"}}}]}
    }


def test_person_name_without_wildcard_is_a_term() -> None:
    assert level_query("default", studies(("PatientName", "DOE^JOHN^^"))) == {
        "bool": {"filter": [SITE, {"term": {"terms": "00100010=doe^john"}}]}
    }


def test_fuzzy_person_name_matches_every_word_as_a_prefix() -> None:
    query = studies(("PatientName", "Müller Jür"), ("fuzzymatching", "true"))
    assert level_query("default", query) == {
        "bool": {
            "filter": [
                SITE,
                {
                    "bool": {
                        "filter": [
                            {"wildcard": {"terms": {"value": "00100010~muller*"}}},
                            {"wildcard": {"terms": {"value": "00100010~jur*"}}},
                        ]
                    }
                },
            ]
        }
    }


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("20240101-20241231", "00080020=20240101", "00080020=20241231"),
        ("20240101-", "00080020=20240101", f"00080020={MAX}"),
        ("-20240101", "00080020=", "00080020=20240101"),
    ],
)
def test_date_range_is_a_keyword_range(value: str, low: str, high: str) -> None:
    assert level_query("default", studies(("StudyDate", value))) == {
        "bool": {"filter": [SITE, {"range": {"terms": {"gte": low, "lte": high}}}]}
    }


def test_single_date_is_a_term() -> None:
    assert level_query("default", studies(("StudyDate", "20240102"))) == {
        "bool": {"filter": [SITE, {"term": {"terms": "00080020=20240102"}}]}
    }


def test_time_of_reduced_precision_is_the_range_it_covers() -> None:
    assert level_query("default", studies(("StudyTime", "10"))) == {
        "bool": {
            "filter": [
                SITE,
                {
                    "range": {
                        "terms": {"gte": "00080030=100000.000000", "lte": "00080030=105959.999999"}
                    }
                },
            ]
        }
    }


def test_combined_date_time_range_uses_the_date_time_terms() -> None:
    query = studies(("StudyDate", "20240101-20241231"), ("StudyTime", "0800-1200"))
    assert level_query("default", query) == {
        "bool": {
            "filter": [
                SITE,
                {
                    "range": {
                        "terms": {
                            "gte": "00080020+00080030=20240101080000.000000",
                            "lte": "00080020+00080030=20241231120059.999999",
                        }
                    }
                },
            ]
        }
    }


def test_uid_list_is_a_terms_query() -> None:
    assert level_query("default", studies(("StudyInstanceUID", "1.2.3,1.2.4\\1.2.5"))) == {
        "bool": {
            "filter": [
                SITE,
                {"terms": {"terms": ["0020000D=1.2.3", "0020000D=1.2.4", "0020000D=1.2.5"]}},
            ]
        }
    }


def test_list_of_values_of_a_derived_attribute_is_one_terms_query() -> None:
    assert level_query("default", studies(("ModalitiesInStudy", "CT\\MR"))) == {
        "bool": {"filter": [SITE, {"terms": {"terms": ["00080061=CT", "00080061=MR"]}}]}
    }


def test_values_with_and_without_wildcards_are_a_should() -> None:
    assert level_query("default", studies(("StudyDescription", "HEAD\\CHEST*"))) == {
        "bool": {
            "filter": [
                SITE,
                {
                    "bool": {
                        "should": [
                            {"term": {"terms": "00081030=HEAD"}},
                            {"wildcard": {"terms": {"value": "00081030=CHEST*"}}},
                        ],
                        "minimum_should_match": 1,
                    }
                },
            ]
        }
    }


def test_empty_value_matching_excludes_entities_with_a_value() -> None:
    assert level_query("default", studies(("AccessionNumber", '""'))) == {
        "bool": {
            "filter": [SITE],
            "must_not": [{"range": {"terms": {"gte": "00080050=", "lte": f"00080050={MAX}"}}}],
        }
    }


def test_universal_matching_adds_no_condition() -> None:
    query = studies(("PatientName", "*"), ("AccessionNumber", ""))
    assert level_query("default", query) == {"bool": {"filter": [SITE]}}


def test_sequence_matching_needs_one_item_matching_every_key() -> None:
    query = studies(
        ("ProcedureCodeSequence.CodeValue", "P1"),
        ("ProcedureCodeSequence.CodingSchemeDesignator", "L*"),
    )
    items = [
        {
            "bool": {
                "filter": [
                    {"term": {"terms": f"00081032[{i}].00080100=P1"}},
                    {"wildcard": {"terms": {"value": f"00081032[{i}].00080102=L*"}}},
                ]
            }
        }
        for i in range(8)
    ]
    assert level_query("default", query) == {
        "bool": {"filter": [SITE, {"bool": {"should": items, "minimum_should_match": 1}}]}
    }


def test_relational_series_query_selects_the_studies_first() -> None:
    query = parse_query(Level.SERIES, [("PatientID", "PID-1"), ("Modality", "CT")])
    [patient, modality] = query.conditions

    assert parent_levels(query) == (Level.STUDY,)
    assert parent_query("default", Level.STUDY, [patient]) == {
        "bool": {"filter": [SITE, {"term": {"terms": "00100020=PID-1"}}]}
    }
    assert sort(Level.STUDY) == [{"study_uid": "asc"}]
    assert search_body("default", query, {Level.STUDY: ["1.2.9", "1.2.3"]}) == page(
        {
            "bool": {
                "filter": [
                    SITE,
                    {"terms": {"study_uid": ["1.2.3", "1.2.9"]}},
                    {"term": {"terms": "00080060=CT"}},
                ]
            }
        },
        sort_field="series_uid",
    )
    assert modality.level is Level.SERIES


def test_relational_instance_query_within_a_study_scopes_its_parent_queries() -> None:
    query = parse_query(
        Level.INSTANCE,
        [("PatientName", '""'), ("SeriesDescription", "AX*"), ("InstanceNumber", "1")],
        study_uid="1.2.3",
    )
    study, series, _ = query.conditions
    scope = {"term": {"study_uid": "1.2.3"}}

    assert parent_levels(query) == (Level.STUDY, Level.SERIES)
    assert parent_query("default", Level.STUDY, [study], study_uid="1.2.3") == {
        "bool": {
            "filter": [SITE, scope],
            "must_not": [{"range": {"terms": {"gte": "00100010=", "lte": f"00100010={MAX}"}}}],
        }
    }
    assert parent_query("default", Level.SERIES, [series], study_uid="1.2.3") == {
        "bool": {"filter": [SITE, scope, {"wildcard": {"terms": {"value": "0008103E=AX*"}}}]}
    }
    parents = {Level.STUDY: ["1.2.3"], Level.SERIES: ["1.2.3.2", "1.2.3.1"]}
    assert search_body("default", query, parents) == page(
        {
            "bool": {
                "filter": [
                    SITE,
                    scope,
                    {"terms": {"study_uid": ["1.2.3"]}},
                    {"terms": {"series_uid": ["1.2.3.1", "1.2.3.2"]}},
                    {"term": {"terms": "00200013=1"}},
                ]
            }
        },
        sort_field="sop_uid",
    )


def test_instance_query_within_a_study_and_series() -> None:
    query = parse_query(
        Level.INSTANCE, [("SOPClassUID", CT)], study_uid="1.2.3", series_uid="1.2.3.4"
    )
    assert parent_levels(query) == ()
    assert search_body("default", query) == page(
        {
            "bool": {
                "filter": [
                    SITE,
                    {"term": {"study_uid": "1.2.3"}},
                    {"term": {"series_uid": "1.2.3.4"}},
                    {"term": {"terms": f"00080016={CT}"}},
                ]
            }
        },
        sort_field="sop_uid",
    )


def test_series_of_a_study_scope_only() -> None:
    query = parse_query(Level.SERIES, [], study_uid="1.2.3")
    assert level_query("site-2", query) == {
        "bool": {"filter": [{"term": {"site": "site-2"}}, {"term": {"study_uid": "1.2.3"}}]}
    }


def test_limit_and_offset_are_from_and_size() -> None:
    query = studies(("limit", "10"), ("offset", "20"))
    assert search_body("default", query) == page({"bool": {"filter": [SITE]}}, offset=20, size=10)


def test_wildcard_escapes_backslashes_of_the_literal_parts() -> None:
    assert predicate_query(Glob("00081030=a\\b*c?")) == {
        "wildcard": {"terms": {"value": "00081030=a\\\\b*c?"}}
    }


def test_predicates_compose() -> None:
    predicate = Not(All((Terms(("a=1", "a=2")), Any_((Range("b=1", "b=2"), Glob("c=*"))))))
    assert predicate_query(predicate) == {
        "bool": {
            "must_not": [
                {
                    "bool": {
                        "filter": [
                            {"terms": {"terms": ["a=1", "a=2"]}},
                            {
                                "bool": {
                                    "should": [
                                        {"range": {"terms": {"gte": "b=1", "lte": "b=2"}}},
                                        {"wildcard": {"terms": {"value": "c=*"}}},
                                    ],
                                    "minimum_should_match": 1,
                                }
                            },
                        ]
                    }
                }
            ]
        }
    }
    assert predicate_query(Any_((Term("a=1"),))) == {"term": {"terms": "a=1"}}


def test_missing_parent_uids_and_misplaced_conditions_are_errors() -> None:
    query = parse_query(Level.SERIES, [("PatientID", "PID-1")])
    with pytest.raises(ValueError, match="UIDs"):
        level_query("default", query)
    with pytest.raises(ValueError, match="series-level condition"):
        parent_query("default", Level.STUDY, [Condition(Level.SERIES, "Modality", Term("x"))])
    instance = Condition(Level.INSTANCE, "SOPClassUID", Term("x"))
    with pytest.raises(ValueError, match="instance-level condition"):
        level_query("default", Query(Level.STUDY, conditions=(instance,)))


def test_parent_cap_is_the_default_max_terms_count() -> None:
    assert MAX_PARENT_UIDS == 65_536
