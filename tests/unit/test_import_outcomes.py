"""Store Instances Responses (PS3.18 Annex I) read file by file, and batches by study."""

from __future__ import annotations

from pathlib import Path

import orjson

from pacsflow.dicom.header import PartHeader
from pacsflow.importer.classify import Scanned
from pacsflow.importer.outcomes import Outcome, read_store_response
from pacsflow.importer.plan import plan_batches, sending_order
from pacsflow.importer.sources import Item, LocalFile


def _ref(uid: str, warning: int | None = None) -> dict[str, object]:
    item: dict[str, object] = {"00081155": {"vr": "UI", "Value": [uid]}}
    if warning is not None:
        item["00081196"] = {"vr": "US", "Value": [warning]}
    return item


def _failed(uid: str, reason: int) -> dict[str, object]:
    value = {"vr": "UI", "Value": [uid]} if uid else {"vr": "UI"}
    return {"00081155": value, "00081197": {"vr": "US", "Value": [reason]}}


def _body(referenced: list[object], failed: list[object]) -> bytes:
    document: dict[str, object] = {}
    if failed:
        document["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        document["00081199"] = {"vr": "SQ", "Value": referenced}
    return orjson.dumps(document)


def test_stored_replaced_and_failed_by_uid() -> None:
    body = _body([_ref("1.1"), _ref("1.3", 0xB100)], [_failed("1.2", 0xC000)])
    results = read_store_response(["a", "b", "c"], ["1.1", "1.2", "1.3"], body)
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.STORED, ""),
        (Outcome.FAILED, "C000 Cannot understand"),
        (Outcome.REPLACED, "B100"),
    ]


def test_the_warning_header_places_failures_of_one_uid_and_gives_their_text() -> None:
    """Two parts of one UID: the second failed, which the UIDs alone cannot tell."""
    body = _body([_ref("1.1")], [_failed("1.1", 0xA900), _failed("", 0xC000)])
    warning = (
        '299 host "part 2 1.1: failure A900: Pixel Data is short", '
        '299 host "part 3 (no SOP Instance UID): failure C000: not a \\"DICOM\\" object"'
    )
    results = read_store_response(["a", "b", "c"], ["1.1", "1.1", ""], body, warning)
    assert [(r.outcome, r.reason, r.message) for r in results] == [
        (Outcome.STORED, "", ""),
        (Outcome.FAILED, "A900 Data Set does not match SOP Class", "Pixel Data is short"),
        (Outcome.FAILED, "C000 Cannot understand", 'not a "DICOM" object'),
    ]


def test_an_archive_without_part_numbers_is_read_by_uid_in_order() -> None:
    body = _body([_ref("1.1")], [_failed("", 0x0122), _failed("1.1", 0xC000)])
    results = read_store_response(["a", "b", "c"], ["1.1", "1.1", ""], body)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.STORED, Outcome.FAILED]
    assert results[2].reason == "0122 SOP Class not supported"


def test_a_file_the_answer_does_not_name_failed() -> None:
    results = read_store_response(["a", "b"], ["1.1", "1.2"], _body([_ref("1.1")], []))
    assert results[1].outcome is Outcome.FAILED
    assert results[1].message == "not in the archive's answer"


def test_an_answer_that_is_not_a_response() -> None:
    results = read_store_response(["a"], ["1.1"], b"<html>proxy error</html>")
    assert results[0].outcome is Outcome.FAILED and results[0].reason == "bad response"


def _file(name: str, size: int, study: str, sop: str) -> Scanned:
    header = PartHeader(study, "2", sop, "1.2.3", "1.2.840.10008.1.2.1", True) if sop else None
    return Scanned(Item(name, size, LocalFile(Path(name))), None, header)


def test_batches_by_study_split_by_count_and_bytes() -> None:
    files = [_file(f"a{i}", 10, "A", f"a.{i}") for i in range(5)]
    files += [_file("b0", 100, "B", "b.0"), _file("x", 5, "", "")]
    files.insert(2, _file("c0", 10, "C", "c.0"))
    batches = plan_batches(files, max_files=2, max_bytes=1000)
    assert [(b.study_uid, [f.item.name for f in b.files]) for b in batches] == [
        ("A", ["a0", "a1"]),
        ("A", ["a2", "a3"]),
        ("A", ["a4"]),
        ("C", ["c0"]),
        ("B", ["b0"]),
        ("", ["x"]),
    ]
    by_bytes = plan_batches(files[:4], max_files=100, max_bytes=25)
    assert [len(b.files) for b in by_bytes] == [2, 1, 1]


def test_files_of_one_uid_stay_in_one_batch_with_their_first_study() -> None:
    files = [
        _file("a", 10, "A", "1.1"),
        _file("b", 10, "A", "1.2"),
        _file("c", 10, "B", "1.1"),  # the same instance under another study
        _file("d", 10, "A", "1.1"),
    ]
    batches = plan_batches(files, max_files=2, max_bytes=1000)
    assert [[f.item.name for f in b.files] for b in batches] == [["a", "c", "d"], ["b"]]
    assert batches[0].groups[0] == (files[0], files[2], files[3])


def test_largest_batches_go_first() -> None:
    files = [_file("s", 5, "A", "1"), _file("l", 50, "B", "2"), _file("m", 20, "C", "3")]
    files.append(_file("m2", 20, "D", "4"))
    order = sending_order(plan_batches(files, max_files=10, max_bytes=100))
    assert [b.study_uid for b in order] == ["B", "C", "D", "A"]
