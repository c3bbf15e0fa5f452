"""The QIDO-RS query parser (``pacsflow.query.parse``), value normal forms and match terms.

Every accepted parameter form becomes the predicate the module docstrings describe; every
malformed or unsupported one is a ``BadRequest`` whose message names the parameter.
"""

from __future__ import annotations

import pytest

from pacsflow.errors import BadRequest
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
from pacsflow.query.terms import MAX_ITEMS, MAX_TERM, entity_terms, value_terms
from pacsflow.query.values import (
    fold,
    name_tokens,
    norm_da,
    norm_dt,
    norm_number,
    norm_pn,
    norm_tm,
)

STUDY, SERIES, INSTANCE = Level.STUDY, Level.SERIES, Level.INSTANCE


def conditions(level: Level, *parameters: tuple[str, str]) -> tuple[Condition, ...]:
    return parse_query(level, parameters).conditions


def predicate(level: Level, name: str, value: str, *extra: tuple[str, str]) -> object:
    """The predicate of the one condition a single matching parameter makes."""
    [condition] = conditions(level, (name, value), *extra)
    return condition.predicate


def items(make: object) -> Any_:
    """``Any_`` over the sequence items indexed, ``make(i)`` the predicate of item ``i``."""
    return Any_(tuple(make(i) for i in range(MAX_ITEMS)))  # type: ignore[operator]


# ---- parameter forms ----------------------------------------------------------------------


def test_no_parameters() -> None:
    assert parse_query(STUDY, []) == Query(level=STUDY)
    assert parse_query(SERIES, [], study_uid="1.2") == Query(level=SERIES, study_uid="1.2")
    scoped = parse_query(INSTANCE, [], study_uid="1.2", series_uid="1.2.3")
    assert (scoped.level, scoped.study_uid, scoped.series_uid) == (INSTANCE, "1.2", "1.2.3")


def test_keyword_and_tag_name_the_same_attribute() -> None:
    expected = (Condition(STUDY, "PatientID", Term("00100020=PID-1")),)
    assert conditions(STUDY, ("PatientID", "PID-1")) == expected
    by_tag = conditions(STUDY, ("00100020", "PID-1"))
    assert by_tag == (Condition(STUDY, "00100020", Term("00100020=PID-1")),)
    # a tag in lower case names the same attribute
    assert predicate(INSTANCE, "0008002a", "2024") == predicate(
        INSTANCE, "AcquisitionDateTime", "2024"
    )


def test_matching_keys_are_return_keys() -> None:
    query = parse_query(STUDY, [("PatientID", "X"), ("00100010", ""), ("StudyDate", "*")])
    assert query.return_tags == {"00100020", "00100010", "00080020"}
    # universal matching adds no condition (PS3.4 C.2.2.2.3)
    assert [c.parameter for c in query.conditions] == ["PatientID"]


def test_dotted_sequence_path() -> None:
    expected = items(lambda i: Term(f"00400275[{i}].00400009=SPS-1"))
    keyword = "RequestAttributesSequence.ScheduledProcedureStepID"
    assert predicate(SERIES, keyword, "SPS-1") == expected
    assert predicate(SERIES, "00400275.00400009", "SPS-1") == expected
    assert predicate(SERIES, "RequestAttributesSequence.00400009", "SPS-1") == expected
    query = parse_query(SERIES, [(keyword, "SPS-1")])
    assert query.return_tags == {"00400275"}
    assert query.conditions[0].parameter == keyword


def test_two_keys_of_one_sequence_match_in_the_same_item() -> None:
    query = parse_query(
        SERIES,
        [
            ("RequestAttributesSequence.ScheduledProcedureStepID", "SPS-1"),
            ("RequestAttributesSequence.RequestedProcedureID", "RP-*"),
        ],
    )
    [condition] = query.conditions
    assert condition.level is SERIES
    assert condition.parameter == (
        "RequestAttributesSequence.ScheduledProcedureStepID,"
        "RequestAttributesSequence.RequestedProcedureID"
    )
    assert condition.predicate == items(
        lambda i: All((Term(f"00400275[{i}].00400009=SPS-1"), Glob(f"00400275[{i}].00401001=RP-*")))
    )


