"""QIDO-RS end to end through dicomweb-client (PS3.18 10.6), in both modes: the real corpus
stored by STOW-RS, searched at every level. The protocol cases (media types, paging headers,
parameter errors) are in tests/service/test_qido.py."""

from __future__ import annotations

from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient

from tests.support.dicomweb import value
from tests.support.stored import Stored

JsonDict = dict[str, Any]


@pytest.fixture
def stored(corpus_archive: Stored) -> Stored:
    """The corpus as the archive of this mode holds it (tests/e2e/conftest.py)."""
    return corpus_archive


def _uids(results: list[JsonDict], tag: str) -> list[str]:
    return [value(r, tag) for r in results]


def _client(stored: Stored) -> DICOMwebClient:
    return DICOMwebClient(url=stored.url)


def test_every_study_is_found_with_its_required_attributes(stored: Stored) -> None:
    """PS3.18 Table 10.6.3-3: study attributes, derived counts and RetrieveURL."""
    results = _client(stored).search_for_studies()
    by_uid = {value(r, "0020000D"): r for r in results}
    assert set(by_uid) == set(stored.studies())
    for study_uid, datasets in stored.studies().items():
        result = by_uid[study_uid]
        assert value(result, "00201208") == len(datasets)
        assert value(result, "00201206") == len({str(d.SeriesInstanceUID) for d in datasets})
        modalities = sorted({str(d.Modality) for d in datasets if d.get("Modality")})
        assert result["00080061"].get("Value", []) == modalities
        assert value(result, "00081190") == f"{stored.url}/studies/{study_uid}"
        assert value(result, "00080056") == "ONLINE"
        for tag in ("00080020", "00080050", "00100020", "00100010", "00100040", "00200010"):
            assert tag in result, tag  # required: present, empty when the study has no value


def test_every_character_set_round_trips_and_is_searchable(stored: Stored) -> None:
    """Non-ASCII names come back as stored and match themselves, case-insensitively."""
    client = _client(stored)
    charset = [d for d in stored.headers.values() if d.get("PatientName")]
    charset = [d for d in charset if any(ord(c) > 127 for c in str(d.PatientName))]
    assert len(charset) >= 10
    for ds in charset:
        expected = ds["PatientName"].to_json_dict(None, 0)["Value"][0]
        found = client.search_for_studies(
            search_filters={"StudyInstanceUID": str(ds.StudyInstanceUID)}
        )
        assert [r["00100010"]["Value"][0] for r in found] == [expected]
        for group in ("Alphabetic", "Ideographic", "Phonetic"):
            name = expected.get(group)
            if not name or "\\" in name or "*" in name or "?" in name:
                continue
            matches = client.search_for_studies(search_filters={"PatientName": name.upper()})
            assert str(ds.StudyInstanceUID) in _uids(matches, "0020000D"), (group, name)


def test_fuzzy_matching_finds_a_name_by_one_component_without_accents(stored: Stored) -> None:
    """fuzzymatching=true: a given name alone, accents ignored (Jérôme → jerome)."""
    client = _client(stored)
    target = next(d for d in stored.headers.values() if "Jérôme" in str(d.get("PatientName", "")))
    exact = client.search_for_studies(search_filters={"PatientName": "jerome"})
    assert str(target.StudyInstanceUID) not in _uids(exact, "0020000D")
    fuzzy = client.search_for_studies(search_filters={"PatientName": "jerome"}, fuzzymatching=True)
    assert str(target.StudyInstanceUID) in _uids(fuzzy, "0020000D")


def test_date_range_modality_and_wildcard_match_the_corpus(stored: Stored) -> None:
    """StudyDate ranges, ModalitiesInStudy and PatientID wildcards against pydicom's values."""
    client = _client(stored)
    studies = {uid: ds[0] for uid, ds in stored.studies().items()}
    expected = {
        u for u, d in studies.items() if "19900101" <= str(d.get("StudyDate", "")) <= "20051231"
    }
    found = client.search_for_studies(search_filters={"StudyDate": "19900101-20051231"})
    assert set(_uids(found, "0020000D")) == expected
    for modality in ("CT", "MR"):
        wanted = {
            u
            for u, ds in stored.studies().items()
            if any(d.get("Modality") == modality for d in ds)
        }
        found = client.search_for_studies(search_filters={"ModalitiesInStudy": modality})
        assert set(_uids(found, "0020000D")) == wanted
    some = next(d for d in studies.values() if len(str(d.get("PatientID", ""))) > 3)
    prefix = str(some.PatientID)[:3]
    wanted = {u for u, d in studies.items() if str(d.get("PatientID", "")).startswith(prefix)}
    found = client.search_for_studies(search_filters={"PatientID": prefix + "*"})
    assert set(_uids(found, "0020000D")) == wanted


def test_series_and_instances_within_a_study_and_relational(stored: Stored) -> None:
    """The three levels, scoped by the path and relational (PS3.18 10.6.1.2)."""
    client = _client(stored)
    study_uid, datasets = max(stored.studies().items(), key=lambda kv: len(kv[1]))
    series = client.search_for_series(study_instance_uid=study_uid)
    assert set(_uids(series, "0020000E")) == {str(d.SeriesInstanceUID) for d in datasets}
    for result in series:
        count = sum(1 for d in datasets if str(d.SeriesInstanceUID) == value(result, "0020000E"))
        assert value(result, "00201209") == count
    instances = client.search_for_instances(study_instance_uid=study_uid)
    assert set(_uids(instances, "00080018")) == {str(d.SOPInstanceUID) for d in datasets}
    one = datasets[0]
    scoped = client.search_for_instances(
        study_instance_uid=study_uid, series_instance_uid=str(one.SeriesInstanceUID)
    )
    assert str(one.SOPInstanceUID) in _uids(scoped, "00080018")
    relational = client.search_for_series(search_filters={"PatientID": str(one.PatientID)})
    wanted = {
        str(d.SeriesInstanceUID)
        for d in stored.headers.values()
        if d.get("PatientID") == one.PatientID
    }
    assert set(_uids(relational, "0020000E")) == wanted
    assert all(value(r, "00100020") == str(one.PatientID) for r in relational)


def test_includefield_and_all(stored: Stored) -> None:
    """includefield by keyword and tag adds attributes; all returns every stored one."""
    client = _client(stored)
    study_uid, datasets = next(iter(stored.studies().items()))
    described = next((d for d in datasets if d.get("StudyDescription")), None)
    fields = ["StudyDescription", "00081030"]
    [result] = client.search_for_studies(
        search_filters={"StudyInstanceUID": study_uid}, fields=fields
    )
    assert "00081030" in result
    if described is not None:
        assert value(result, "00081030") == str(described.StudyDescription)
    plain = client.search_for_instances(study_instance_uid=study_uid)
    full = client.search_for_instances(study_instance_uid=study_uid, fields=["all"])
    assert len(full[0]) > len(plain[0])


def test_paging_never_skips_or_repeats(stored: Stored) -> None:
    """limit/offset pages in a stable order (PS3.18 8.3.4.4)."""
    client = _client(stored)
    everything = _uids(client.search_for_studies(), "0020000D")
    pages: list[str] = []
    for offset in range(0, len(everything) + 7, 7):
        pages += _uids(client.search_for_studies(limit=7, offset=offset), "0020000D")
    assert pages == everything


def test_no_match_is_an_empty_result(stored: Stored) -> None:
    """CP-2473: a search without matches succeeds with an empty result."""
    assert _client(stored).search_for_studies(search_filters={"PatientID": "nobody"}) == []
