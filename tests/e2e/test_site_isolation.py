"""A site's data is never visible, retrievable, changeable or subscribable from another site.

Site ``b`` holds a study, a Color Palette (a Non-Patient Instance), a workitem with a
subscriber and a storage commitment request; a token with every right on site ``a`` walks every
route of every service (taken from the routers themselves, so a new route is walked too) with
``b``'s UIDs: through ``/sites/b/...`` each is refused (403), through ``/sites/a/...`` and
``/dicom-web/...`` nothing of ``b`` is found, and ``a``'s event channel of the same AE title
gets none of ``b``'s events. Both modes: embedded (SQLite index and workitem store, the SQLite
journal) and pipeline (Elasticsearch-protocol index and workitem store, Kafka, S3), with tokens
from the real OpenID provider.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pydicom
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute

from pacsflow.nonpatient.resources import RESOURCES
from services.app import ROUTERS
from tests.oidc.provider import Provider
from tests.support.auth_env import auth_env, bearer
from tests.support.corpus import CORPUS
from tests.support.dicomweb import stow_file
from tests.support.nonpatient import COLOR_PALETTE
from tests.support.servers import MODES, Server, start_deployment
from tests.support.workitems import AFFECTED_UID, STATE, first, new_uid, workitem

CT = CORPUS / "modality" / "CT_small.dcm"
JSON = {"Content-Type": "application/dicom+json"}
AE = "WATCHER"

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module", params=MODES)
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, oidc: Provider
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp(f"sites-{request.param}")
    s3, es = (
        (request.getfixturevalue("s3_endpoint"), request.getfixturevalue("es_url"))
        if request.param == "pipeline"
        else ("", "")
    )
    srv = start_deployment(root, request.param, s3, es, auth_env(oidc))
    try:
        yield srv
    finally:
        srv.stop()


def root(server: Server, site: str | None) -> str:
    base = f"http://127.0.0.1:{server.port}"
    return f"{base}/sites/{site}/dicom-web" if site else f"{base}/dicom-web"


def routes() -> list[tuple[str, str]]:
    """(method, path) of every DICOMweb route, the WebSocket as "WEBSOCKET"."""
    found = []
    for routers in ROUTERS.values():
        for router in routers:
            for route in router.routes:
                if isinstance(route, APIWebSocketRoute):
                    found.append(("WEBSOCKET", route.path))
                elif isinstance(route, APIRoute):
                    found += [(method, route.path) for method in sorted(route.methods)]
    return found


def fill(path: str, uids: dict[str, str]) -> str:
    values = {**uids, "frames": "1", "path": "7FE00010", "aetitle": AE}
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: values[m.group(1)], path)


@pytest.fixture(scope="module")
def site_b(server: Server, oidc: Provider) -> dict[str, str]:
    """A study, a color palette, a workitem and a subscription on site b."""
    token = oidc.token("scoped", "pacs:b:read pacs:b:write")
    assert stow_file(root(server, "b"), CT).status_code == 401  # not without a token
    for resource, path in (("studies", CT), ("color-palettes", COLOR_PALETTE)):
        response = httpx.post(
            f"{root(server, 'b')}/{resource}",
            content=_multipart(path.read_bytes()),
            headers={**bearer(token), "Content-Type": _CONTENT_TYPE},
            timeout=300,
        )
        assert response.status_code == 200, response.text
    header = pydicom.dcmread(CT, stop_before_pixels=True)
    item = new_uid()
    created = httpx.post(
        f"{root(server, 'b')}/workitems?workitem={item}",
        content=orjson.dumps(workitem()),
        headers={**bearer(token), **JSON},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    subscribed = httpx.post(
        f"{root(server, 'b')}/workitems/{item}/subscribers/{AE}",
        headers=bearer(token),
        timeout=60,
    )
    assert subscribed.status_code == 201, subscribed.text
    transaction = new_uid()
    committed = httpx.post(
        f"{root(server, 'b')}/commitment-requests/{transaction}",
        content=orjson.dumps(
            {
                "00081199": {
                    "vr": "SQ",
                    "Value": [
                        {
                            "00081150": {"vr": "UI", "Value": [str(header.SOPClassUID)]},
                            "00081155": {"vr": "UI", "Value": [str(header.SOPInstanceUID)]},
                        }
                    ],
                }
            }
        ),
        headers={**bearer(token), **JSON},
        timeout=60,
    )
    assert committed.status_code in (200, 202), committed.text
    return {
        "study": str(header.StudyInstanceUID),
        "series": str(header.SeriesInstanceUID),
        "instance": str(header.SOPInstanceUID),
        "uid": str(pydicom.dcmread(COLOR_PALETTE).SOPInstanceUID),
        "workitem": item,
        "transaction": transaction,
        "token": token,
    }


_BOUNDARY = "site-isolation-boundary"
_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={_BOUNDARY}'


def _multipart(data: bytes) -> bytes:
    head = f"--{_BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    return head + data + f"\r\n--{_BOUNDARY}--\r\n".encode()


async def _channel_status(url: str, token: str) -> int:
    try:
        async with websockets.connect(url, additional_headers=bearer(token), open_timeout=30):
            return 101
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


def _call(method: str, url: str, token: str) -> httpx.Response | int:
    if method == "WEBSOCKET":
        return asyncio.run(_channel_status(url.replace("http", "ws", 1), token))
    body = orjson.dumps({}) if method in ("POST", "PUT") else None
    return httpx.request(method, url, content=body, headers={**bearer(token), **JSON}, timeout=120)


def _status(answer: httpx.Response | int) -> int:
    return answer if isinstance(answer, int) else answer.status_code


def test_every_route_of_site_b_refuses_a_token_of_site_a(
    server: Server, oidc: Provider, site_b: dict[str, str]
) -> None:
    token_a = oidc.token("scoped", "pacs:a:read pacs:a:write pacs:a:delete pacs:a:admin")
    walked = routes()
    assert len(walked) > 30
    for site in ("b", None):  # site b by name, and the default site
        for method, path in walked:
            answer = _call(method, root(server, site) + fill(path, site_b), token_a)
            assert _status(answer) == 403, (site, method, path, _status(answer))


def test_site_a_finds_nothing_of_site_b(
    server: Server, oidc: Provider, site_b: dict[str, str]
) -> None:
    token_a = oidc.token("scoped", "pacs:a:read pacs:a:write pacs:a:delete pacs:a:admin")
    leaked: list[Any] = []
    for method, path in routes():
        if method == "POST" and path.split("/")[1] in ("studies", *RESOURCES):
            continue  # STOW to site a writes to a; it reads nothing of b
        url = root(server, "a") + fill(path, site_b)
        answer = _call(method, url, token_a)
        if method == "WEBSOCKET":
            assert answer == 101  # a's own channel of the AE title: checked below
            continue
        assert isinstance(answer, httpx.Response)
        searched = method in ("GET", "HEAD") and (
            re.search(r"/(studies|series|instances|workitems)$", path) or path[1:] in RESOURCES
        )
        if searched:  # a search of a finds nothing: [] (HEAD: the length of [])
            found = answer.json() if method == "GET" else answer.headers.get("content-length")
            if answer.status_code != 200 or found not in ([], "2"):
                leaked.append((method, path, answer.status_code, answer.text[:200]))
        elif path.startswith("/changefeed"):  # a's own feed: 200, naming nothing of b (below)
            if method in ("GET", "HEAD") and answer.status_code != 200:
                leaked.append((method, path, answer.status_code, answer.text[:200]))
        elif answer.status_code < 400 or answer.status_code >= 500:
            leaked.append((method, path, answer.status_code, answer.text[:200]))
        for uid in (site_b["study"], site_b["series"], site_b["instance"], site_b["uid"]):
            if uid in answer.text and uid not in url:
                leaked.append((method, path, "names", uid))
    assert leaked == []
    # site b still has everything
    token_b = site_b["token"]
    found = httpx.get(f"{root(server, 'b')}/studies", headers=bearer(token_b), timeout=60)
    assert [s["0020000D"]["Value"][0] for s in found.json()] == [site_b["study"]]
    item = httpx.get(
        f"{root(server, 'b')}/workitems/{site_b['workitem']}", headers=bearer(token_b), timeout=60
    )
    assert item.status_code == 200 and first(item.json()[0], STATE) == "SCHEDULED"


def test_the_event_channel_of_site_a_gets_no_events_of_site_b(
    server: Server, oidc: Provider, site_b: dict[str, str]
) -> None:
    token_a = oidc.token("scoped", "pacs:a:read pacs:a:write")
    own = new_uid()

    async def scenario() -> list[str]:
        channel = root(server, "a").replace("http", "ws", 1) + f"/subscribers/{AE}"
        async with httpx.AsyncClient(timeout=60) as http:
            created = await http.post(
                f"{root(server, 'a')}/workitems?workitem={own}",
                content=orjson.dumps(workitem()),
                headers={**bearer(token_a), **JSON},
            )
            assert created.status_code == 201
            async with websockets.connect(channel, additional_headers=bearer(token_a)) as ws:
                # b's workitem changes (b's subscriber WATCHER is told on b's channel only)...
                cancel = await http.post(
                    f"{root(server, 'b')}/workitems/{site_b['workitem']}/cancelrequest",
                    headers=bearer(site_b["token"]),
                )
                assert cancel.status_code == 202, cancel.text
                # ...then a's own workitem gets a subscriber WATCHER on a: its report comes first
                subscribed = await http.post(
                    f"{root(server, 'a')}/workitems/{own}/subscribers/{AE}",
                    headers=bearer(token_a),
                )
                assert subscribed.status_code == 201
                report = orjson.loads(await asyncio.wait_for(ws.recv(), 120))
                return [first(report, AFFECTED_UID)]

    assert asyncio.run(scenario()) == [own]