def test_empty_value_inside_a_sequence_needs_the_item() -> None:
    key = "RequestAttributesSequence.ScheduledProcedureStepID"
    assert predicate(SERIES, key, '""') == items(
        lambda i: All(
            (
                Term(f"00400275[{i}]"),
                Not(Range(f"00400275[{i}].00400009=", f"00400275[{i}].00400009={MAX_TERM}")),
            )
        )
    )


def test_empty_value_of_a_sequence_means_no_item() -> None:
    assert predicate(SERIES, "RequestAttributesSequence", '""') == Not(
        Range("00400275[", f"00400275[{MAX_TERM}")
    )


def test_nested_sequence_path() -> None:
    nested = "RequestAttributesSequence.ScheduledProtocolCodeSequence.CodeValue"
    assert predicate(SERIES, nested, "P1") == items(
        lambda i: Any_(
            tuple(Term(f"00400275[{i}].00400008[{j}].00080100=P1") for j in range(MAX_ITEMS))
        )
    )


def test_universal_key_in_a_sequence_adds_no_condition() -> None:
    assert conditions(SERIES, ("RequestAttributesSequence.ScheduledProcedureStepID", "")) == ()
    assert conditions(SERIES, ("RequestAttributesSequence", "")) == ()


@pytest.mark.parametrize(
    ("values", "tags", "include_all"),
    [
        (["PatientAge"], {"00101010"}, False),
        (["PatientAge", "00081030"], {"00101010", "00081030"}, False),  # repeated
        (["PatientAge,StudyDescription"], {"00101010", "00081030"}, False),  # comma
        (["PatientAge, 00081030"], {"00101010", "00081030"}, False),  # comma and space
        (["all"], set(), True),
        (["all,PatientAge"], {"00101010"}, True),
        (["PatientAge", "all"], {"00101010"}, True),
        (["ProcedureCodeSequence.CodeValue"], {"00081032"}, False),
    ],
)
def test_includefield(values: list[str], tags: set[str], include_all: bool) -> None:
    query = parse_query(STUDY, [("includefield", v) for v in values])
    assert query.return_tags == tags
    assert query.include_all is include_all
    assert query.conditions == ()


@pytest.mark.parametrize(
    ("level", "asked", "returned"),
    [
        (STUDY, "Modality,SOPClassUID,SeriesDescription,StudyDescription", {"00081030"}),
        (SERIES, "Modality,SOPClassUID,StudyDescription", {"00080060", "00081030"}),
        (INSTANCE, "Modality,SOPClassUID,StudyDescription", {"00080060", "00080016", "00081030"}),
    ],
)
def test_includefield_of_a_lower_level_is_not_returned(
    level: Level, asked: str, returned: set[str]
) -> None:
    """PS3.18 10.6.3.3: a study result has no series or instance attribute, even if asked."""
    assert parse_query(level, [("includefield", asked)]).return_tags == returned


def test_includefield_and_matching_keys_together() -> None:
    query = parse_query(STUDY, [("includefield", "PatientAge"), ("PatientID", "X")])
    assert query.return_tags == {"00101010", "00100020"}


