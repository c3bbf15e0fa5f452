"""The environment of a ``pacsflow`` process with authentication on, against the test provider."""

from __future__ import annotations

import json

import requests
from dicomweb_client.api import DICOMwebClient

from tests.oidc.provider import AUDIENCE, Provider

SITES = "a,b"
RULES = [
    {"claim": "scope", "pattern": "pacs:{site}:{right}"},
    {"claim": "realm_access.roles", "pattern": "pacs-{site}-{right}"},
    {"claim": "roles", "pattern": "Pacs.{site}.{right}"},
    {"claim": "groups", "pattern": "/pacs/{site}/{right}"},
]


def auth_env(provider: Provider, **extra: str) -> dict[str, str]:
    """``PACSFLOW_*`` variables: bearer tokens of ``provider``, sites ``a`` and ``b``."""
    return {
        "PACSFLOW_AUTH_ISSUER": provider.issuer,
        "PACSFLOW_AUTH_AUDIENCE": AUDIENCE,
        "PACSFLOW_AUTH_RIGHTS": json.dumps(RULES),
        "PACSFLOW_SITES": SITES,
        **{f"PACSFLOW_{key.upper()}": value for key, value in extra.items()},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client(url: str, token: str) -> DICOMwebClient:
    """dicomweb-client with a requests session that sends the bearer token."""
    session = requests.Session()
    session.headers.update(bearer(token))
    return DICOMwebClient(url=url, session=session)
