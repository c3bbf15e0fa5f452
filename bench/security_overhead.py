"""The cost of authentication and auditing per request: ``python -m bench.security_overhead``.

Starts ``pacsflow serve`` three times (no audit and no authentication; the audit trail; the
audit trail and bearer tokens of a real OpenID provider, tests/oidc), stores one instance and
times sequential ``GET /dicom-web/studies`` requests; prints the median and 95th percentile.
Needs the test extra and ``bash tests/oidc/setup.sh``. Results: docs/security.md.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.oidc.provider import run_provider
from tests.support.auth_env import auth_env, bearer
from tests.support.corpus import CORPUS
from tests.support.dicomweb import stow_file
from tests.support.servers import start_server

REQUESTS = 300


def timed(url: str, headers: dict[str, str]) -> tuple[float, float]:
    """Median and 95th percentile in ms of ``REQUESTS`` searches (after 20 to warm up)."""
    times = []
    with httpx.Client(timeout=30) as client:
        for _ in range(20):
            client.get(f"{url}/studies", headers=headers).raise_for_status()
        for _ in range(REQUESTS):
            started = time.perf_counter()
            client.get(f"{url}/studies", headers=headers).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, statistics.quantiles(times, n=20)[18] * 1000


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="pacsflow-security-overhead-"))
    try:
        with run_provider(root) as provider:
            token = provider.token("scoped", "pacs:default:read pacs:default:write")
            cases = [
                ("no audit, no authentication", {"PACSFLOW_AUDIT_ENABLED": "false"}, {}),
                ("audit", {}, {}),
                ("audit and bearer tokens", auth_env(provider), bearer(token)),
            ]
            for number, (name, env, headers) in enumerate(cases):
                server = start_server(root / str(number) / "data", env)
                try:
                    source = CORPUS / "modality" / "CT_small.dcm"
                    stow_file(server.url, source, headers=headers).raise_for_status()
                    median, p95 = timed(server.url, headers)
                    print(f"{name}: median {median:.2f} ms, p95 {p95:.2f} ms")
                finally:
                    server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