def test_fuzzymatching() -> None:
    assert parse_query(STUDY, [("fuzzymatching", "true")]).fuzzy is True
    assert parse_query(STUDY, [("fuzzymatching", "false")]).fuzzy is False
    assert parse_query(STUDY, []).fuzzy is False
    # literal: the whole name, case-insensitive
    assert predicate(STUDY, "PatientName", "Müller^Jürgen") == Term("00100010=müller^jürgen")
    literal = predicate(STUDY, "PatientName", "Müller^Jürgen", ("fuzzymatching", "false"))
    assert literal == Term("00100010=müller^jürgen")
    # fuzzy: every word is the prefix of a word of the name, accents ignored
    fuzzy = predicate(STUDY, "PatientName", "Müller^Jürgen", ("fuzzymatching", "true"))
    assert fuzzy == All((Glob("00100010~muller*"), Glob("00100010~jurgen*")))
    # wildcards stay in the word they are in
    assert predicate(STUDY, "PatientName", "Müller^J?rgen", ("fuzzymatching", "true")) == All(
        (Glob("00100010~muller*"), Glob("00100010~j?rgen*"))
    )
    assert predicate(STUDY, "PatientName", "Mül*", ("fuzzymatching", "true")) == All(
        (Glob("00100010~mul*"),)
    )
    # fuzzy matching concerns person names only
    other = predicate(STUDY, "PatientID", "Müller", ("fuzzymatching", "true"))
    assert other == Term("00100020=Müller")


def test_limit_and_offset() -> None:
    query = parse_query(STUDY, [("limit", "25"), ("offset", "50")])
    assert (query.limit, query.offset) == (25, 50)
    assert (parse_query(STUDY, []).limit, parse_query(STUDY, []).offset) == (100, 0)
    assert parse_query(STUDY, [], default_limit=10).limit == 10
    assert parse_query(STUDY, [("limit", "5000")], max_limit=1000).limit == 1000
    assert parse_query(STUDY, [("limit", "1"), ("offset", "0")]).limit == 1


# ---- values become predicates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "name", "value", "expected"),
    [
        # Single Value Matching: text as given, case-sensitive
        (STUDY, "AccessionNumber", "acc-1", Term("00080050=acc-1")),
        (SERIES, "Modality", "CT", Term("00080060=CT")),
        # PN: normal form (case folded, no trailing delimiters)
        (STUDY, "PatientName", "DOE^JOHN^^", Term("00100010=doe^john")),
        (STUDY, "PatientName", "Yamada^Tarou=山田^太郎=", Term("00100010=yamada^tarou=山田^太郎")),
        (STUDY, "PatientName", "ΟΔΥΣΣΕΥΣ", Term("00100010=οδυσσευσ")),
        # List of UID Matching: comma or backslash
        (STUDY, "StudyInstanceUID", "1.2.3", Term("0020000D=1.2.3")),
        (
            STUDY,
            "StudyInstanceUID",
            "1.2.3,1.2.4\\1.2.5",
            Terms(("0020000D=1.2.3", "0020000D=1.2.4", "0020000D=1.2.5")),
        ),
        # Wild Card Matching
        (STUDY, "AccessionNumber", "A*", Glob("00080050=A*")),
        (STUDY, "AccessionNumber", "A?C", Glob("00080050=A?C")),
        (STUDY, "PatientName", "DOE*", Glob("00100010=doe*")),
        # several values (backslash): any of them
        (SERIES, "Modality", "CT\\MR", Any_((Term("00080060=CT"), Term("00080060=MR")))),
        (SERIES, "Modality", "CT\\M*", Any_((Term("00080060=CT"), Glob("00080060=M*")))),
        # Empty Value Matching: no non-empty value
        (STUDY, "AccessionNumber", '""', Not(Range("00080050=", f"00080050={MAX_TERM}"))),
        (STUDY, "StudyDate", '""', Not(Range("00080020=", f"00080020={MAX_TERM}"))),
        # DA: single value, ranges (closed, open low, open high)
        (STUDY, "StudyDate", "20240101", Term("00080020=20240101")),
        (STUDY, "StudyDate", "20240101-20240131", Range("00080020=20240101", "00080020=20240131")),
        (STUDY, "StudyDate", "-20240131", Range("00080020=", "00080020=20240131")),
        (STUDY, "StudyDate", "20240101-", Range("00080020=20240101", f"00080020={MAX_TERM}")),
        # TM: reduced precision covers its interval, single or range
        (STUDY, "StudyTime", "10", Range("00080030=100000.000000", "00080030=105959.999999")),
        (
            STUDY,
            "StudyTime",
            "10-11",
            Range("00080030=100000.000000", "00080030=115959.999999"),
        ),
        (STUDY, "StudyTime", "-0930", Range("00080030=", "00080030=093059.999999")),
        (STUDY, "StudyTime", "101500.5-", Range("00080030=101500.500000", f"00080030={MAX_TERM}")),
        # DT: likewise; a UTC offset is not a range
        (
            INSTANCE,
            "AcquisitionDateTime",
            "202401",
            Range("0008002A=20240101000000.000000", "0008002A=20240131235959.999999"),
        ),
        (
            INSTANCE,
            "AcquisitionDateTime",
            "20240101120000-0500",
            Range("0008002A=20240101120000.000000", "0008002A=20240101120000.999999"),
        ),
        (
            INSTANCE,
            "AcquisitionDateTime",
            "2023-2024",  # a range of years, not 2023 at UTC offset -20:24
            Range("0008002A=20230101000000.000000", "0008002A=20241231235959.999999"),
        ),
        (
            INSTANCE,
            "AcquisitionDateTime",
            "20240101-20240102",
            Range("0008002A=20240101000000.000000", "0008002A=20240102235959.999999"),
        ),
        (
            INSTANCE,
            "AcquisitionDateTime",
            "20240101120000-0500-20240102",
            Range("0008002A=20240101120000.000000", "0008002A=20240102235959.999999"),
        ),
        # numbers: one text per value
        (SERIES, "SeriesNumber", "007", Term("00200011=7")),
        (STUDY, "PatientWeight", "72.50", Term("00101030=72.5")),
        (STUDY, "PatientWeight", "7.25e1", Term("00101030=72.5")),
        # derived attributes are matching keys
        (STUDY, "ModalitiesInStudy", "CT", Term("00080061=CT")),
    ],
)
def test_values(level: Level, name: str, value: str, expected: object) -> None:
    assert predicate(level, name, value) == expected


