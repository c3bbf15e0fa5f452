"""Retrieve Capabilities (PS3.18 8.9, Annex H) and the OpenAPI document, made from the routes.

The WADL document lists exactly the resources and methods the app's routes serve (every role,
or the roles behind the gateway), OPTIONS answers on every resource with its Allow header, and
the OpenAPI document is valid OpenAPI 3.1 whose operations carry their media types.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from lxml import etree
from openapi_spec_validator import validate

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from services.app import create_app

WADL = "{http://wadl.dev.java.net/2009/02}"
SAMPLES = {
    "study": "1.2.3",
    "series": "4.5.6",
    "instance": "7.8.9",
    "frames": "1,2",
    "path": "7FE00010",
    "workitem": "1.2.840.10008.5.1.4.34.5",
    "aetitle": "AE1",
    "transaction": "2.25.1",
    "uid": "2.25.2",  # a Non-Patient Instance (PS3.18 12.1.1)
}


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    created = build_container(Settings(data_dir=tmp_path))
    await created.start(listen_for_outcomes=False)
    try:
        yield created
    finally:
        await created.close()


def _client(container: Container, roles: tuple[str, ...] | None = None) -> httpx.AsyncClient:
    app = create_app(container, roles) if roles else create_app(container)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://pacsflow")


def _routes(container: Container, roles: tuple[str, ...] | None = None) -> dict[str, set[str]]:
    """Path (below /dicom-web, parameters as {name}) -> methods, from the app's routes."""
    app = create_app(container, roles) if roles else create_app(container)
    found: dict[str, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if not path.startswith("/dicom-web/"):
            continue
        original = route.original_route
        websocket = {"GET"} if isinstance(original, APIWebSocketRoute) else set()
        methods = websocket or set(route.methods or ()) - {"OPTIONS"}
        if not isinstance(original, APIRoute | APIWebSocketRoute):
            continue
        if methods:
            key = re.sub(r"\{(\w+):path\}", r"{\1}", path.removeprefix("/dicom-web/"))
            found.setdefault(key, set()).update(methods)
    return found


def _described(document: bytes) -> dict[str, set[str]]:
    """Path -> methods of every resource of a WADL document (nested paths joined)."""
    root = etree.fromstring(document)
    assert root.tag == f"{WADL}application"
    [resources] = root.findall(f"{WADL}resources")
    found: dict[str, set[str]] = {}

    def walk(element: Any, prefix: str) -> None:
        for resource in element.findall(f"{WADL}resource"):
            path = f"{prefix}/{resource.get('path')}".strip("/")
            methods = {m.get("name") for m in resource.findall(f"{WADL}method")}
            assert methods, f"{path}: a resource without a method"
            found[path] = methods
            walk(resource, path)

    walk(resources, "")
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)


async def test_the_description_of_the_root_lists_every_route(container: Container) -> None:
    async with _client(container) as client:
        answer = await client.request("OPTIONS", "/dicom-web")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.sun.wadl+xml"
    assert answer.headers["allow"] == "OPTIONS"
    root = etree.fromstring(answer.content)
    assert root.find(f"{WADL}resources").get("base") == "http://pacsflow/dicom-web/"
    assert _described(answer.content) == _routes(container)


async def test_every_resource_answers_options_with_its_methods(container: Container) -> None:
    routes = _routes(container)
    async with _client(container) as client:
        for path, methods in routes.items():
            target = _concrete(path)
            answer = await client.request("OPTIONS", f"/dicom-web/{target}")

            assert answer.status_code == 200, path
            assert set(answer.headers["allow"].split(", ")) == {*methods, "OPTIONS"}, path
            described = _described(answer.content)
            assert described[target] == methods, path
            below = {p: m for p, m in routes.items() if p.startswith(f"{path}/")}
            expected = {target: methods} | {target + p[len(path) :]: m for p, m in below.items()}
            assert described == expected, path


async def test_a_resource_that_does_not_exist_is_404_and_only_wadl_is_offered(
    container: Container,
) -> None:
    async with _client(container) as client:
        missing = await client.request("OPTIONS", "/dicom-web/studies/1.2.3/nothing")
        xml = await client.request("OPTIONS", "/dicom-web", headers={"Accept": "application/xml"})
        json = await client.request("OPTIONS", "/dicom-web", headers={"Accept": "application/json"})

    assert missing.status_code == 404
    assert xml.headers["content-type"] == "application/xml"
    assert json.status_code == 406


async def test_a_role_describes_its_routes_or_those_behind_the_gateway(
    container: Container, tmp_path: Path
) -> None:
    async with _client(container, ("qido",)) as client:
        alone = _described((await client.request("OPTIONS", "/dicom-web")).content)
        refused = await client.request("OPTIONS", "/dicom-web/commitment-requests/2.25.1")

    gateway = build_container(
        Settings(data_dir=tmp_path / "g", gateway_roles="stow,qido,wado,ups,commitment")
    )
    async with _client(gateway, ("qido",)) as client:
        behind = _described((await client.request("OPTIONS", "/dicom-web")).content)
        spec = (await client.get("/dicom-web/openapi.json")).json()

    assert alone == _routes(container, ("qido",))
    assert "studies/{study}" not in alone and "studies" in alone
    assert alone["studies"] == {"GET", "HEAD"}
    assert refused.status_code == 404
    assert behind == _routes(container)
    assert "/dicom-web/commitment-requests/{transaction}" in spec["paths"]


async def test_the_openapi_document_is_valid_and_says_what_each_route_answers(
    container: Container,
) -> None:
    async with _client(container) as client:
        spec = (await client.get("/dicom-web/openapi.json")).json()

    validate(spec)
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids))
    gets = {(p, o["operationId"]) for p, m, o in operations if m == "get"}
    heads = {(p, o["operationId"].removesuffix("_head")) for p, m, o in operations if m == "head"}
    websocket = ("/dicom-web/subscribers/{aetitle}", "open_event_channel")
    assert heads == gets - {websocket}
    study = spec["paths"]["/dicom-web/studies/{study}"]["get"]
    assert set(study["responses"]["200"]["content"]) >= {
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/octet-stream"',
        "application/zip",
    }
    search = spec["paths"]["/dicom-web/studies"]["get"]
    assert {"includefield", "limit", "offset", "fuzzymatching"} <= {
        p["name"] for p in search["parameters"]
    }
    store = spec["paths"]["/dicom-web/studies"]["post"]
    assert list(store["requestBody"]["content"]) == [
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/dicom+json"',
        'multipart/related; type="application/dicom+xml"',
    ]
    commit = spec["paths"]["/dicom-web/commitment-requests/{transaction}"]["post"]
    assert set(commit["responses"]) >= {"200", "202", "409", "4XX"}
    assert "422" not in {status for _, _, o in operations for status in o["responses"]}
