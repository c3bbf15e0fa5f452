"""A real OpenID provider for the tests: ``oidc-provider`` (Node.js) started on loopback.

``tests/oidc/provider.mjs`` is the server; ``tests/oidc/setup.sh`` installs the pinned npm
package (the README's test command and ``.ci/run`` run it). Each client may use the
client_credentials grant and gets RFC 9068 JWT access tokens for the audience it names.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port, stop_process

HERE = Path(__file__).resolve().parent
AUDIENCE = "urn:pacsflow"
OTHER_AUDIENCE = "urn:other"
SECRET = "test-secret-of-a-client-0123456789"
SETUP_HINT = "install it as .ci/run does: bash tests/oidc/setup.sh"
# Scopes the provider grants (the plain `scope` claim rule: pacs:{site}:{right}).
SCOPES = [
    f"pacs:{site}:{right}"
    for site in ("default", "a", "b", "*")
    for right in ("read", "write", "delete", "admin")
]
# Clients with the claim shapes of other IdPs (docs/security.md has the matching rules).
CLIENTS: dict[str, dict[str, Any]] = {
    "scoped": {},  # asks for scopes per token request
    "keycloak-a-reader": {"realm_access": {"roles": ["offline_access", "pacs-a-read"]}},
    "entra-b-writer": {"roles": ["Pacs.b.Write", "Pacs.b.Read"]},
    "groups-admin": {"groups": ["/pacs/*/admin"]},
}


@dataclass
class Provider:
    """A running provider: its issuer, and what a test can ask of it."""

    issuer: str
    process: subprocess.Popen[bytes]
    log: Path
    tokens: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def token(self, client: str = "scoped", scope: str = "", audience: str = AUDIENCE) -> str:
        """A fresh access token of ``client`` (client_credentials grant, RFC 6749 4.4)."""
        data = {"grant_type": "client_credentials", "resource": audience}
        if scope:
            data["scope"] = scope
        response = httpx.post(f"{self.issuer}/token", data=data, auth=(client, SECRET), timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def rotate(self, *, retire: bool = False) -> str:
        """A new signing key (the old ones unpublished with ``retire``); its key id."""
        suffix = "?retire=1" if retire else ""
        response = httpx.post(f"{self.issuer}/_test/rotate{suffix}", timeout=30)
        response.raise_for_status()
        return str(response.json()["kid"])

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A JWT with ``claims``, signed by the provider's current key."""
        body = {"claims": claims, "header": header or {}}
        response = httpx.post(f"{self.issuer}/_test/sign", json=body, timeout=30)
        response.raise_for_status()
        return str(response.json()["token"])

    def jwks(self) -> dict[str, Any]:
        document: dict[str, Any] = httpx.get(f"{self.issuer}/jwks", timeout=30).json()
        return document


@contextlib.contextmanager
def run_provider(
    workdir: Path, browser_clients: dict[str, list[str]] | None = None
) -> Iterator[Provider]:
    """Start ``provider.mjs`` on a free loopback port; stop it (by pid) after.

    ``browser_clients`` maps client ids of viewers (authorization code flow) to their
    redirect URIs.
    """
    node = shutil.which("node")
    assert node, f"node is not installed; {SETUP_HINT}"
    assert (HERE / "node_modules" / "oidc-provider").is_dir(), f"no oidc-provider; {SETUP_HINT}"
    port = free_port()
    clients = workdir / "oidc-clients.json"
    setup = {
        "audiences": [AUDIENCE, OTHER_AUDIENCE],
        "scopes": SCOPES,
        "clients": [
            {"client_id": name, "client_secret": SECRET, "claims": claims}
            for name, claims in CLIENTS.items()
        ],
        "browser_clients": [
            {"client_id": name, "redirect_uris": uris}
            for name, uris in (browser_clients or {}).items()
        ],
    }
    clients.write_text(json.dumps(setup))
    log = workdir / f"oidc-provider-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [node, str(HERE / "provider.mjs"), str(port), str(clients)],
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=out,
        )
    ready = threading.Event()

    def watch() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(b"ready "):
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider did not start: {log.read_text()}")
        yield Provider(f"http://127.0.0.1:{port}", process, log)
    finally:
        stop_process(process, timeout=10)