def test_relational_keys_keep_their_level() -> None:
    query = parse_query(INSTANCE, [("PatientID", "P"), ("Modality", "CT"), ("InstanceNumber", "1")])
    assert [(c.level, c.predicate) for c in query.conditions] == [
        (STUDY, Term("00100020=P")),
        (SERIES, Term("00080060=CT")),
        (INSTANCE, Term("00200013=1")),
    ]


def test_combined_date_and_time_range() -> None:
    [condition] = conditions(STUDY, ("StudyDate", "20240101-20240103"), ("StudyTime", "1000-1800"))
    assert condition == Condition(
        STUDY,
        "StudyDate&StudyTime",
        Range("00080020+00080030=20240101100000.000000", "00080020+00080030=20240103180059.999999"),
    )
    [open_ends] = conditions(STUDY, ("StudyDate", "20240102-"), ("StudyTime", "-1000"))
    assert open_ends.predicate == Range(
        "00080020+00080030=20240102000000.000000", f"00080020+00080030={MAX_TERM}"
    )
    [single_date] = conditions(STUDY, ("StudyDate", "20240103"), ("StudyTime", "-12"))
    assert single_date.predicate == Range(
        "00080020+00080030=20240103000000.000000", "00080020+00080030=20240103125959.999999"
    )


