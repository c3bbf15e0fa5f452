"""QIDO-RS matching (PS3.4 C.2.2.2, PS3.18 10.6) as pacsflow implements it, on every index adapter.

One hand-built corpus is indexed once per adapter (module scope) under a site no other test
uses, next to a second site whose entries would match most queries if sites leaked. Each case
is (level, query parameters, the UIDs that must match); the query goes through the real path,
``pacsflow.query.parse.parse_query`` → the adapter's translator → the index. The expected UIDs
come from the matching rules, worked out by hand from the corpus below; they are never
captured from a run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import pytest
import pytest_asyncio
from pydicom.datadict import tag_for_keyword

from pacsflow.dicom.dictionary import dictionary_vr
from pacsflow.ports.index import Index, InstanceDocument
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from tests.support.indexes import INDEX_FACTORIES

pytestmark = pytest.mark.asyncio(loop_scope="module")

JsonDict = dict[str, Any]

SITE = f"query-{uuid.uuid4().hex}"
OTHER_SITE = f"query-other-{uuid.uuid4().hex}"

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SR = "1.2.840.10008.5.1.4.1.1.88.33"
US = "1.2.840.10008.5.1.4.1.1.6.1"
SC = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def _pn(name: str) -> JsonDict:
    """A PN value from ``Alphabetic=Ideographic=Phonetic`` (empty groups left out)."""
    groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), name.split("="), strict=False))
    return {group: text for group, text in groups.items() if text}


def ds(**keywords: Any) -> JsonDict:
    """DICOM JSON from keywords; ``None`` is an attribute without a value, a list is its values."""
    attributes: JsonDict = {}
    for keyword, given in keywords.items():
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        vr = dictionary_vr(tag)
        element: JsonDict = {"vr": vr}
        if given is not None:
            values = given if isinstance(given, list) else [given]
            element["Value"] = [_pn(v) for v in values] if vr == "PN" else values
        attributes[f"{tag:08X}"] = element
    return attributes


# ---- the corpus of SITE: 8 studies, 10 series, 12 instances --------------------------------

YAMADA, MUELLER, OBRIEN, GREEK = "1.2.40.1", "1.2.40.2", "1.2.40.3", "1.2.40.4"
IVANOV, DOE_JOHN, DOE_JANE, ANON = "1.2.40.5", "1.2.40.6", "1.2.40.7", "1.2.40.8"
Y1, Y2, M1, O1, O2 = f"{YAMADA}.1", f"{YAMADA}.2", f"{MUELLER}.1", f"{OBRIEN}.1", f"{OBRIEN}.2"
G1, I1, J1, N1, A1 = f"{GREEK}.1", f"{IVANOV}.1", f"{DOE_JOHN}.1", f"{DOE_JANE}.1", f"{ANON}.1"
Y1_1, Y1_2, Y2_1, M1_1, M1_2 = f"{Y1}.1", f"{Y1}.2", f"{Y2}.1", f"{M1}.1", f"{M1}.2"
O1_1, O2_1, G1_1, I1_1 = f"{O1}.1", f"{O2}.1", f"{G1}.1", f"{I1}.1"
J1_1, N1_1, A1_1 = f"{J1}.1", f"{N1}.1", f"{A1}.1"

STUDIES: dict[str, JsonDict] = {
    YAMADA: ds(
        PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう",
        PatientID="PID-YAMADA",
        PatientBirthDate="19700101",
        PatientWeight=72.5,
        StudyDate="20240101",
        StudyTime="090000",
        AccessionNumber="ACC-001",
        StudyDescription="CT Chest",
        ReferringPhysicianName="Suzuki^Ichiro",
    ),
    MUELLER: ds(
        PatientName="Müller^Jürgen",
        PatientID="PID-MUELLER",
        PatientWeight=80,
        StudyDate="20240101",
        StudyTime="110000",
        AccessionNumber="acc-002",
        StudyDescription="MR Knee",
    ),
    OBRIEN: ds(
        PatientName="O'Brien^Mary",
        PatientID="PID-OBRIEN",
        StudyDate="20240102",
        StudyTime="080000",
        AccessionNumber="ACC-003",
        StudyDescription=None,  # present, empty
    ),
    GREEK: ds(
        PatientName="Παπαδόπουλος^Γιώργος",
        PatientID="PID-GREEK",
        StudyDate="20240102",
        StudyTime="200000",
        StudyDescription="CT Abdomen",
    ),  # no AccessionNumber
    IVANOV: ds(
        PatientName="Иванов^Иван",
        PatientID="PID-IVANOV",
        StudyDate="20240103",
        StudyTime="070000",
        AccessionNumber="ACC-005",
        StudyDescription="MR Brain",
    ),
    DOE_JOHN: ds(
        PatientName="Doe^John",
        PatientID="PID-DOE",
        StudyDate="20240103",
        StudyTime="190000",
        AccessionNumber="ACC-006",
        StudyDescription="ct chest",
    ),
    DOE_JANE: ds(
        PatientName="DOE^JANE^^",  # trailing empty components
        PatientID="PID-JANE",
        StudyDate="20231231",
        StudyTime="235959.5",
        AccessionNumber=None,  # present, empty
    ),
    ANON: ds(PatientID="PID-ANON", StudyTime="1030"),  # no name, no date, reduced-precision time
}

SERIES: dict[str, tuple[str, JsonDict]] = {
    Y1: (
        YAMADA,
        ds(
            Modality="CT",
            SeriesNumber=1,
            SeriesTime="095959.999999",
            RequestAttributesSequence=[
                ds(
                    ScheduledProcedureStepID="SPS-1",
                    RequestedProcedureID="RP-1",
                    ScheduledProtocolCodeSequence=[ds(CodeValue="P1"), ds(CodeValue="P2")],
                ),
                ds(ScheduledProcedureStepID="SPS-2", RequestedProcedureID="RP-2"),
            ],
        ),
    ),
    Y2: (YAMADA, ds(Modality="SR", SeriesNumber=2, SeriesTime="100000")),
    M1: (
        MUELLER,
        ds(
            Modality="MR",
            SeriesNumber=1,
            SeriesTime="115959.999999",
            RequestAttributesSequence=[
                ds(ScheduledProcedureStepID="SPS-1", RequestedProcedureID="RP-2")
            ],
        ),
    ),
    O1: (
        OBRIEN,
        ds(
            Modality="CT",
            SeriesNumber=1,
            SeriesTime="120000",
            RequestAttributesSequence=[ds(RequestedProcedureID="RP-9")],  # no SPS ID
        ),
    ),
    O2: (OBRIEN, ds(Modality="MR", SeriesNumber="2", SeriesTime="1130")),  # IS as a string
    G1: (
        GREEK,
        ds(
            Modality="CT",
            SeriesNumber=101,
            RequestAttributesSequence=[
                ds(ScheduledProcedureStepID=None, RequestedProcedureID="RP-4")  # empty SPS ID
            ],
        ),
    ),
    I1: (IVANOV, ds(Modality="MR", SeriesNumber=1)),
    J1: (DOE_JOHN, ds(Modality="CT")),
    N1: (DOE_JANE, ds(Modality="US")),
    A1: (ANON, ds(Modality="OT", SeriesNumber=None)),
}

INSTANCES: dict[str, tuple[str, str, JsonDict]] = {
    Y1_1: (Y1, CT, ds(InstanceNumber=1, AcquisitionDateTime="20230615103000")),
    Y1_2: (Y1, CT, ds(InstanceNumber=2, AcquisitionDateTime="20240101090000.123456")),
    Y2_1: (Y2, SR, ds(InstanceNumber=1)),
    M1_1: (M1, MR, ds(InstanceNumber=1, AcquisitionDateTime="202401011100")),
    M1_2: (M1, MR, ds(InstanceNumber=2, AcquisitionDateTime="20250301120000+0100")),
    O1_1: (O1, CT, ds(InstanceNumber=1, AcquisitionDateTime=None)),
    O2_1: (O2, MR, ds(InstanceNumber=1)),
    G1_1: (G1, CT, ds(InstanceNumber=1)),
    I1_1: (I1, MR, ds(InstanceNumber=1)),
    J1_1: (J1, CT, ds(InstanceNumber=1)),
    N1_1: (N1, US, ds(InstanceNumber=1)),
    A1_1: (A1, SC, ds(InstanceNumber=1)),
}

ALL_STUDIES = frozenset(STUDIES)
ALL_SERIES = frozenset(SERIES)
ALL_INSTANCES = frozenset(INSTANCES)

# ---- OTHER_SITE: entries that would match most cases if sites leaked --------------------------
# It reuses YAMADA's study, series and instance UIDs (other patient) and adds OTHER_STUDY.

OTHER_STUDY = "1.2.41.1"
OTHER_SERIES = f"{OTHER_STUDY}.1"
OTHER_SR_SERIES = f"{OTHER_STUDY}.2"
OTHER_STUDIES: dict[str, JsonDict] = {
    YAMADA: ds(
        PatientName="Yamada^Hanako",
        PatientID="PID-OTHER",
        PatientWeight=72.5,
        StudyDate="20240101",
        StudyTime="120000",
        AccessionNumber="ACC-001",
        StudyDescription="CT Chest",
    ),
    OTHER_STUDY: ds(
        PatientName="Doe^John",
        PatientID="PID-YAMADA",
        PatientWeight=80,
        StudyDate="20240102",
        StudyTime="120000",
        AccessionNumber="ACC-003",
        StudyDescription="MR Knee",
    ),
}
OTHER_SERIES_ATTRS: dict[str, tuple[str, JsonDict]] = {
    Y1: (
        YAMADA,
        ds(
            Modality="CT",
            SeriesNumber=1,
            SeriesTime="103000",
            RequestAttributesSequence=[
                ds(
                    ScheduledProcedureStepID="SPS-1",
                    RequestedProcedureID="RP-2",
                    ScheduledProtocolCodeSequence=[ds(CodeValue="P2")],
                )
            ],
        ),
    ),
    OTHER_SERIES: (
        OTHER_STUDY,
        ds(
            Modality="MR",
            SeriesNumber=2,
            SeriesTime="110000",
            RequestAttributesSequence=[
                ds(ScheduledProcedureStepID="SPS-2", RequestedProcedureID="RP-1")
            ],
        ),
    ),
    OTHER_SR_SERIES: (OTHER_STUDY, ds(Modality="SR", SeriesNumber=1)),
}
OTHER_INSTANCES: dict[str, tuple[str, str, JsonDict]] = {
    Y1_1: (Y1, CT, ds(InstanceNumber=2, AcquisitionDateTime="20240101120000")),
    f"{OTHER_SERIES}.1": (OTHER_SERIES, MR, ds(InstanceNumber=2, AcquisitionDateTime="2024")),
    f"{OTHER_SR_SERIES}.1": (OTHER_SR_SERIES, SR, ds(InstanceNumber=1)),
}


def documents(
    site: str,
    studies: dict[str, JsonDict],
    series: dict[str, tuple[str, JsonDict]],
    instances: dict[str, tuple[str, str, JsonDict]],
) -> list[InstanceDocument]:
    """The instance documents ingest would index: each instance with its series and study."""
    docs = []
    for sop_uid, (series_uid, sop_class, own) in instances.items():
        study_uid, series_attributes = series[series_uid]
        attributes = {
            **studies[study_uid],
            **series_attributes,
            **own,
            **ds(
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uid,
                SOPInstanceUID=sop_uid,
                SOPClassUID=sop_class,
            ),
        }
        docs.append(
            InstanceDocument(
                site=site,
                study_uid=study_uid,
                series_uid=series_uid,
                sop_uid=sop_uid,
                sop_class_uid=sop_class,
                transfer_syntax=EXPLICIT_LE,
                object_key=f"{site}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}",
                size=1000,
                sha256=uuid.uuid5(uuid.NAMESPACE_OID, sop_uid).hex * 2,
                attributes=dict(sorted(attributes.items())),
            )
        )
    return docs


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=list(INDEX_FACTORIES))
async def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Index]:
    """A started index holding the corpus of SITE and OTHER_SITE; closed after the module."""
    index = INDEX_FACTORIES[request.param](request, tmp_path_factory.mktemp(request.param))
    await index.start()
    try:
        await index.upsert_instances(documents(SITE, STUDIES, SERIES, INSTANCES))
        await index.upsert_instances(
            documents(OTHER_SITE, OTHER_STUDIES, OTHER_SERIES_ATTRS, OTHER_INSTANCES)
        )
        yield index
    finally:
        await index.close()


UID_TAG = {Level.STUDY: "0020000D", Level.SERIES: "0020000E", Level.INSTANCE: "00080018"}


def uid(record: JsonDict, level: Level) -> str:
    """The UID of the entity a record describes."""
    [value] = record[UID_TAG[level]]["Value"]
    return str(value)


def params(text: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` as query parameters (split at the first ``=``; values may contain ``=``)."""
    pairs = []
    for part in text.split("&") if text else []:
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return pairs


