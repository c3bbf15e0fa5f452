"""UPS-RS workitem transactions over real HTTP (PS3.18 11.4-11.9), in process, embedded backends.

Statuses and Warning texts are the ones PS3.18 Chapter 11 gives; every bad request names why.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from pacsflow.dicom.xml import dataset_to_xml, xml_to_dataset
from tests.support.serving import Running
from tests.support.workitems import (
    TRANSACTION_UID,
    element,
    first,
    new_uid,
    performed,
    state,
    workitem,
)

JSON = {"content-type": "application/dicom+json"}
JsonDict = dict[str, Any]


async def create(ups: Running, dataset: JsonDict, uid: str | None = None) -> httpx.Response:
    query = f"?workitem={uid}" if uid else ""
    return await ups.client.post(
        f"{ups.url}/workitems{query}", content=orjson.dumps(dataset), headers=JSON
    )


async def put_state(ups: Running, uid: str, payload: JsonDict) -> httpx.Response:
    return await ups.client.put(
        f"{ups.url}/workitems/{uid}/state", content=orjson.dumps(payload), headers=JSON
    )


async def scheduled(ups: Running) -> str:
    uid = new_uid()
    assert (await create(ups, workitem(), uid)).status_code == 201
    return uid


def warning(response: httpx.Response) -> str:
    return response.headers.get("warning", "")


async def test_create_answers_201_with_the_location(ups: Running) -> None:
    uid = new_uid()
    response = await create(ups, workitem(), uid)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{ups.url}/workitems/{uid}"
    in_payload = new_uid()
    assert (await create(ups, workitem(in_payload))).headers["location"].endswith(in_payload)
    retrieved = await ups.client.get(f"{ups.url}/workitems/{uid}")
    assert retrieved.status_code == 200
    (dataset,) = retrieved.json()
    assert first(dataset, "00080018") == uid and first(dataset, "00741000") == "SCHEDULED"
    assert first(dataset, "00080016") == "1.2.840.10008.5.1.4.34.6.1"


async def test_a_workitem_uid_is_created_once(ups: Running) -> None:
    uid = await scheduled(ups)
    again = await create(ups, workitem(), uid)
    assert again.status_code == 409 and "already exists" in again.json()["message"]


@pytest.mark.parametrize(
    ("body", "query", "status", "reason"),
    [
        (b"{nope", "", 400, "not valid JSON"),
        (orjson.dumps(workitem()), "", 400, "the Workitem UID is missing"),
        (orjson.dumps(workitem("1.2.3")), "?workitem=1.2.4", 400, "is not the workitem"),
        (orjson.dumps(workitem()), "?workitem=not-a-uid", 400, "is not a UID"),
        (
            orjson.dumps({**workitem(), "00741000": element("UI", "1.2")}),
            "?workitem=1.2.5",
            400,
            "the VR is CS",
        ),
        (
            orjson.dumps({k: v for k, v in workitem().items() if k != "00741204"}),
            "?workitem=1.2.6",
            400,
            "ProcedureStepLabel",
        ),
        (
            orjson.dumps({**workitem(), TRANSACTION_UID: element("UI", "1.2")}),
            "?workitem=1.2.7",
            400,
            "TransactionUID",
        ),
    ],
)
async def test_bad_creates_are_refused_with_the_reason(
    ups: Running, body: bytes, query: str, status: int, reason: str
) -> None:
    response = await ups.client.post(f"{ups.url}/workitems{query}", content=body, headers=JSON)
    assert response.status_code == status and reason in response.json()["message"]


async def test_an_oversized_or_mistyped_body_is_refused(ups: Running) -> None:
    limit = ups.container.settings.ups_max_request_bytes
    big = {**workitem(), "00400400": element("LT", "x" * 10)}
    body = orjson.dumps(big).replace(b"x" * 10, b"x" * (limit + 1))
    assert (
        await ups.client.post(f"{ups.url}/workitems?workitem=1.2.8", content=body, headers=JSON)
    ).status_code == 413

    async def chunks() -> Any:
        for _ in range(limit // 1000 + 2):
            yield b" " * 1000  # no Content-Length: counted as it arrives

    streamed = await ups.client.post(
        f"{ups.url}/workitems?workitem=1.2.8", content=chunks(), headers=JSON
    )
    assert streamed.status_code == 413
    text = await ups.client.post(
        f"{ups.url}/workitems?workitem=1.2.8", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 415


async def test_xml_in_and_out(ups: Running) -> None:
    uid = new_uid()
    response = await ups.client.post(
        f"{ups.url}/workitems?workitem={uid}",
        content=dataset_to_xml(workitem()),
        headers={"content-type": "application/dicom+xml"},
    )
    assert response.status_code == 201, response.text
    xml = await ups.client.get(
        f"{ups.url}/workitems/{uid}", headers={"accept": "application/dicom+xml"}
    )
    assert xml.headers["content-type"] == "application/dicom+xml"
    assert first(xml_to_dataset(xml.content), "00741204") == "Lung nodule detection"
    refused = await ups.client.get(f"{ups.url}/workitems/{uid}", headers={"accept": "image/png"})
    assert refused.status_code == 406


async def test_unknown_workitems_are_404(ups: Running) -> None:
    not_a_uid = await ups.client.get(f"{ups.url}/workitems/{'9' * 600}")
    assert not_a_uid.status_code == 400 and "not a workitem UID" in not_a_uid.text
    uid = new_uid()
    assert (await ups.client.get(f"{ups.url}/workitems/{uid}")).status_code == 404
    assert (await put_state(ups, uid, state("IN PROGRESS", new_uid()))).status_code == 404
    update = await ups.client.post(f"{ups.url}/workitems/{uid}", content=b"{}", headers=JSON)
    assert update.status_code == 404
    cancel = await ups.client.post(f"{ups.url}/workitems/{uid}/cancelrequest")
    assert cancel.status_code == 404


async def test_the_lifecycle_and_the_hidden_transaction_uid(ups: Running) -> None:
    uid = await scheduled(ups)
    owner = new_uid()
    claimed = await put_state(ups, uid, state("IN PROGRESS", owner))
    assert claimed.status_code == 200, claimed.text
    (dataset,) = (await ups.client.get(f"{ups.url}/workitems/{uid}")).json()
    assert first(dataset, "00741000") == "IN PROGRESS" and TRANSACTION_UID not in dataset
    searched = await ups.client.get(f"{ups.url}/workitems", params={"includefield": "all"})
    assert all(TRANSACTION_UID not in result for result in searched.json())

    early = await put_state(ups, uid, state("COMPLETED", owner))
    assert early.status_code == 409 and "Final State" in early.json()["message"]
    assert "inconsistent with the state" in warning(early)

    update = await ups.client.post(
        f"{ups.url}/workitems/{uid}?transaction={owner}",
        content=orjson.dumps(performed()),
        headers=JSON,
    )
    assert update.status_code == 200, update.text
    done = await put_state(ups, uid, state("COMPLETED", owner))
    assert done.status_code == 200 and not warning(done)
    again = await put_state(ups, uid, state("COMPLETED", owner))
    assert again.status_code == 200
    assert (
        warning(again) == '299 127.0.0.1 "The UPS is already in the requested state of COMPLETED."'
    )
    late = await ups.client.post(
        f"{ups.url}/workitems/{uid}?transaction={owner}",
        content=orjson.dumps(performed()),
        headers=JSON,
    )
    assert late.status_code == 400 and "current state of the Workitem" in warning(late)


async def test_transaction_uid_failures_carry_their_warnings(ups: Running) -> None:
    uid = await scheduled(ups)
    missing = await put_state(ups, uid, state("IN PROGRESS", None))
    assert missing.status_code == 400 and "The Transaction UID is missing." in warning(missing)
    owner = new_uid()
    assert (await put_state(ups, uid, state("IN PROGRESS", owner))).status_code == 200
    wrong = await put_state(ups, uid, state("CANCELED", new_uid()))
    assert wrong.status_code == 400 and "The Transaction UID is incorrect." in warning(wrong)
    taken = await put_state(ups, uid, state("IN PROGRESS", new_uid()))
    assert taken.status_code == 409
    change = orjson.dumps({"00741204": element("LO", "relabelled")})
    unclaimed = await ups.client.post(f"{ups.url}/workitems/{uid}", content=change, headers=JSON)
    assert unclaimed.status_code == 400 and "did not reference a claimed Workitem" in warning(
        unclaimed
    )
    bare = await ups.client.post(f"{ups.url}/workitems/{uid}?{owner}", content=change, headers=JSON)
    assert bare.status_code == 200, bare.text  # the ?{transaction-uid} form of PS3.18 11.6.1
    canceled = await put_state(ups, uid, state("CANCELED", owner))
    assert canceled.status_code == 200
    (dataset,) = (await ups.client.get(f"{ups.url}/workitems/{uid}")).json()
    assert first(dataset, "00741000") == "CANCELED" and first(dataset, "00741204") == "relabelled"


async def test_change_state_payload_holds_state_and_transaction_only(ups: Running) -> None:
    uid = await scheduled(ups)
    payload = {**state("IN PROGRESS", new_uid()), "00741204": element("LO", "x")}
    response = await put_state(ups, uid, payload)
    assert response.status_code == 400 and "00741204" in response.json()["message"]


async def test_request_cancellation(ups: Running) -> None:
    uid = await scheduled(ups)
    reason = orjson.dumps({"00741238": element("LT", "patient left")})
    accepted = await ups.client.post(
        f"{ups.url}/workitems/{uid}/cancelrequest", content=reason, headers=JSON
    )
    assert accepted.status_code == 202, accepted.text
    (dataset,) = (await ups.client.get(f"{ups.url}/workitems/{uid}")).json()
    assert first(dataset, "00741000") == "CANCELED"
    assert first(first(dataset, "00741002"), "00741238") == "patient left"
    again = await ups.client.post(f"{ups.url}/workitems/{uid}/cancelrequest")
    assert again.status_code == 202 and "already in the requested state of CANCELED" in warning(
        again
    )

    busy = await scheduled(ups)
    assert (await put_state(ups, busy, state("IN PROGRESS", new_uid()))).status_code == 200
    nobody = await ups.client.post(f"{ups.url}/workitems/{busy}/cancelrequest")
    assert nobody.status_code == 409 and "The performer cannot be contacted." in warning(nobody)
    bad_requester = await ups.client.post(
        f"{ups.url}/workitems/{busy}/cancelrequest?requester=A\\B"
    )
    assert bad_requester.status_code == 400


async def test_search_matches_pages_and_counts(ups: Running) -> None:
    uids = sorted([await scheduled(ups) for _ in range(5)])
    claimed = uids[1]
    assert (await put_state(ups, claimed, state("IN PROGRESS", new_uid()))).status_code == 200
    found = await ups.client.get(f"{ups.url}/workitems", params={"ProcedureStepState": "SCHEDULED"})
    assert found.status_code == 200 and found.headers["x-total-count"] == "4"
    assert sorted(first(r, "00080018") for r in found.json()) == [u for u in uids if u != claimed]
    page = await ups.client.get(f"{ups.url}/workitems", params={"limit": "2", "offset": "1"})
    assert [first(r, "00080018") for r in page.json()] == uids[1:3]
    assert page.headers["x-total-count"] == "5"
    one = (await ups.client.get(f"{ups.url}/workitems", params={"limit": "1"})).json()[0]
    assert "00741000" in one and "00400400" not in one  # default return keys only
    wider = await ups.client.get(
        f"{ups.url}/workitems",
        params={"limit": "1", "includefield": "CommentsOnTheScheduledProcedureStep"},
    )
    assert "00400400" in wider.json()[0]
    xml = await ups.client.get(
        f"{ups.url}/workitems",
        headers={"accept": 'multipart/related; type="application/dicom+xml"'},
    )
    assert xml.status_code == 200 and xml.content.count(b"<NativeDicomModel") == 5
    for bad, reason in [
        ({"TransactionUID": "1.2"}, "not a matching key"),
        ({"NoSuchAttribute": "x"}, "not a DICOM attribute"),
        ({"ScheduledProcedureStepStartDateTime": "yesterday"}, "DT"),
        ({"limit": "many"}, "limit"),
    ]:
        refused = await ups.client.get(f"{ups.url}/workitems", params=bad)
        assert refused.status_code == 400 and reason in refused.json()["message"], refused.text
