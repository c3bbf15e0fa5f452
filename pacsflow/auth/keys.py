"""The issuer's signing keys: OIDC discovery, the JWKS, a cache and its refresh on rotation.

OpenID Connect Discovery 1.0 (section 4): ``{issuer}/.well-known/openid-configuration`` names
the ``jwks_uri`` and must name the same issuer; the JSON Web Key Set there (RFC 7517 5) holds
the public keys. Keys are cached; the set is fetched again when it is older than
``jwks_max_age_seconds`` or when a token names a key id (``kid``) the cache does not hold - an
IdP that rotates its keys publishes the new key before it signs with it - but at most once per
``jwks_refresh_seconds``, so tokens with made-up key ids cannot make pacsflow flood the IdP.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from pacsflow.auth.settings import AuthSettings
from pacsflow.errors import ServiceUnavailable

__all__ = ["InvalidToken", "KeyCache", "PublicKey"]

log = logging.getLogger(__name__)

PublicKey = RSAKey | ECKey | OKPKey
_KEY_TYPES: Final[dict[str, type[PublicKey]]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
_FAMILY: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_MAX_DOCUMENT_BYTES: Final = 1 << 20
_TIMEOUT: Final = 5.0


class InvalidToken(Exception):
    """A bearer token that is not accepted; the message says why (RFC 6750 3.1)."""


class KeyCache:
    """The issuer's public signing keys by key id, fetched as the module docstring says."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._keys: dict[str, PublicKey] = {}
        self._jwks_url = settings.jwks_url or None
        self._fetched: float | None = None
        self._attempted: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str | None, alg: str) -> PublicKey:
        """The key that verifies a token with header ``kid`` and ``alg``; ``InvalidToken``."""
        now = self.clock()
        stale = self._fetched is None or now - self._fetched > self.settings.jwks_max_age_seconds
        if stale or (kid is not None and kid not in self._keys and self._may_refresh(now)):
            await self._refresh()
        family = _FAMILY.get(alg[:2])
        if kid is None:
            usable = [k for k in self._keys.values() if k.key_type == family]
            if len(usable) != 1:
                raise InvalidToken("the token names no key id (kid)")
            return usable[0]
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("the token is signed with a key the issuer does not publish")
        if key.key_type != family or key.get("alg", alg) != alg:
            raise InvalidToken(f"key {kid} is not a key for {alg}")
        return key

    def holds(self, kid: str) -> bool:
        """Whether the key ``kid`` is among the keys last fetched ("" : a token without kid)."""
        return kid in self._keys or (not kid and bool(self._keys))

    def _may_refresh(self, now: float) -> bool:
        return self._attempted is None or now - self._attempted >= (
            self.settings.jwks_refresh_seconds
        )

    async def _refresh(self) -> None:
        """Fetch the key set (once for concurrent callers); keep the old keys if it fails."""
        started = self.clock()
        async with self._lock:
            if self._attempted is not None and self._attempted >= started:
                return  # another request fetched while this one waited
            self._attempted = self.clock()
            try:
                self._keys = await self._fetch()
                self._fetched = self.clock()
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                log.warning("the issuer's keys could not be fetched: %s", exc)
                if not self._keys:
                    raise ServiceUnavailable("the token issuer's keys cannot be fetched") from exc

    async def _fetch(self) -> dict[str, PublicKey]:
        verify: ssl.SSLContext | bool = True
        if self.settings.ca_certs:
            verify = ssl.create_default_context(cafile=self.settings.ca_certs)
        async with httpx.AsyncClient(timeout=_TIMEOUT, verify=verify) as client:
            if self._jwks_url is None:
                issuer = self.settings.issuer.rstrip("/")
                found = await _document(client, f"{issuer}/.well-known/openid-configuration")
                if found.get("issuer") != self.settings.issuer:
                    raise ValueError(f"the discovery document names issuer {found.get('issuer')}")
                if not isinstance(found.get("jwks_uri"), str):
                    raise ValueError("the discovery document names no jwks_uri")
                self._jwks_url = found["jwks_uri"]
            document = await _document(client, str(self._jwks_url))
        self.fetches += 1
        keys: dict[str, PublicKey] = {}
        for entry in document.get("keys", []):
            kind = _KEY_TYPES.get(str(entry.get("kty"))) if isinstance(entry, dict) else None
            if kind is None or entry.get("use", "sig") != "sig" or "d" in entry:
                continue  # encryption keys, unknown types and (wrongly published) private keys
            key = kind.import_key(entry)
            keys[entry.get("kid") or key.thumbprint()] = key
        log.info("fetched %d signing keys of %s", len(keys), self.settings.issuer)
        return keys


async def _document(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """A JSON object at ``url`` (at most 1 MiB)."""
    response = await client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} is larger than {_MAX_DOCUMENT_BYTES} bytes")
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError(f"{url} is not a JSON object")
    return document
