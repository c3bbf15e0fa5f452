"""``pacsflow serve`` with bearer authentication against a real OpenID provider.

Tokens come from oidc-provider (client_credentials); dicomweb-client (with a bearer session)
and raw HTTP drive every service; refused tokens get 401 with the RFC 6750 challenge, missing
rights 403; the Worklist's WebSocket authenticates by header or ``access_token``; key rotation
at the provider is picked up without a restart; every decision is on the ``audit`` topic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import pydicom
import pytest
import rnc2rng
import websockets
from lxml import etree
from pydicom.uid import generate_uid

from pacsflow.audit.trail import AUDIT_TOPIC
from pacsflow.container import build_container
from tests.oidc.provider import OTHER_AUDIENCE, Provider
from tests.support.auth_env import auth_env, bearer, client
from tests.support.corpus import CORPUS
from tests.support.deletion import image
from tests.support.dicomweb import stow_file
from tests.support.servers import Server, start_server

CT = CORPUS / "modality" / "CT_small.dcm"
SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "ps3.15-audit-message.rnc"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, oidc: Provider) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("auth")
    env = auth_env(oidc, auth_jwks_refresh_seconds="1")
    srv = start_server(root / "data", env)
    try:
        yield srv
    finally:
        srv.stop()


def site_url(server: Server, site: str) -> str:
    return f"http://127.0.0.1:{server.port}/sites/{site}/dicom-web"


def test_dicomweb_client_stores_searches_and_retrieves_with_a_token(
    server: Server, oidc: Provider
) -> None:
    url = site_url(server, "a")
    writer = client(url, oidc.token("scoped", "pacs:a:read pacs:a:write"))
    dataset = pydicom.dcmread(CT)
    writer.store_instances([dataset])
    reader = client(url, oidc.token("keycloak-a-reader"))  # realm_access.roles: pacs-a-read
    study = str(dataset.StudyInstanceUID)
    found = reader.search_for_studies(search_filters={"StudyInstanceUID": study})
    assert [s["0020000D"]["Value"][0] for s in found] == [study]
    series, sop = str(dataset.SeriesInstanceUID), str(dataset.SOPInstanceUID)
    retrieved = reader.retrieve_instance(study, series, sop)
    assert retrieved.SOPInstanceUID == sop
    metadata = reader.retrieve_study_metadata(study)
    assert metadata[0]["00080018"]["Value"] == [sop]
    frames = reader.retrieve_instance_frames(study, series, sop, frame_numbers=[1])
    assert len(frames) == 1 and len(frames[0]) > 0
    # a reader cannot store, the default site is not theirs
    with pytest.raises(Exception, match="403"):
        reader.store_instances([dataset])
    default = client(server.url, oidc.token("keycloak-a-reader"))
    with pytest.raises(Exception, match="403"):
        default.search_for_studies()


def test_only_the_delete_right_deletes(server: Server, oidc: Provider) -> None:
    url = site_url(server, "a")
    writer = client(url, oidc.token("scoped", "pacs:a:read pacs:a:write"))
    study, series = generate_uid(), generate_uid()
    writer.store_instances([pydicom.dcmread(BytesIO(image(study, series)))])

    with pytest.raises(Exception, match="403"):
        writer.delete_study(study)
    client(url, oidc.token("scoped", "pacs:a:delete")).delete_study(study)

    assert writer.search_for_studies(search_filters={"StudyInstanceUID": study}) == []


def test_refused_tokens_get_401_with_the_bearer_challenge(server: Server, oidc: Provider) -> None:
    url = f"{site_url(server, 'a')}/studies"
    missing = httpx.get(url, timeout=30)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="pacsflow"'  # RFC 6750 3.1
    now = int(time.time())
    expired = oidc.sign(
        {
            "iss": oidc.issuer,
            "aud": "urn:pacsflow",
            "sub": "x",
            "exp": now - 3600,
            "scope": "pacs:a:read",
        }
    )
    for token in (
        expired,
        oidc.token("scoped", "pacs:a:read", audience=OTHER_AUDIENCE),
        "not.a.token",
    ):
        refused = httpx.get(url, headers=bearer(token), timeout=30)
        assert refused.status_code == 401, refused.text
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="pacsflow", error="invalid_token"'), challenge
    forbidden = httpx.get(url, headers=bearer(oidc.token("entra-b-writer")), timeout=30)
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    unknown_site = httpx.get(
        f"http://127.0.0.1:{server.port}/sites/zzz/dicom-web/studies",
        headers=bearer(oidc.token("groups-admin")),
        timeout=30,
    )
    assert unknown_site.status_code == 404
    assert httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=30).status_code == 200


def test_the_worklist_websocket_authenticates(server: Server, oidc: Provider) -> None:
    channel = site_url(server, "a").replace("http", "ws", 1) + "/subscribers/VIEWER"
    reader = oidc.token("keycloak-a-reader")

    async def attempt(url: str, headers: dict[str, str] | None = None) -> int:
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=30):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    async def all_attempts() -> list[int]:
        return [
            await attempt(channel),
            await attempt(f"{channel}?access_token=garbage"),
            await attempt(channel, bearer(oidc.token("entra-b-writer"))),  # no right on a
            await attempt(channel, bearer(reader)),  # the header
            await attempt(f"{channel}?access_token={reader}"),  # browsers: the query parameter
        ]

    assert asyncio.run(all_attempts()) == [401, 401, 403, 101, 101]
    log = server.log.read_text()
    assert reader not in log and "access_token" not in log  # the token never reaches the log


def test_key_rotation_is_picked_up_without_a_restart(server: Server, oidc: Provider) -> None:
    url = f"{site_url(server, 'a')}/studies"
    assert httpx.get(url, headers=bearer(oidc.token("keycloak-a-reader")), timeout=30).is_success
    oidc.rotate(retire=True)
    token = oidc.token("keycloak-a-reader")  # signed with a key the server has never seen
    deadline = time.monotonic() + 20  # PACSFLOW_AUTH_JWKS_REFRESH_SECONDS=1 bounds the wait
    accepted = 0  # by every HTTP worker: ten answers in a row, each on a new connection
    while accepted < 10:
        status = httpx.get(url, headers=bearer(token), timeout=30).status_code
        assert status in (200, 401), status
        if status == 401:
            assert time.monotonic() < deadline, "the new key was not picked up"
            accepted = 0
            time.sleep(0.2)
        else:
            accepted += 1
    assert server.process.poll() is None


async def audit_messages(server: Server) -> list[etree._Element]:
    container = build_container(server.settings())
    await container.bus.start()
    try:
        subscription = await container.bus.subscribe(AUDIT_TOPIC, f"test-{uuid.uuid4().hex}")
        messages, batch = [], await subscription.fetch(1000, 2.0)
        while batch:
            messages += batch
            batch = await subscription.fetch(1000, 0.5)
        await subscription.close()
    finally:
        await container.bus.close()
    return [etree.fromstring(m.value) for m in messages]


def test_every_decision_is_audited_and_valid(server: Server, oidc: Provider) -> None:
    url = site_url(server, "a")
    stored = stow_file(url, CT)
    assert stored.status_code == 401  # no token: refused before anything is read
    writer = oidc.token("scoped", "pacs:a:write pacs:a:read")
    response = httpx.post(
        f"{url}/studies",
        content=CT.read_bytes(),
        headers={**bearer(writer), "Content-Type": "application/dicom"},
        timeout=30,
    )
    assert response.status_code == 415  # not multipart: a failed store is audited too
    httpx.get(f"{url}/studies?PatientName=A*", headers=bearer(writer), timeout=30)
    httpx.get(f"{url}/studies", headers=bearer("forged.token.x"), timeout=30)
    httpx.get(f"{site_url(server, 'b')}/studies", headers=bearer(writer), timeout=30)
    schema = etree.RelaxNG(
        etree.fromstring(
            rnc2rng.dumps(rnc2rng.loads(SCHEMA.read_text().replace("##", "#"))).encode()
        )
    )
    wanted = {
        ("Query", "0"),
        ("DICOM Instances Transferred", "4"),
        ("User Authentication", "4"),
        ("Security Alert", "4"),
    }
    deadline = time.monotonic() + 60
    while True:  # the audit records are published after the answers: wait for them
        messages = asyncio.run(audit_messages(server))
        events = {
            (
                m.find("EventIdentification/EventID").get("originalText"),  # type: ignore[union-attr]
                m.find("EventIdentification").get("EventOutcomeIndicator"),  # type: ignore[union-attr]
            )
            for m in messages
        }
        if wanted <= events or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for message in messages:
        assert schema.validate(message), schema.error_log
    assert ("Query", "0") in events
    assert ("DICOM Instances Transferred", "4") in events
    assert ("User Authentication", "4") in events
    assert ("Security Alert", "4") in events
    queries = [
        m
        for m in messages
        if m.find("EventIdentification/EventID").get("originalText") == "Query"  # type: ignore[union-attr]
    ]
    users = {p.get("UserID") for m in queries for p in m.iter("ActiveParticipant")}
    assert "scoped" in users
