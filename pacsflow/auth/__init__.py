"""Who may do what on which site: bearer tokens, rights from claims, sites (docs/security.md)."""

from pacsflow.auth.keys import InvalidToken, KeyCache
from pacsflow.auth.rights import ANYONE, Principal, Right
from pacsflow.auth.settings import AuthSettings, RightRule, is_loopback
from pacsflow.auth.sites import Sites
from pacsflow.auth.tokens import MissingToken, TokenVerifier, bearer_token

__all__ = [
    "ANYONE",
    "AuthSettings",
    "InvalidToken",
    "KeyCache",
    "MissingToken",
    "Principal",
    "Right",
    "RightRule",
    "Sites",
    "TokenVerifier",
    "bearer_token",
    "is_loopback",
]