def test_date_and_time_without_a_range_match_separately() -> None:
    assert conditions(STUDY, ("StudyDate", "20240101"), ("StudyTime", "10")) == (
        Condition(STUDY, "StudyDate", Term("00080020=20240101")),
        Condition(STUDY, "StudyTime", Range("00080030=100000.000000", "00080030=105959.999999")),
    )
    # Empty Value Matching on one of the pair: each key on its own
    assert conditions(STUDY, ("StudyDate", '""'), ("StudyTime", "10-11")) == (
        Condition(STUDY, "StudyDate", Not(Range("00080020=", f"00080020={MAX_TERM}"))),
        Condition(STUDY, "StudyTime", Range("00080030=100000.000000", "00080030=115959.999999")),
    )
    # universal time: the date range alone
    assert conditions(STUDY, ("StudyDate", "20240101-"), ("StudyTime", "")) == (
        Condition(STUDY, "StudyDate", Range("00080020=20240101", f"00080020={MAX_TERM}")),
    )


# ---- errors: BadRequest naming the parameter -----------------------------------------------


@pytest.mark.parametrize(
    ("level", "parameters", "named"),
    [
        # unknown attribute (keyword, tag, in a path)
        (STUDY, [("PatientNme", "X")], "PatientNme"),
        (STUDY, [("99991234", "X")], "99991234"),
        (SERIES, [("RequestAttributesSequence.Foo", "X")], "RequestAttributesSequence.Foo"),
        # a '.' after an attribute that is not a sequence
        (STUDY, [("PatientID.PatientName", "X")], "PatientID.PatientName"),
        # an attribute of a lower level
        (STUDY, [("Modality", "CT")], "Modality"),
        (SERIES, [("SOPInstanceUID", "1.2")], "SOPInstanceUID"),
        (
            STUDY,
            [("RequestAttributesSequence.ScheduledProcedureStepID", "X")],
            "RequestAttributesSequence.ScheduledProcedureStepID",
        ),
        # not a matching key
        (STUDY, [("NumberOfStudyRelatedInstances", "3")], "NumberOfStudyRelatedInstances"),
        (STUDY, [("SpecificCharacterSet", "ISO_IR 192")], "SpecificCharacterSet"),
        (INSTANCE, [("Rows", "512")], "Rows"),
        # a sequence matched by value
        (SERIES, [("RequestAttributesSequence", "X")], "RequestAttributesSequence"),
        # malformed DA, TM, DT and ranges
        (STUDY, [("StudyDate", "2024-01-01")], "StudyDate"),
        (STUDY, [("StudyDate", "20241301")], "StudyDate"),
        (STUDY, [("StudyDate", "20240132")], "StudyDate"),
        (STUDY, [("StudyDate", "2024")], "StudyDate"),
        (STUDY, [("StudyDate", "-")], "StudyDate"),
        (STUDY, [("StudyDate", "20240101-2024013")], "StudyDate"),
        (STUDY, [("StudyDate", "20240101-20240102-20240103")], "StudyDate"),
        (STUDY, [("StudyTime", "25")], "StudyTime"),
        (STUDY, [("StudyTime", "1060")], "StudyTime"),
        (STUDY, [("StudyTime", "10:00")], "StudyTime"),
        (STUDY, [("StudyTime", "10-25")], "StudyTime"),
        (INSTANCE, [("AcquisitionDateTime", "2024x")], "AcquisitionDateTime"),
        (INSTANCE, [("AcquisitionDateTime", "20241301")], "AcquisitionDateTime"),
        (STUDY, [("StudyDate", "2024*"), ("StudyTime", "10-11")], "StudyDate"),
        (STUDY, [("StudyDate", "20240101-"), ("StudyTime", "xx")], "StudyTime"),
        # wildcards where the VR has none (C.2.2.2.4)
        (STUDY, [("StudyDate", "2024*")], "StudyDate"),
        (STUDY, [("StudyTime", "10?")], "StudyTime"),
        (INSTANCE, [("AcquisitionDateTime", "2024*")], "AcquisitionDateTime"),
        (STUDY, [("StudyInstanceUID", "1.2.*")], "StudyInstanceUID"),
        (SERIES, [("SeriesNumber", "1*")], "SeriesNumber"),
        # bad UIDs
        (STUDY, [("StudyInstanceUID", "1.2.abc")], "StudyInstanceUID"),
        (STUDY, [("StudyInstanceUID", "1..2")], "StudyInstanceUID"),
        (STUDY, [("StudyInstanceUID", "1.2,")], "StudyInstanceUID"),
        # bad numbers
        (SERIES, [("SeriesNumber", "abc")], "SeriesNumber"),
        (STUDY, [("PatientWeight", "72,5")], "PatientWeight"),
        (SERIES, [("SeriesNumber", "nan")], "SeriesNumber"),
        # limit and offset
        (STUDY, [("limit", "0")], "limit"),
        (STUDY, [("limit", "-1")], "limit"),
        (STUDY, [("limit", "ten")], "limit"),
        (STUDY, [("limit", "1.5")], "limit"),
        (STUDY, [("limit", "")], "limit"),
        (STUDY, [("offset", "-1")], "offset"),
        (STUDY, [("offset", "x")], "offset"),
        # fuzzymatching
        (STUDY, [("fuzzymatching", "maybe")], "fuzzymatching"),
        (STUDY, [("fuzzymatching", "")], "fuzzymatching"),
        # repeated parameters
        (STUDY, [("PatientID", "A"), ("PatientID", "B")], "PatientID"),
        (STUDY, [("PatientID", "A"), ("00100020", "B")], "00100020"),
        (STUDY, [("limit", "1"), ("limit", "2")], "limit"),
        (STUDY, [("offset", "1"), ("offset", "2")], "offset"),
        (STUDY, [("fuzzymatching", "true"), ("fuzzymatching", "true")], "fuzzymatching"),
        # includefield
        (STUDY, [("includefield", "PatientAge,,StudyDate")], "includefield"),
        (STUDY, [("includefield", "")], "includefield"),
        (STUDY, [("includefield", "NoSuchAttribute")], "includefield"),
    ],
)
def test_bad_request_names_the_parameter(
    level: Level, parameters: list[tuple[str, str]], named: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_query(level, parameters)
    assert f"'{named}'" in str(raised.value)


# ---- normal forms (pacsflow.query.values) --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("10", "100000.000000", "105959.999999"),
        ("1030", "103000.000000", "103059.999999"),
        ("103015", "103015.000000", "103015.999999"),
        ("103015.5", "103015.500000", "103015.599999"),
        ("103015.123456", "103015.123456", "103015.123456"),
        (" 0930 ", "093000.000000", "093059.999999"),
        ("235960", "235960.000000", "235960.999999"),  # leap second
        ("24", None, None),
        ("1060", None, None),
        ("10:30", None, None),
        ("1", None, None),
        ("", None, None),
    ],
)
def test_norm_tm(value: str, low: str | None, high: str | None) -> None:
    assert (norm_tm(value), norm_tm(value, high=True)) == (low, high)


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2024", "20240101000000.000000", "20241231235959.999999"),
        ("202402", "20240201000000.000000", "20240231235959.999999"),  # an upper bound
        ("20240229", "20240229000000.000000", "20240229235959.999999"),
        ("2024022910", "20240229100000.000000", "20240229105959.999999"),
        ("20240229103015.25", "20240229103015.250000", "20240229103015.259999"),
        ("20240101120000+0100", "20240101120000.000000", "20240101120000.999999"),
        ("20240101120000-0500", "20240101120000.000000", "20240101120000.999999"),
        ("2024131", None, None),
        ("20241301", None, None),
        ("2024-01", None, None),
        ("", None, None),
    ],
)
def test_norm_dt(value: str, low: str | None, high: str | None) -> None:
    assert (norm_dt(value), norm_dt(value, high=True)) == (low, high)


