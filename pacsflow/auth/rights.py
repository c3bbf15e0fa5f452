"""Rights per site, read from a token's claims through the configured rules (docs/security.md).

A right is read (search, retrieve, subscribe), write (store, create and change workitems),
delete, or admin (all of them). ``grants`` applies every ``RightRule`` to the claims of a
verified token; the result is a ``Principal``, who ``may`` do something on a site or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pacsflow.auth.settings import RightRule

__all__ = ["ANYONE", "ANY_SITE", "Principal", "Right", "claim_values", "grants"]

ANY_SITE: Final = "*"
_SITE: Final = r"(?P<site>\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})"


class Right(StrEnum):
    """What a principal may do on a site."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"


_RIGHT: Final = f"(?P<right>(?i:{'|'.join(Right)}))"


@dataclass(frozen=True)
class Principal:
    """Who sends a request (the token's subject) and what they may do, per site."""

    subject: str
    name: str | None = None
    issuer: str | None = None
    rights: Mapping[str, frozenset[Right]] = field(default_factory=dict)
    authenticated: bool = True

    def may(self, site: str, right: Right) -> bool:
        """Whether the principal has ``right`` (or admin) on ``site``."""
        held = self.rights.get(site, frozenset()) | self.rights.get(ANY_SITE, frozenset())
        return right in held or Right.ADMIN in held


ANYONE: Final = Principal(
    subject="anonymous", rights={ANY_SITE: frozenset(Right)}, authenticated=False
)
"""The principal of every request while authentication is off: every right on every site."""


def claim_values(claims: Mapping[str, Any], path: str) -> Iterator[str]:
    """The string values at the dotted ``path`` of ``claims`` (a string splits at white space)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return
        value = value[part]
    items = value.split() if isinstance(value, str) else value
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, str))


def _regex(rule: RightRule) -> re.Pattern[str]:
    parts = re.split(r"(\{site\}|\{right\})", rule.pattern)
    known = {"{site}": _SITE, "{right}": _RIGHT}
    return re.compile("".join(known.get(part, re.escape(part)) for part in parts))


def grants(claims: Mapping[str, Any], rules: Iterable[RightRule]) -> dict[str, frozenset[Right]]:
    """The rights per site (``*``: every site) that ``rules`` find in ``claims``."""
    found: dict[str, set[Right]] = {}
    for rule in rules:
        regex = _regex(rule)
        for value in claim_values(claims, rule.claim):
            match = regex.fullmatch(value)
            if match is None:
                continue
            right = Right(match["right"].lower())
            sites = [match["site"]] if "site" in regex.groupindex else list(rule.sites)
            for site in sites:
                found.setdefault(site, set()).add(right)
    return {site: frozenset(rights) for site, rights in found.items()}
