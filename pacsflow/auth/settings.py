"""What bearer authentication is configured with: the issuer, audiences, algorithms and rights.

The ``auth`` group of ``pacsflow.config.Settings`` (``PACSFLOW_AUTH_ISSUER`` or
``PACSFLOW_AUTH__ISSUER``, ...; docs/security.md). An empty issuer turns authentication off.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Final
from urllib.parse import urlparse

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

__all__ = ["ASYMMETRIC_ALGORITHMS", "DEFAULT_RULES", "AuthSettings", "RightRule", "is_loopback"]

# JWS algorithms with a public verification key (RFC 7518 3.1, RFC 8037): the only ones a
# resource server may accept from an IdP; never "none", never HMAC (a public key is no secret).
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_PLACEHOLDER: Final = re.compile(r"\{(site|right)\}")


class RightRule(BaseModel):
    """One mapping from a claim's values to rights: ``pattern`` over each value of ``claim``.

    ``claim`` is a dotted path into the token (``scope``, ``realm_access.roles``, ``roles``,
    ``groups``); a string value is split at white space (a ``scope``), a list is taken item
    by item. ``pattern`` holds ``{right}`` (read, write, delete or admin, in any case) and
    ``{site}`` (a site name, or ``*`` for every site); without ``{site}`` the rule grants on
    the ``sites`` it names (``*``: every site).
    """

    model_config = ConfigDict(frozen=True)

    claim: str = Field(min_length=1, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    pattern: str = Field(min_length=1)
    sites: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _placeholders(self) -> RightRule:
        found = _PLACEHOLDER.findall(self.pattern)
        if found.count("right") != 1 or found.count("site") > 1:
            raise ValueError(
                f"PACSFLOW_AUTH_RIGHTS: pattern {self.pattern!r} needs one {{right}}"
                " and at most one {site}"
            )
        if "site" not in found and not self.sites:
            raise ValueError(
                f"PACSFLOW_AUTH_RIGHTS: pattern {self.pattern!r} has no {{site}}: name its sites"
            )
        return self


DEFAULT_RULES: Final = (RightRule(claim="scope", pattern="pacs:{site}:{right}"),)
"""Rights from the ``scope`` claim: ``pacs:north:read``, ``pacs:*:admin`` (docs/security.md)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(value: Any) -> Any:
    """A comma- or space-separated string as a list (the form of an environment variable)."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value) if part]
    return value


class AuthSettings(BaseModel):
    """OIDC bearer authentication (RFC 6750, RFC 9068); see docs/security.md."""

    model_config = ConfigDict(hide_input_in_errors=True)

    issuer: str = ""
    audience: Annotated[list[str], NoDecode] = Field(default_factory=list)
    algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"]
    )
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwks_url: str = ""
    jwks_refresh_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    jwks_max_age_seconds: float = Field(default=3600.0, ge=60.0, le=86400.0)
    ca_certs: str = ""
    rights: Annotated[list[RightRule], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_RULES)
    )
    realm: str = Field(default="pacsflow", pattern=r'^[^"\\]{1,64}$')

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a bearer token."""
        return bool(self.issuer)

    @field_validator("audience", "algorithms", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("rights", mode="before")
    @classmethod
    def _json_rules(cls, value: Any) -> Any:
        """``PACSFLOW_AUTH_RIGHTS`` is a JSON list of rules; empty: the default rule."""
        if isinstance(value, str | bytes) and not value.strip():
            return list(DEFAULT_RULES)
        if isinstance(value, str | bytes):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ValueError("PACSFLOW_AUTH_RIGHTS: not a JSON list of rules") from None
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        refused = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if refused or not value:
            raise ValueError(
                f"PACSFLOW_AUTH_ALGORITHMS: only {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
                f" are accepted, not {', '.join(refused) or 'none'}"
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        """An issuer needs an audience; IdP URLs are https unless on loopback."""
        if not self.issuer:
            return self
        if not self.audience:
            raise ValueError("PACSFLOW_AUTH_AUDIENCE: required when PACSFLOW_AUTH_ISSUER is set")
        for name, url in (("ISSUER", self.issuer), ("JWKS_URL", self.jwks_url)):
            parsed = urlparse(url)
            if not url or (parsed.scheme == "http" and is_loopback(parsed.hostname or "")):
                continue
            if parsed.scheme != "https" or not parsed.hostname:
                raise ValueError(f"PACSFLOW_AUTH_{name}: an https:// URL (http:// on loopback)")
        return self