def test_norm_da() -> None:
    assert norm_da("20240229") == "20240229"
    assert norm_da(" 20240229 ") == "20240229"
    assert [norm_da(v) for v in ("2024-02-29", "20241301", "20240100", "240229", "")] == [None] * 5


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        (5, "5"),
        ("5", "5"),
        ("05", "5"),
        (" 5 ", "5"),
        ("5.0", "5"),
        (5.0, "5"),
        ("+5", "5"),
        ("-0", "0"),
        ("-12", "-12"),
        ("72.50", "72.5"),
        ("7.25E1", "72.5"),
        (0.1, "0.1"),
        ("1e20", "100000000000000000000"),
        ("abc", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        ("-Infinity", None),
    ],
)
def test_norm_number(value: object, normal: str | None) -> None:
    assert norm_number(value) == normal


def test_norm_pn() -> None:
    assert norm_pn("DOE^JOHN^^") == "doe^john"
    assert norm_pn("Doe^John^^=^=") == "doe^john"
    assert norm_pn("Yamada^Tarou=山田^太郎=やまだ^たろう") == "yamada^tarou=山田^太郎=やまだ^たろう"
    assert norm_pn("=山田^太郎") == "=山田^太郎"
    assert norm_pn("Straße") == "strasse"
    assert norm_pn("ΣΊΣΥΦΟΣ") == "σίσυφοσ"  # casefold: final sigma too