class Case(NamedTuple):
    """One search: its level and query string, and the UIDs that must match, no others."""

    name: str
    level: Level
    query: str
    expected: frozenset[str]
    study_uid: str | None = None
    series_uid: str | None = None


def study(name: str, query: str, *expected: str) -> Case:
    return Case(name, Level.STUDY, query, frozenset(expected))


def series(name: str, query: str, *expected: str, study_uid: str | None = None) -> Case:
    return Case(name, Level.SERIES, query, frozenset(expected), study_uid)


def instance(
    name: str,
    query: str,
    *expected: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Case:
    return Case(name, Level.INSTANCE, query, frozenset(expected), study_uid, series_uid)


EMPTY = '""'  # Empty Value Matching

CASES = [
    # -- Single Value Matching (C.2.2.2.1): exact and case-sensitive except for PN
    study("lo-exact", "PatientID=PID-YAMADA", YAMADA),
    study("lo-case-sensitive", "PatientID=pid-yamada"),
    study("sh-exact", "AccessionNumber=ACC-001", YAMADA),
    study("sh-case-sensitive-upper", "AccessionNumber=ACC-002"),
    study("sh-case-sensitive-lower", "AccessionNumber=acc-002", MUELLER),
    study("lo-with-space", "StudyDescription=CT Chest", YAMADA),
    study("pn-alphabetic-group", "PatientName=Yamada^Tarou", YAMADA),
    study("pn-case-insensitive", "PatientName=YAMADA^TAROU", YAMADA),
    study("pn-all-groups", "PatientName=Yamada^Tarou=山田^太郎=やまだ^たろう", YAMADA),
    study("pn-ideographic-group", "PatientName=山田^太郎", YAMADA),
    study("pn-phonetic-group", "PatientName=やまだ^たろう", YAMADA),
    study("pn-case-insensitive-non-ascii", "PatientName=MÜLLER^JÜRGEN", MUELLER),
    study("pn-lower-non-ascii", "PatientName=müller^jürgen", MUELLER),
    study("pn-literal-is-accent-sensitive", "PatientName=Muller^Jurgen"),
    study("pn-apostrophe", "PatientName=o'brien^mary", OBRIEN),
    study("pn-greek-casefold", "PatientName=ΠΑΠΑΔΌΠΟΥΛΟΣ^ΓΙΏΡΓΟΣ", GREEK),
    study("pn-cyrillic", "PatientName=иванов^иван", IVANOV),
    study("pn-trailing-delimiters", "PatientName=Doe^Jane", DOE_JANE),
    study("pn-one-component-is-not-a-match", "PatientName=Doe"),
    study("pn-referring-physician", "ReferringPhysicianName=SUZUKI^ICHIRO", YAMADA),
    # -- List of UID Matching (C.2.2.2.2): comma or backslash
    study("uid-single", f"StudyInstanceUID={YAMADA}", YAMADA),
    study("uid-list-comma", f"StudyInstanceUID={YAMADA},{OBRIEN}", YAMADA, OBRIEN),
    study("uid-list-backslash", f"StudyInstanceUID={MUELLER}\\{IVANOV}", MUELLER, IVANOV),
    study("uid-list-other-site", f"StudyInstanceUID={OTHER_STUDY},{GREEK}", GREEK),
    study("uid-unknown", "StudyInstanceUID=9.9.9"),
    # -- Universal Matching (C.2.2.2.3): empty value or a lone '*'; absent attributes match
    study("universal-empty-pn", "PatientName=", *ALL_STUDIES),
    study("universal-star-pn", "PatientName=*", *ALL_STUDIES),
    study("universal-star-sh", "AccessionNumber=*", *ALL_STUDIES),
    study("universal-empty-da", "StudyDate=", *ALL_STUDIES),
    study("no-keys", "", *ALL_STUDIES),
    # -- Wild Card Matching (C.2.2.2.4): '*' any run, '?' one character
    study("wc-pn-prefix", "PatientName=Doe*", DOE_JOHN, DOE_JANE),
    study("wc-pn-prefix-case", "PatientName=doe^j*", DOE_JOHN, DOE_JANE),
    study("wc-pn-suffix", "PatientName=*^JOHN", DOE_JOHN),
    study("wc-pn-question", "PatientName=D?E^J?HN", DOE_JOHN),
    study("wc-pn-infix", "PatientName=*ller*", MUELLER),
    study("wc-pn-non-ascii-case", "PatientName=MÜLL*", MUELLER),
    study("wc-pn-literal-accents", "PatientName=Mull*"),
    study("wc-pn-ideographic", "PatientName=*太郎*", YAMADA),
    study("wc-pn-phonetic-suffix", "PatientName=*たろう", YAMADA),
    study("wc-pn-cyrillic-question", "PatientName=Иван?в*", IVANOV),
    study("wc-pn-apostrophe", "PatientName=O'*", OBRIEN),
    study("wc-sh-prefix", "AccessionNumber=ACC*", YAMADA, OBRIEN, IVANOV, DOE_JOHN),
    study("wc-sh-case-sensitive", "AccessionNumber=acc*", MUELLER),
    study("wc-sh-question", "AccessionNumber=*-00?", YAMADA, MUELLER, OBRIEN, IVANOV, DOE_JOHN),
    study("wc-sh-suffix", "AccessionNumber=*5", IVANOV),
    study("wc-sh-infix", "AccessionNumber=*C-0*", YAMADA, OBRIEN, IVANOV, DOE_JOHN),
    study("wc-lo-suffix-case", "StudyDescription=*chest", DOE_JOHN),
    study("wc-lo-prefix", "StudyDescription=CT*", YAMADA, GREEK),
    # -- Empty Value Matching: '""' matches an empty or absent attribute only
    study("empty-pn", f"PatientName={EMPTY}", ANON),
    study("empty-sh", f"AccessionNumber={EMPTY}", GREEK, DOE_JANE, ANON),
    study("empty-lo", f"StudyDescription={EMPTY}", OBRIEN, DOE_JANE, ANON),
    study("empty-da", f"StudyDate={EMPTY}", ANON),
    # -- Range Matching (C.2.2.2.5): DA
    study("da-single", "StudyDate=20240103", IVANOV, DOE_JOHN),
    study("da-closed", "StudyDate=20240101-20240102", YAMADA, MUELLER, OBRIEN, GREEK),
    study("da-open-low", "StudyDate=-20240101", YAMADA, MUELLER, DOE_JANE),
    study("da-open-high", "StudyDate=20240102-", OBRIEN, GREEK, IVANOV, DOE_JOHN),
    study("da-one-day-range", "StudyDate=20240101-20240101", YAMADA, MUELLER),
    study("da-birth-date", "PatientBirthDate=-19800101", YAMADA),
    # TM: a value of reduced precision covers its whole hour / minute
    study("tm-hours-range", "StudyTime=10-11", MUELLER, ANON),
    study("tm-open-low", "StudyTime=-0800", OBRIEN, IVANOV),
    study("tm-open-high", "StudyTime=2000-", GREEK, DOE_JANE),
    study("tm-single-hour", "StudyTime=09", YAMADA),
    study("tm-single-fraction", "StudyTime=235959.5", DOE_JANE),
    # Combined date and time (C.2.2.2.5.1): one date-time interval, not two conditions
    study(
        "datetime-closed",
        "StudyDate=20240101-20240103&StudyTime=1000-1800",
        MUELLER,
        OBRIEN,
        GREEK,
        IVANOV,
    ),
    study("datetime-open-high", "StudyDate=20240102-&StudyTime=1900-", GREEK, IVANOV, DOE_JOHN),
    study("datetime-open-low", "StudyDate=-20240101&StudyTime=-1000", YAMADA, DOE_JANE),
    study("datetime-single-date", "StudyDate=20240103&StudyTime=-1200", IVANOV),
    # Empty Value Matching on one of the pair: nothing to combine, each key matches on its own
    study("datetime-empty-date", f"StudyDate={EMPTY}&StudyTime=10-11", ANON),
    # -- fuzzymatching=true (PS3.18 8.3.4.1): word by word, prefixes, accents and case ignored
    study("fuzzy-given-name", "PatientName=Tarou&fuzzymatching=true", YAMADA),
    study("fuzzy-accents", "PatientName=Muller&fuzzymatching=true", MUELLER),
    study("fuzzy-given-upper", "PatientName=JURGEN&fuzzymatching=true", MUELLER),
    study("fuzzy-prefix", "PatientName=Mu&fuzzymatching=true", MUELLER),
    study("fuzzy-prefix-two", "PatientName=Do&fuzzymatching=true", DOE_JOHN, DOE_JANE),
    study("fuzzy-ideographic", "PatientName=山田&fuzzymatching=true", YAMADA),
    study("fuzzy-phonetic", "PatientName=たろう&fuzzymatching=true", YAMADA),
    study("fuzzy-phonetic-voiced", "PatientName=やまだ&fuzzymatching=true", YAMADA),
    study("fuzzy-word-order", "PatientName=jane doe&fuzzymatching=true", DOE_JANE),
    study("fuzzy-greek-no-accents", "PatientName=Γιωργος&fuzzymatching=true", GREEK),
    study("fuzzy-full-name", "PatientName=Doe^John&fuzzymatching=true", DOE_JOHN),
    study("fuzzy-no-match", "PatientName=John^Smith&fuzzymatching=true"),
    study("fuzzy-with-star", "PatientName=Mül*&fuzzymatching=true", MUELLER),
    # fuzzy matching is *additional* matching: what literal matching finds stays found
    study("literal-question-in-word", "PatientName=Müller^J?rgen", MUELLER),
    study("fuzzy-question-in-word", "PatientName=Müller^J?rgen&fuzzymatching=true", MUELLER),
    # -- numbers (IS, DS): by value
    study("ds-value", "PatientWeight=72.5", YAMADA),
    study("ds-trailing-zero", "PatientWeight=72.50", YAMADA),
    study("ds-exponent", "PatientWeight=7.25E1", YAMADA),
    study("ds-integral", "PatientWeight=80.0", MUELLER),
    # -- derived attributes (PS3.18 Table 10.6.3-3) are matching keys
    study("modalities-in-study", "ModalitiesInStudy=SR", YAMADA),
    study("modalities-in-study-ct", "ModalitiesInStudy=CT", YAMADA, OBRIEN, GREEK, DOE_JOHN),
    study(
        "modalities-in-study-multiple",
        "ModalitiesInStudy=CT\\MR",
        YAMADA,
        MUELLER,
        OBRIEN,
        GREEK,
        IVANOV,
        DOE_JOHN,
    ),
    study("modalities-in-study-case", "ModalitiesInStudy=ct"),
    study("sop-classes-in-study", f"SOPClassesInStudy={SR}", YAMADA),
    study("several-keys-all-hold", "ModalitiesInStudy=CT&PatientName=Doe*", DOE_JOHN),
    # -- series level
    series("cs-exact", "Modality=CT", Y1, O1, G1, J1),
    series("cs-case-sensitive", "Modality=ct"),
    series("cs-multiple-values", "Modality=CT\\MR", Y1, M1, O1, O2, G1, I1, J1),
    series("cs-question", "Modality=?R", Y2, M1, O2, I1),
    series("is-value", "SeriesNumber=1", Y1, M1, O1, I1),
    series("is-leading-zero", "SeriesNumber=01", Y1, M1, O1, I1),
    series("is-string-value", "SeriesNumber=2", Y2, O2),
    series("is-empty", f"SeriesNumber={EMPTY}", J1, N1, A1),
    series("tm-reduced-range-edges", "SeriesTime=10-11", Y2, M1, O2),
    series("tm-minutes-range-edges", "SeriesTime=1000-1159", Y2, M1, O2),
    series("tm-open-low-minute", "SeriesTime=-1000", Y1, Y2),
    series("tm-open-high-hour", "SeriesTime=12-", O1),
    series("tm-single-hour-covers-hour", "SeriesTime=11", M1, O2),
    series("tm-single-microseconds", "SeriesTime=115959.999999", M1),
    # -- Sequence Matching (C.2.2.2.6): keys of one item match in the same item
    series("sq-one-key", "RequestAttributesSequence.ScheduledProcedureStepID=SPS-1", Y1, M1),
    series("sq-one-key-any-item", "RequestAttributesSequence.RequestedProcedureID=RP-2", Y1, M1),
    series(
        "sq-same-item",
        "RequestAttributesSequence.ScheduledProcedureStepID=SPS-1"
        "&RequestAttributesSequence.RequestedProcedureID=RP-2",
        M1,
    ),
    series(
        "sq-same-second-item",
        "RequestAttributesSequence.ScheduledProcedureStepID=SPS-2"
        "&RequestAttributesSequence.RequestedProcedureID=RP-2",
        Y1,
    ),
    series(
        "sq-keys-in-different-items",
        "RequestAttributesSequence.ScheduledProcedureStepID=SPS-2"
        "&RequestAttributesSequence.RequestedProcedureID=RP-1",
    ),
    series("sq-wildcard", "RequestAttributesSequence.ScheduledProcedureStepID=SPS-*", Y1, M1),
    series("sq-question", "RequestAttributesSequence.RequestedProcedureID=RP-?", Y1, M1, O1, G1),
    series("sq-tag-path", "00400275.00400009=SPS-2", Y1),
    series(
        "sq-empty-and-value-same-item",
        f"RequestAttributesSequence.ScheduledProcedureStepID={EMPTY}"
        "&RequestAttributesSequence.RequestedProcedureID=RP-9",
        O1,
    ),
    # an item whose ScheduledProcedureStepID is absent (O1) or empty (G1); a series whose
    # every item has one (Y1, M1) does not match, nor one without the sequence (no item)
    series("sq-empty-value", f"RequestAttributesSequence.ScheduledProcedureStepID={EMPTY}", O1, G1),
    series("sq-universal", "RequestAttributesSequence.ScheduledProcedureStepID=", *ALL_SERIES),
    # '""' on the sequence itself: no sequence or one without items (never one with items)
    series("sq-itself-empty", f"RequestAttributesSequence={EMPTY}", Y2, O2, I1, J1, N1, A1),
    series(
        "sq-nested",
        "RequestAttributesSequence.ScheduledProtocolCodeSequence.CodeValue=P2",
        Y1,
    ),
    series(
        "sq-nested-same-item",
        "RequestAttributesSequence.ScheduledProcedureStepID=SPS-1"
        "&RequestAttributesSequence.ScheduledProtocolCodeSequence.CodeValue=P2",
        Y1,
    ),
    series(
        "sq-nested-other-item",
        "RequestAttributesSequence.ScheduledProcedureStepID=SPS-2"
        "&RequestAttributesSequence.ScheduledProtocolCodeSequence.CodeValue=P1",
    ),
    # -- relational queries (PS3.18 10.6.1): keys of the levels above
    series("rel-patient-id", "PatientID=PID-YAMADA", Y1, Y2),
    series("rel-patient-name-wildcard", "PatientName=Doe*", J1, N1),
    series("rel-date-and-modality", "StudyDate=20240101&Modality=MR", M1),
    series("rel-modalities-in-study", "ModalitiesInStudy=SR", Y1, Y2),
    series("rel-study-uid-list", f"StudyInstanceUID={MUELLER}\\{IVANOV}", M1, I1),
    series("rel-empty-pn", f"PatientName={EMPTY}", A1),
    series("rel-empty-sh", f"AccessionNumber={EMPTY}", G1, N1, A1),
    series("uid-list", f"SeriesInstanceUID={Y2},{O1}", Y2, O1),
    # -- scope by the path's UIDs
    series("scope-study", "", Y1, Y2, study_uid=YAMADA),
    series("scope-study-and-key", "Modality=SR", Y2, study_uid=YAMADA),
    series("scope-study-of-other-site", "", study_uid=OTHER_STUDY),
    instance("scope-series", "", Y1_1, Y1_2, study_uid=YAMADA, series_uid=Y1),
    instance("scope-study-only", "", Y1_1, Y1_2, Y2_1, study_uid=YAMADA),
    instance("scope-series-not-in-study", "", study_uid=YAMADA, series_uid=M1),
    instance("scope-and-key", "InstanceNumber=2", Y1_2, study_uid=YAMADA, series_uid=Y1),
    # -- instance level
    instance("rel-date-and-modality", "StudyDate=20240101&Modality=MR", M1_1, M1_2),
    instance(
        "rel-date-range-and-modality",
        "StudyDate=20240101-20240102&Modality=CT",
        Y1_1,
        Y1_2,
        O1_1,
        G1_1,
    ),
    instance("is-instance-number", "InstanceNumber=2", Y1_2, M1_2),
    instance("sop-class", f"SOPClassUID={MR}", M1_1, M1_2, O2_1, I1_1),
    instance("sop-uid-list", f"SOPInstanceUID={Y1_1},{M1_2}", Y1_1, M1_2),
    instance("rel-empty-accession", f"AccessionNumber={EMPTY}", G1_1, N1_1, A1_1),
    instance("rel-pn-wildcard", "PatientName=*ller*", M1_1, M1_2),
    instance(
        "rel-sequence",
        "RequestAttributesSequence.ScheduledProcedureStepID=SPS-1",
        Y1_1,
        Y1_2,
        M1_1,
        M1_2,
    ),
    # DT: ranges of any precision; the values' own precision (year, minute) covers its interval
    instance("dt-year-range", "AcquisitionDateTime=2023-2024", Y1_1, Y1_2, M1_1),
    instance("dt-closed", "AcquisitionDateTime=20240101-20241231", Y1_2, M1_1),
    instance("dt-open-low", "AcquisitionDateTime=-20231231", Y1_1),
    instance("dt-open-high-year", "AcquisitionDateTime=2025-", M1_2),
    instance("dt-single-year", "AcquisitionDateTime=2024", Y1_2, M1_1),
    instance("dt-single-day", "AcquisitionDateTime=20240101", Y1_2, M1_1),
    instance("dt-single-minute", "AcquisitionDateTime=202401011100", M1_1),
    instance("dt-single-fraction", "AcquisitionDateTime=20240101090000.123456", Y1_2),
    instance(
        "dt-empty",
        f"AcquisitionDateTime={EMPTY}",
        *(ALL_INSTANCES - {Y1_1, Y1_2, M1_1, M1_2}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.level}-{c.name}" for c in CASES])
async def test_matching(corpus: Index, case: Case) -> None:
    query = parse_query(
        case.level,
        params(case.query),
        study_uid=case.study_uid,
        series_uid=case.series_uid,
        default_limit=1000,
    )

    page = await corpus.search(SITE, query)

    found = [uid(record, case.level) for record in page.records]
    assert len(found) == len(set(found)), f"an entity is returned twice: {found}"
    missing, unexpected = sorted(case.expected - set(found)), sorted(set(found) - case.expected)
    assert set(found) == case.expected, f"missing {missing}, unexpected {unexpected}"
    assert page.total == len(case.expected)


@pytest.mark.parametrize(
    ("level", "query", "expected"),
    [
        (Level.STUDY, "", ALL_STUDIES),
        (Level.STUDY, "StudyDate=20240101-20240103", ALL_STUDIES - {DOE_JANE, ANON}),
        (Level.SERIES, "", ALL_SERIES),
        (Level.INSTANCE, "", ALL_INSTANCES),
        (Level.INSTANCE, "Modality=CT\\MR", {Y1_1, Y1_2, M1_1, M1_2, O1_1, O2_1, G1_1, I1_1, J1_1}),
    ],
    ids=["studies", "studies-date-range", "series", "instances", "instances-relational"],
)
async def test_pages_never_skip_or_repeat(
    corpus: Index, level: Level, query: str, expected: frozenset[str]
) -> None:
    for limit in (1, 2, 3, 5, len(expected), 100):
        seen: list[str] = []
        for offset in range(0, len(expected) + limit, limit):
            parameters = [*params(query), ("limit", str(limit)), ("offset", str(offset))]
            page = await corpus.search(SITE, parse_query(level, parameters))
            assert len(page.records) == max(0, min(limit, len(expected) - offset))
            assert page.total == len(expected), f"limit {limit} offset {offset}"
            seen += [uid(record, level) for record in page.records]
        assert seen == sorted(expected), f"limit {limit}"  # stable order: by UID


async def test_derived_attributes_are_returned(corpus: Index) -> None:
    query = parse_query(Level.STUDY, params(f"StudyInstanceUID={YAMADA},{OBRIEN},{ANON}"))
    studies = {uid(r, Level.STUDY): r for r in (await corpus.search(SITE, query)).records}

    yamada = studies[YAMADA]
    assert yamada["00201206"] == {"vr": "IS", "Value": [2]}  # NumberOfStudyRelatedSeries
    assert yamada["00201208"] == {"vr": "IS", "Value": [3]}  # NumberOfStudyRelatedInstances
    assert yamada["00080061"] == {"vr": "CS", "Value": ["CT", "SR"]}  # ModalitiesInStudy
    assert yamada["00080062"]["vr"] == "UI"  # SOPClassesInStudy
    assert sorted(yamada["00080062"]["Value"]) == sorted([CT, SR])
    assert yamada["00100010"] == ds(PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう")["00100010"]
    assert studies[OBRIEN]["00201206"] == {"vr": "IS", "Value": [2]}
    assert studies[OBRIEN]["00201208"] == {"vr": "IS", "Value": [2]}
    assert studies[OBRIEN]["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert studies[ANON]["00080061"] == {"vr": "CS", "Value": ["OT"]}
    assert "00080018" not in yamada  # instance attributes do not belong to a study

    query = parse_query(Level.SERIES, [], study_uid=YAMADA)
    by_uid = {uid(r, Level.SERIES): r for r in (await corpus.search(SITE, query)).records}
    assert by_uid[Y1]["00201209"] == {"vr": "IS", "Value": [2]}  # NumberOfSeriesRelatedInstances
    assert by_uid[Y2]["00201209"] == {"vr": "IS", "Value": [1]}
    assert by_uid[Y1]["00080060"] == {"vr": "CS", "Value": ["CT"]}
    # a series record carries the attributes of its study (the level above)
    assert by_uid[Y1]["0020000D"] == {"vr": "UI", "Value": [YAMADA]}
    assert by_uid[Y1]["00100020"] == {"vr": "LO", "Value": ["PID-YAMADA"]}
    assert by_uid[Y1]["00400275"] == SERIES[Y1][1]["00400275"]

    query = parse_query(Level.INSTANCE, [], study_uid=YAMADA, series_uid=Y1)
    [first, _] = (await corpus.search(SITE, query)).records
    assert first["00080018"] == {"vr": "UI", "Value": [Y1_1]}
    assert first["0008002A"] == {"vr": "DT", "Value": ["20230615103000"]}


async def test_sites_are_isolated(corpus: Index) -> None:
    mine = await corpus.search(SITE, parse_query(Level.STUDY, params(f"StudyInstanceUID={YAMADA}")))
    theirs = await corpus.search(
        OTHER_SITE, parse_query(Level.STUDY, params(f"StudyInstanceUID={YAMADA}"))
    )
    assert [r["00100020"]["Value"] for r in mine.records] == [["PID-YAMADA"]]
    assert [r["00100020"]["Value"] for r in theirs.records] == [["PID-OTHER"]]
    assert mine.records[0]["00201208"] == {"vr": "IS", "Value": [3]}
    assert theirs.records[0]["00201208"] == {"vr": "IS", "Value": [1]}

    other = await corpus.search(OTHER_SITE, parse_query(Level.STUDY, params("PatientName=Doe*")))
    assert [uid(r, Level.STUDY) for r in other.records] == [OTHER_STUDY]
    other_series = await corpus.search(
        OTHER_SITE, parse_query(Level.SERIES, params("PatientID=PID-YAMADA"))
    )
    assert {uid(r, Level.SERIES) for r in other_series.records} == {OTHER_SERIES, OTHER_SR_SERIES}
    other_instances = await corpus.search(
        OTHER_SITE, parse_query(Level.INSTANCE, [], study_uid=YAMADA, series_uid=Y1)
    )
    assert [r["00200013"]["Value"] for r in other_instances.records] == [[2]]
    assert other_instances.total == 1

    nobody = await corpus.search(f"nobody-{uuid.uuid4().hex}", parse_query(Level.INSTANCE, []))
    assert (nobody.records, nobody.total) == ([], 0)
