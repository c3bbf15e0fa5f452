"""Bearer token verification (RFC 6750, RFC 7519, RFC 9068) with joserfc: who sends a request.

The ``alg`` of the token's header must be one of the configured asymmetric algorithms before
any key is looked up (RFC 8725 3.1: never ``none``, never an HMAC keyed with a public key);
the signature is checked with the issuer's key of that ``kid`` (``pacsflow.auth.keys``); then
``iss`` must be the issuer, ``aud`` one of the audiences, ``exp`` in the future and ``nbf``
(when present) in the past, each within ``leeway_seconds`` of clock skew (RFC 7519 4.1).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)

from pacsflow.auth.keys import InvalidToken, KeyCache
from pacsflow.auth.rights import Principal, grants
from pacsflow.auth.settings import AuthSettings

__all__ = ["MissingToken", "TokenVerifier", "bearer_token"]

_MAX_TOKEN_BYTES: Final = 16 * 1024
_CACHED: Final = 4096  # verified tokens kept, so a viewer's hundreds of requests verify once
_NAME_CLAIMS: Final = ("preferred_username", "upn", "email", "client_id", "azp", "appid")


class MissingToken(Exception):
    """The request carries no bearer token (RFC 6750 3.1: answered without an error code)."""


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 2.1); ``MissingToken``."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken("the request carries no bearer token")
    return token.strip()


class TokenVerifier:
    """Verifies tokens of one issuer and maps their claims to a ``Principal``."""

    def __init__(
        self,
        settings: AuthSettings,
        keys: KeyCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys or KeyCache(settings)
        self.clock = clock
        self._verified: OrderedDict[bytes, tuple[Principal, float, str]] = OrderedDict()

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; ``InvalidToken`` saying why it is refused."""
        if len(token) > _MAX_TOKEN_BYTES or not token.isascii():
            raise InvalidToken("the token is not a compact JWS")
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("the token is not a compact JWS") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise InvalidToken(f"tokens signed with {str(alg)[:20]!r} are not accepted")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, alg)
        try:
            verified = jwt.decode(token, key, algorithms=[alg])
        except BadSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"the token cannot be read: {type(exc).__name__}") from None
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=self.settings.leeway_seconds,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "values": self.settings.audience},
            exp={"essential": True},
        )
        try:
            registry.validate(verified.claims)
        except ExpiredTokenError:
            raise InvalidToken("the token has expired") from None
        except MissingClaimError as exc:
            raise InvalidToken(f"the token lacks the claim {exc.claim}") from None
        except InvalidClaimError as exc:
            raise InvalidToken(f"the token's {exc.claim} claim is not accepted") from None
        except JoseError as exc:
            raise InvalidToken(f"the token's claims are not accepted: {exc.error}") from None
        return dict(verified.claims)

    async def principal(self, token: str) -> Principal:
        """Who ``token`` names and their rights (``pacsflow.auth.rights``).

        A verified token is remembered until it expires or the issuer stops publishing its key
        (at most ``_CACHED`` of them): the next request with it is not verified again.
        """
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._verified.get(digest)
        if cached is not None and self.clock() < cached[1] and self.keys.holds(cached[2]):
            self._verified.move_to_end(digest)
            return cached[0]
        self._verified.pop(digest, None)
        claims = await self.claims(token)
        kid = jws.extract_compact(token.encode()).protected.get("kid")
        name = next((str(claims[c]) for c in _NAME_CLAIMS if isinstance(claims.get(c), str)), None)
        principal = Principal(
            subject=str(claims.get("sub") or name or "unknown"),
            name=name,
            issuer=self.settings.issuer,
            rights=grants(claims, self.settings.rights),
        )
        self._verified[digest] = (principal, float(claims["exp"]), str(kid or ""))
        if len(self._verified) > _CACHED:
            self._verified.popitem(last=False)
        return principal