def test_fold() -> None:
    assert fold("Müller") == "muller"
    assert fold("JÜRGEN") == "jurgen"
    assert fold("Γιώργος") == "γιωργοσ"
    assert fold("\uff39\uff41\uff4d\uff41\uff44\uff41") == "yamada"  # full width (NFKD)
    # NFKD splits the voiced sound mark off kana as a combining mark, which is dropped
    assert fold("やまだ") == "やまた"
    assert fold("Straße") == "strasse"
    assert fold("山田") == "山田"
    assert fold("Łukasz Øster") == "łukasz øster"  # no decomposition: kept as they are


def test_name_tokens() -> None:
    assert name_tokens("Yamada^Tarou=山田^太郎=やまだ^たろう") == [
        "yamada",
        "tarou",
        "山田",
        "太郎",
        "やまた",  # folded: the voiced sound mark of だ is dropped (see test_fold)
        "たろう",
    ]
    assert name_tokens("van der Berg^Jan^^Dr.^Jr.") == ["van", "der", "berg", "jan", "dr.", "jr."]
    assert name_tokens("O'Brien^Mary") == ["o'brien", "mary"]
    assert name_tokens("Müller, Jürgen") == ["muller", "jurgen"]
    assert name_tokens("^^=") == []
    assert name_tokens("") == []


# ---- match terms (pacsflow.query.terms) ----------------------------------------------------


def test_entity_terms_of_a_study() -> None:
    attributes = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},  # not a matching key
        "00080020": {"vr": "DA", "Value": ["20240101"]},
        "00080030": {"vr": "TM", "Value": ["0930"]},
        "00080050": {"vr": "SH", "Value": [""]},  # empty: no term
        "00080060": {"vr": "CS", "Value": ["CT"]},  # series level: not a study term
        "00080061": {"vr": "CS", "Value": ["CT", "MR"]},  # derived, matchable
        "00081030": {"vr": "LO"},  # no value: no term
        "00100010": {
            "vr": "PN",
            "Value": [
                {
                    "Alphabetic": "Yamada^Tarou",
                    "Ideographic": "山田^太郎",
                    "Phonetic": "やまだ^たろう",
                }
            ],
        },
        "00100020": {"vr": "LO", "Value": [" PID-1 "]},
        "00101030": {"vr": "DS", "Value": [72.50]},
        "00201208": {"vr": "IS", "Value": [3]},  # derived, not a matching key
        "7FE00010": {"vr": "OB", "InlineBinary": "AA=="},
    }
    assert entity_terms(attributes, STUDY) == sorted(
        [
            "00080020+00080030=20240101093000.000000",
            "00080020=20240101",
            "00080030=093000.000000",
            "00080061=CT",
            "00080061=MR",
            "00100010=yamada^tarou=山田^太郎=やまだ^たろう",
            "00100010=yamada^tarou",
            "00100010=山田^太郎",
            "00100010=やまだ^たろう",
            "00100010~yamada",
            "00100010~tarou",
            "00100010~山田",
            "00100010~太郎",
            "00100010~やまた",  # folded (see test_fold)
            "00100010~たろう",
            "00100020=PID-1",
            "00101030=72.5",
        ]
    )


