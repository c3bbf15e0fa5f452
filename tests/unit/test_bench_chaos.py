"""The ledger of the chaos trials (bench/chaos_load.py): what a STOW-RS answer says of each
instance sent (PS3.18 10.5.3, Table 10.5.3-1), and the table of bench/chaos.py."""

from __future__ import annotations

import json

from bench.chaos import Row, table
from bench.chaos_load import Generator, Ledger, classify
from bench.chaos_verify import Verdict

FILES = [("1.2", "1.2.3", f"1.2.3.{n}", b"DICM%d" % n) for n in (1, 2)]


def _answer(referenced: list[str], failed: list[str]) -> bytes:
    def items(uids: list[str]) -> dict[str, object]:
        return {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": [u]}} for u in uids]}

    return json.dumps({"00081199": items(referenced), "00081198": items(failed)}).encode()


def test_a_200_acknowledges_the_instances_it_references() -> None:
    found = classify(200, _answer(["1.2.3.1", "1.2.3.2"], []), FILES, 4)
    assert [(i.outcome, i.trial, i.status) for i in found] == [("acknowledged", 4, 200)] * 2


def test_a_202_accepts_what_it_references_and_fails_what_it_lists_as_failed() -> None:
    found = classify(202, _answer(["1.2.3.1"], ["1.2.3.2"]), FILES, 1)
    assert [i.outcome for i in found] == ["accepted", "failed"]


def test_an_error_answer_refuses_and_no_answer_is_unknown() -> None:
    assert {i.outcome for i in classify(503, b"busy", FILES, 1)} == {"refused"}
    assert {i.outcome for i in classify(0, b"", FILES, 1)} == {"unknown"}
    assert {i.outcome for i in classify(200, b"not json", FILES, 1)} == {"refused"}


def test_uploads_are_new_studies_of_distinct_instances() -> None:
    generator = Generator(5)
    first, second = generator.upload(), generator.upload()
    assert len({f[0] for f in first}) == 1 and first[0][0] != second[0][0]
    assert len({f[2] for f in first + second}) == len(first) + len(second)
    assert all(data[128:132] == b"DICM" for *_, data in first + second)


def test_the_table_sums_trials_and_flags_a_loss() -> None:
    row = Row("broker")
    row.add(Verdict(acknowledged=10, accepted=2, lost=["1.2.3"]), 1.5, 0)
    row.add(Verdict(acknowledged=5), None, 1)
    text = table([row])
    assert "| broker | 2 | 2 | 15 | 2 |" in text and "1 not recovered" in text
    assert not row.clean


def test_recovery_counts_only_requests_sent_after_the_restart() -> None:
    ledger = Ledger()
    ledger.succeeded("stow", 9.0, 10.5)  # sent before the restart at 10, answered after
    ledger.succeeded("stow", 11.0, 12.0)
    assert ledger.first_success("stow", 10.0) == 12.0
    assert ledger.first_success("qido", 10.0) is None
