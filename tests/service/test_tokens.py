"""Bearer token verification against a real OpenID provider (oidc-provider on loopback).

The verifier (``pacsflow.auth.TokenVerifier``) discovers the issuer, fetches its keys and
checks real access tokens; tokens the provider would not issue (expired, other issuer) are
signed by the provider's own key through its test control. The key cache's clock is a test
clock, so the refresh bound is counted, not timed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from pacsflow.auth import AuthSettings, InvalidToken, KeyCache, Right, RightRule, TokenVerifier
from pacsflow.errors import ServiceUnavailable
from tests.oidc.provider import AUDIENCE, OTHER_AUDIENCE, Provider

RULES = [
    RightRule(claim="scope", pattern="pacs:{site}:{right}"),
    RightRule(claim="realm_access.roles", pattern="pacs-{site}-{right}"),
    RightRule(claim="roles", pattern="Pacs.{site}.{right}"),
    RightRule(claim="groups", pattern="/pacs/{site}/{right}"),
]


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(provider: Provider, **changes: Any) -> AuthSettings:
    return AuthSettings(issuer=provider.issuer, audience=[AUDIENCE], rights=RULES, **changes)


def verifier(provider: Provider, **changes: Any) -> tuple[TokenVerifier, Clock]:
    clock = Clock()
    config = settings(provider, **changes)
    return TokenVerifier(config, KeyCache(config, clock=clock)), clock


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(provider: Provider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": provider.issuer, "aud": AUDIENCE, "sub": "crafted", "iat": now,
            "exp": now + 300, "scope": "pacs:a:read", **changes}  # fmt: skip


async def refused(verify: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verify.principal(token)
    return str(caught.value)


async def test_a_real_token_names_its_client_and_its_rights(oidc: Provider) -> None:
    verify, _ = verifier(oidc)
    principal = await verify.principal(oidc.token("scoped", "pacs:a:read pacs:b:write"))
    assert principal.subject == "scoped" and principal.name == "scoped"
    assert principal.may("a", Right.READ) and not principal.may("a", Right.WRITE)
    assert principal.may("b", Right.WRITE) and not principal.may("b", Right.READ)
    assert not principal.may("default", Right.READ)


@pytest.mark.parametrize(
    ("client", "site", "granted", "denied"),
    [
        ("keycloak-a-reader", "a", Right.READ, Right.WRITE),  # realm_access.roles
        ("entra-b-writer", "b", Right.WRITE, Right.DELETE),  # roles, any case of the right
        ("groups-admin", "b", Right.DELETE, None),  # groups, {site} = *, admin holds all
    ],
)
async def test_claim_shapes_of_other_providers_map_to_rights(
    oidc: Provider, client: str, site: str, granted: Right, denied: Right | None
) -> None:
    verify, _ = verifier(oidc)
    principal = await verify.principal(oidc.token(client))
    assert principal.may(site, granted)
    assert denied is None or not principal.may(site, denied)
    assert not principal.may("elsewhere", Right.READ) or client == "groups-admin"


async def test_wrong_audience_issuer_and_times_are_refused(oidc: Provider) -> None:
    verify, _ = verifier(oidc, leeway_seconds=30)
    now = int(time.time())
    other = oidc.token("scoped", "pacs:a:read", audience=OTHER_AUDIENCE)
    assert "aud" in await refused(verify, other)
    assert "iss" in await refused(verify, oidc.sign(claims(oidc, iss="https://idp.invalid")))
    assert "expired" in await refused(verify, oidc.sign(claims(oidc, exp=now - 3600)))
    assert "nbf" in await refused(verify, oidc.sign(claims(oidc, nbf=now + 3600)))
    without_exp = claims(oidc)
    del without_exp["exp"]
    assert "exp" in await refused(verify, oidc.sign(without_exp))
    # within the leeway (30 s) an expiry of 10 s ago is clock skew, not an expired token
    assert (await verify.principal(oidc.sign(claims(oidc, exp=now - 10)))).subject == "crafted"
    strict, _ = verifier(oidc, leeway_seconds=0)
    assert "expired" in await refused(strict, oidc.sign(claims(oidc, exp=now - 10)))


async def test_forged_tokens_are_refused(oidc: Provider) -> None:
    verify, _ = verifier(oidc)
    real = oidc.token("scoped", "pacs:a:read")
    header, payload, signature = real.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    # alg=none (RFC 8725 2.1): no signature at all
    none = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    assert "'none'" in await refused(verify, f"{none}.{payload}.")
    # HS256 keyed with the issuer's public key (RFC 8725 2.1, the algorithm confusion)
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    public = next(k for k in oidc.jwks()["keys"] if k["kid"] == kid)
    pem = RSAKey.import_key(public).as_pem(private=False)
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    mac = hmac.new(pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    assert "HS256" in await refused(verify, f"{hs_header}.{payload}.{b64(mac)}")
    # tampered: more rights in the payload, the provider's signature kept
    body["scope"] = "pacs:*:admin"
    assert "signature" in await refused(
        verify, f"{header}.{b64(json.dumps(body).encode())}.{signature}"
    )
    # a key the issuer never published
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-the-issuers"})
    forged = jwt.encode({"alg": "RS256", "kid": "not-the-issuers"}, claims(oidc), stranger)
    assert "does not publish" in await refused(verify, forged)
    for garbage in ("", "abc", "a.b.c", "x" * 20_000, "é.é.é"):
        await refused(verify, garbage)


async def test_key_rotation_is_picked_up_and_key_fetches_are_bounded(oidc: Provider) -> None:
    verify, clock = verifier(oidc, jwks_refresh_seconds=30)
    old = oidc.token("scoped", "pacs:a:read")
    assert (await verify.principal(old)).subject == "scoped"
    assert verify.keys.fetches == 1
    oidc.rotate(retire=True)  # a new key signs; the old one is no longer published
    new = oidc.token("scoped", "pacs:a:read")
    # within 30 s of the last fetch an unknown key id fetches nothing: made-up key ids
    # cannot make the verifier flood the IdP
    for n in range(25):
        stranger = RSAKey.generate_key(2048, parameters={"kid": f"made-up-{n}"})
        await refused(verify, jwt.encode({"alg": "RS256", "kid": f"made-up-{n}"}, {}, stranger))
    assert "does not publish" in await refused(verify, new)
    assert verify.keys.fetches == 1
    clock.now += 30  # then the new key id is fetched once, without a restart
    assert (await verify.principal(new)).subject == "scoped"
    assert verify.keys.fetches == 2
    assert "does not publish" in await refused(verify, old)  # retired with its key
    assert (await verify.principal(new)).subject == "scoped"
    assert verify.keys.fetches == 2


async def test_an_unreachable_issuer_is_a_503_not_a_refusal(oidc: Provider) -> None:
    unreachable = AuthSettings(issuer="http://127.0.0.1:9", audience=[AUDIENCE])
    with pytest.raises(ServiceUnavailable):
        await TokenVerifier(unreachable).principal(oidc.token("scoped", "pacs:a:read"))


async def test_discovery_must_name_the_configured_issuer(oidc: Provider) -> None:
    # the same provider under another name (localhost): its document names 127.0.0.1
    alias = oidc.issuer.replace("127.0.0.1", "localhost")
    async with httpx.AsyncClient(timeout=10) as client:
        found = await client.get(f"{alias}/.well-known/openid-configuration")
    assert found.status_code == 200 and found.json()["issuer"] == oidc.issuer
    with pytest.raises(ServiceUnavailable):
        await TokenVerifier(AuthSettings(issuer=alias, audience=[AUDIENCE])).principal(
            oidc.token("scoped", "pacs:a:read")
        )