def test_entity_terms_of_a_series_with_sequences() -> None:
    attributes = {
        "00080021": {"vr": "DA", "Value": ["20240101"]},  # SeriesDate without SeriesTime
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00100020": {"vr": "LO", "Value": ["PID-1"]},  # study level
        "00200011": {"vr": "IS", "Value": ["02"]},
        "00400275": {
            "vr": "SQ",
            "Value": [
                {
                    "00400009": {"vr": "SH", "Value": ["A"]},
                    "00401001": {"vr": "SH", "Value": ["B"]},
                    "00400008": {
                        "vr": "SQ",
                        "Value": [{"00080100": {"vr": "SH", "Value": ["P1"]}}],
                    },
                },
                {"00400009": {"vr": "SH", "Value": ["C"]}, "00401001": {"vr": "SH"}},
            ],
        },
    }
    assert entity_terms(attributes, SERIES) == sorted(
        [
            "00080021+00080031=20240101000000.000000",
            "00080021=20240101",
            "00080060=CT",
            "00200011=2",
            "00400275[0]",  # the item exists
            "00400275[0].00400008[0]",
            "00400275[0].00400008[0].00080100=P1",
            "00400275[0].00400009=A",
            "00400275[0].00401001=B",
            "00400275[1]",
            "00400275[1].00400009=C",
        ]
    )


def test_entity_terms_of_an_instance() -> None:
    attributes = {
        "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3"]},
        "00080023": {"vr": "DA", "Value": ["20240102"]},
        "0008002A": {"vr": "DT", "Value": ["20240101120000+0100"]},
        "00080033": {"vr": "TM", "Value": ["1200"]},
        "00200013": {"vr": "IS", "Value": [1]},
        "00280010": {"vr": "US", "Value": [512]},  # a return key only at the instance level
        "00420010": {"vr": "ST", "Value": ["x" * 300]},  # indexed by its first 256 characters
    }
    assert entity_terms(attributes, INSTANCE) == sorted(
        [
            "00080008=ORIGINAL",
            "00080008=PRIMARY",
            "00080018=1.2.3",
            "00080023+00080033=20240102120000.000000",
            "00080023=20240102",
            "00080033=120000.000000",
            "0008002A=20240101120000.000000",
            "00200013=1",
            "00420010=" + "x" * 256,
        ]
    )


def test_value_terms() -> None:
    assert list(value_terms("00080020", "DA", ["2024-01-01"])) == ["00080020=2024-01-01"]
    assert list(value_terms("00080020", "DA", [None, ""])) == []
    assert list(value_terms("00200013", "IS", ["x", 3])) == ["00200013=3"]
    assert list(value_terms("00100010", "PN", [{}])) == []
    assert list(value_terms("00100010", "PN", [{"Ideographic": "山田"}])) == [
        "00100010==山田",
        "00100010=山田",
        "00100010~山田",
    ]


def test_only_the_first_items_of_a_sequence_are_indexed() -> None:
    sequence = [{"00400009": {"vr": "SH", "Value": [f"S{i}"]}} for i in range(MAX_ITEMS + 2)]
    terms = entity_terms({"00400275": {"vr": "SQ", "Value": sequence}}, SERIES)
    expected = [f"00400275[{i}].00400009=S{i}" for i in range(MAX_ITEMS)]
    assert terms == sorted(expected + [f"00400275[{i}]" for i in range(MAX_ITEMS)])
