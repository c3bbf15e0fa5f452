"""``pacsflow serve`` over TLS from certificate files, and CORS only for the origins configured."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trustme

from tests.support.servers import free_port, start_server, stop_process


def test_tls_by_certificate_files(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    env = {
        **os.environ,
        "PACSFLOW_TLS_CERT_FILE": str(cert_file),
        "PACSFLOW_TLS_KEY_FILE": str(key_file),
    }
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "pacsflow", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "data")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        url = f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(ca_file))
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                answer = httpx.get(f"{url}/dicom-web/studies", verify=trust, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json() == []
        assert answer.http_version == "HTTP/1.1" and answer.url.scheme == "https"
        # plain HTTP on the TLS port gets no DICOMweb answer
        with contextlib.suppress(httpx.TransportError):
            plain = httpx.get(f"http://127.0.0.1:{port}/dicom-web/studies", timeout=5)
            assert plain.status_code >= 400
        assert f"https://127.0.0.1:{port}/dicom-web" in log.read_text()
    finally:
        stop_process(process)


def test_cors_answers_only_the_configured_origins(tmp_path: Path) -> None:
    viewer = "https://viewer.example.org"
    server = start_server(tmp_path / "data", {"PACSFLOW_CORS_ORIGINS": viewer})
    plain = start_server(tmp_path / "plain")
    try:
        preflight = {
            "Origin": viewer,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = httpx.options(f"{server.url}/studies", headers=preflight, timeout=30)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == viewer
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        found = httpx.get(f"{server.url}/studies", headers={"Origin": viewer}, timeout=30)
        assert found.headers["access-control-allow-origin"] == viewer
        assert "X-Total-Count" in found.headers["access-control-expose-headers"]
        other = {**preflight, "Origin": "https://elsewhere.example.org"}
        refused = httpx.options(f"{server.url}/studies", headers=other, timeout=30)
        assert "access-control-allow-origin" not in refused.headers
        off = httpx.get(f"{plain.url}/studies", headers={"Origin": viewer}, timeout=30)
        assert off.status_code == 200 and "access-control-allow-origin" not in off.headers
    finally:
        server.stop()
        plain.stop()
