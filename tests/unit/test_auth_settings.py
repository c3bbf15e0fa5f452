"""Authentication settings, rights from claims, sites and the safe defaults of the CLI."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import ValidationError

from pacsflow.auth import AuthSettings, Right, RightRule, Sites
from pacsflow.auth.exposure import exposure_problem
from pacsflow.auth.rights import ANYONE, Principal, grants
from pacsflow.cli import main
from pacsflow.config import Settings
from pacsflow.errors import NotFound

ISSUER = "https://idp.example.org/realms/pacs"


@pytest.mark.parametrize(
    ("rule", "claims", "expected"),
    [
        # a plain scope claim (space-separated)
        (
            {"claim": "scope", "pattern": "pacs:{site}:{right}"},
            {"scope": "openid pacs:north:read pacs:north:WRITE pacs:*:read other"},
            {"north": {Right.READ, Right.WRITE}, "*": {Right.READ}},
        ),
        # Keycloak realm roles and client roles (lists in nested objects)
        (
            {"claim": "realm_access.roles", "pattern": "pacs-{site}-{right}"},
            {"realm_access": {"roles": ["offline_access", "pacs-south-admin"]}},
            {"south": {Right.ADMIN}},
        ),
        (
            {"claim": "resource_access.pacsflow.roles", "pattern": "{right}", "sites": ["north"]},
            {"resource_access": {"pacsflow": {"roles": ["read", "delete"]}}},
            {"north": {Right.READ, Right.DELETE}},
        ),
        # Microsoft Entra ID app roles
        (
            {"claim": "roles", "pattern": "Pacs.{site}.{right}"},
            {"roles": ["Pacs.north.Read", "Pacs.north-2.Write", "Other.north.Read"]},
            {"north": {Right.READ}, "north-2": {Right.WRITE}},
        ),
        # groups; a value that only looks like a rule grants nothing
        (
            {"claim": "groups", "pattern": "/pacs/{site}/{right}"},
            {"groups": ["/pacs/north/read", "/pacs/north/read/extra", "/pacs//read", 7]},
            {"north": {Right.READ}},
        ),
        ({"claim": "scope", "pattern": "pacs:{site}:{right}"}, {"scope": 7}, {}),
        ({"claim": "a.b", "pattern": "{site}:{right}"}, {"a": "not an object"}, {}),
    ],
)
def test_rules_find_rights_per_site(
    rule: dict[str, Any], claims: dict[str, Any], expected: dict[str, set[Right]]
) -> None:
    assert grants(claims, [RightRule(**rule)]) == {k: frozenset(v) for k, v in expected.items()}


def test_admin_holds_every_right_and_star_every_site() -> None:
    principal = Principal("x", rights={"north": frozenset({Right.ADMIN}), "*": {Right.READ}})  # type: ignore[dict-item]
    assert all(principal.may("north", right) for right in Right)
    assert principal.may("anywhere", Right.READ) and not principal.may("anywhere", Right.WRITE)
    assert all(ANYONE.may("any", right) for right in Right)


@pytest.mark.parametrize(
    "changes",
    [
        {"audience": []},  # an issuer needs an audience
        {"issuer": "http://idp.example.org"},  # plain http off loopback
        {"algorithms": ["HS256"]},  # a shared secret is no public key
        {"algorithms": ["none"]},
        {"algorithms": []},
        {"leeway_seconds": 3600},
        {"rights": "not json"},
        {"rights": [{"claim": "scope", "pattern": "pacs:{site}"}]},  # no {right}
        {"rights": [{"claim": "scope", "pattern": "{right}"}]},  # no site, no sites
        {"realm": 'a"b'},
    ],
)
def test_unsafe_or_incomplete_settings_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AuthSettings(**{"issuer": ISSUER, "audience": ["pacsflow"], **changes})


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("PACSFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PACSFLOW_AUTH_ISSUER", "http://127.0.0.1:8180/realms/pacs")
    monkeypatch.setenv("PACSFLOW_AUTH_AUDIENCE", "pacsflow, account")
    monkeypatch.setenv("PACSFLOW_AUTH__RIGHTS", '[{"claim": "roles", "pattern": "{site}.{right}"}]')
    monkeypatch.setenv("PACSFLOW_SITES", "north,south")
    monkeypatch.setenv("PACSFLOW_CORS_ORIGINS", "https://viewer.example.org")
    settings = Settings()
    assert settings.auth.enabled and settings.auth.audience == ["pacsflow", "account"]
    assert settings.auth.rights == [RightRule(claim="roles", pattern="{site}.{right}")]
    assert settings.sites == ["north", "south"]
    assert settings.cors_origins == ["https://viewer.example.org"]
    assert not Settings(auth={"issuer": ""}).auth.enabled  # type: ignore[arg-type]


def test_sites_resolve_the_default_and_refuse_unknown_ones() -> None:
    sites = Sites("default", ["north"])
    assert sites.resolve(None) == "default" and sites.resolve("north") == "north"
    with pytest.raises(NotFound):
        sites.resolve("south")
    with pytest.raises(ValueError):
        Sites("default", ["../x"])
    with pytest.raises(ValidationError):
        Settings(sites=["a/b"])


def test_only_loopback_is_served_without_authentication() -> None:
    off, on = AuthSettings(), AuthSettings(issuer=ISSUER, audience=["pacsflow"])
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        assert exposure_problem(host, off, insecure=False) is None
    for host in ("0.0.0.0", "::", "192.0.2.7", "archive.example.org"):
        assert "PACSFLOW_AUTH_ISSUER" in str(exposure_problem(host, off, insecure=False))
        assert exposure_problem(host, off, insecure=True) is None
        assert exposure_problem(host, on, insecure=False) is None


def test_serve_refuses_a_public_address_without_authentication(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [key for key in os.environ if key.startswith("PACSFLOW_")]:
        monkeypatch.delenv(key)
    for command in ("serve", "qido", "ups"):
        assert main([command, "--host", "0.0.0.0"]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"pacsflow {command}: refusing to listen on 0.0.0.0")
        assert "--insecure" in error
