"""The benchmark's answer checks: a fast wrong answer must not score.

bench/stow.py checks STOW-RS responses (PS3.18 10.5.3), bench/queries.py QIDO-RS answers
against the generator's ground truth, bench/collect.py turns runs into medians and refuses
to give a figure for a measurement that failed in any run.
"""

from __future__ import annotations

import json

from bench import images, stow, synth
from bench.collect import Collector
from bench.measure import Outcome
from bench.queries import build_queries

SOPS = ["1.2.3.1", "1.2.3.2"]


def _response(referenced: list[str], failed: list[str] | None = None) -> bytes:
    body: dict[str, object] = {
        "00081199": {
            "vr": "SQ",
            "Value": [{"00081155": {"vr": "UI", "Value": [uid]}} for uid in referenced],
        }
    }
    if failed is not None:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081155": {"vr": "UI", "Value": [uid]},
                    "00081197": {"vr": "US", "Value": [0xC000]},
                }
                for uid in failed
            ],
        }
    return json.dumps(body).encode()


def test_stow_check_accepts_exactly_the_instances_sent() -> None:
    assert stow.check_response(200, _response(SOPS), SOPS) is None
    assert stow.check_response(200, _response(SOPS, failed=[]), SOPS) is None  # empty sequence


def test_stow_check_refuses_wrong_answers() -> None:
    missing = stow.check_response(200, _response(SOPS[:1]), SOPS)
    assert missing is not None and "1.2.3.2" in missing
    assert stow.check_response(200, _response([*SOPS, "9.9"]), SOPS) is not None
    assert stow.check_response(200, _response(SOPS, failed=["1.2.3.2"]), SOPS) is not None
    assert stow.check_response(409, _response(SOPS), SOPS) is not None
    assert stow.check_response(200, b"<html>", SOPS) is not None


def test_qido_check_catches_a_server_that_ignores_the_filter() -> None:
    corpus = synth.generate(40, seed=3)
    queries = {q.name: q for q in build_queries(corpus, variants=3, limit=100)}
    variant = queries["studies by PatientID"].variants[0]
    right = [{"0020000D": {"vr": "UI", "Value": [uid]}} for uid in sorted(variant.expected)]
    everything = [{"0020000D": {"vr": "UI", "Value": [s.uid]}} for s in corpus.studies]
    assert variant.check(right) is None
    assert variant.check(everything) is not None  # answers all studies: does not match
    assert variant.check(right[:-1]) is not None  # one missing
    assert variant.check(right + right[:1]) is not None  # a duplicate


def test_synthetic_instances_carry_decodable_pixels_of_their_modality() -> None:
    from io import BytesIO

    from pydicom import dcmread

    corpus = synth.generate(12, seed=5)
    seen = set()
    for instance in corpus.instances():
        key = (instance.series.modality, images.is_compressed(instance))
        if key in seen:
            continue
        seen.add(key)
        ds = dcmread(BytesIO(images.part10(instance)))
        geometry = images.GEOMETRY[instance.series.modality]
        assert (ds.Rows, ds.Columns) == (geometry.rows, geometry.columns)
        assert ds.pixel_array.shape[:2] == (geometry.rows, geometry.columns)
        assert ds.SOPInstanceUID == instance.uid
    assert any(compressed for _, compressed in seen) and any(not c for _, c in seen)
    assert images.part10(next(corpus.instances())) == images.part10(next(corpus.instances()))


def test_a_measurement_failing_in_one_run_has_no_figure() -> None:
    collector = Collector("qido")
    good = Outcome("q", "pacsflow", samples_ms=[1.0, 2.0, 3.0])
    collector.latency("pacsflow", "g", good)
    collector.latency("pacsflow", "g", Outcome("q", "pacsflow", error="3 results, 4 expected"))
    collector.latency("orthanc", "g", Outcome("q", "orthanc", samples_ms=[4.0, 5.0, 6.0]))
    collector.latency("orthanc", "g", Outcome("q", "orthanc", samples_ms=[8.0, 9.0, 10.0]))
    metrics = {m.target: m for m in collector.metrics()}
    assert metrics["pacsflow"].error == "3 results, 4 expected"
    assert metrics["pacsflow"].value() is None and not metrics["pacsflow"].ok
    assert metrics["orthanc"].stats["p50"].runs == [5.0, 9.0]
    assert metrics["orthanc"].value() == 7.0
    assert collector.failures() == ["pacsflow, qido: g: q: 3 results, 4 expected"]
