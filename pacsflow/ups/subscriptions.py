"""Subscriptions (PS3.18 11.10-11.12, PS3.4 CC.2.3): AE titles, filters, global subscriptions.

A Workitem Subscription is an entry of the workitem's subscribers (AE title → Deletion Lock).
A Worklist Subscription (well-known UID ``1.2.840.10008.5.1.4.34.5``) subscribes the AE title
to every workitem there is and, until suspended, to every workitem created later; a Filtered
Worklist Subscription (``…34.5.1``) does the same for the workitems matching its filter. The
filter is a list of matching keys with the syntax and rules of a workitem Search (PS3.18
8.3.4.1), parsed by ``pacsflow.query.parse`` and decided for a new workitem by
``pacsflow.query.match`` on its match terms: the rules a Search applies, one implementation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from pacsflow.errors import BadRequest
from pacsflow.ports.workitems import Globals
from pacsflow.query.match import matches
from pacsflow.query.model import Level, Query
from pacsflow.query.parse import parse_query
from pacsflow.query.terms import entity_terms

__all__ = [
    "MAX_AE_CHARS",
    "check_ae_title",
    "filter_query",
    "parse_filter",
    "subscribers_of_new",
]

JsonDict = dict[str, Any]

MAX_AE_CHARS: Final = 16
_FILTER_SPLIT: Final = re.compile(r",(?=[A-Za-z0-9.]+=)")
_RESERVED: Final = frozenset({"deletionlock", "accept", "charset"})


def check_ae_title(text: str) -> str:
    """An AE title (PS3.5 Table 6.2-1, VR AE) without its insignificant spaces, or BadRequest."""
    title = text.strip(" ")
    if not title or len(title) > MAX_AE_CHARS:
        raise BadRequest(f"{text!r} is not an AE title (1 to {MAX_AE_CHARS} characters)")
    if any(c == "\\" or not 0x20 <= ord(c) < 0x7F for c in title):
        raise BadRequest(
            f"{text!r} is not an AE title (printable ASCII, no backslash: PS3.5 Table 6.2-1)"
        )
    return title


def parse_filter(parameters: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The matching keys of a Filtered Worklist Subscription request (PS3.18 11.10.1.2).

    ``filter=Attribute=value,Attribute=value`` (values may hold commas: a piece starts where
    an attribute name and ``=`` follow a comma), and the bare ``Attribute=value`` parameters
    of earlier editions. Checked by parsing them as a workitem query.
    """
    keys: list[tuple[str, str]] = []
    for name, text in parameters:
        if name in _RESERVED:
            continue
        if name != "filter":
            keys.append((name, text))
            continue
        for piece in _FILTER_SPLIT.split(text):
            attribute, equals, given = piece.partition("=")
            if not equals or not attribute:
                raise BadRequest(f"filter {piece!r} is not attribute=value")
            keys.append((attribute, given))
    if not keys:
        raise BadRequest("a Filtered Worklist Subscription needs a filter (attribute=value)")
    filter_query(tuple(keys))
    return tuple(keys)


def filter_query(keys: Sequence[tuple[str, str]], *, limit: int = 1000, offset: int = 0) -> Query:
    """The workitem query of a filter's matching keys (``BadRequest`` if they are not keys)."""
    reserved = [name for name, _ in keys if name in ("includefield", "limit", "offset")]
    if reserved:
        raise BadRequest(f"a filter holds matching keys only, not {', '.join(reserved)}")
    parameters = [*keys, ("limit", str(limit)), ("offset", str(offset))]
    return parse_query(Level.WORKITEM, parameters, default_limit=limit, max_limit=limit)


def _matches(keys: Sequence[tuple[str, str]], attributes: JsonDict) -> bool:
    terms = set(entity_terms(attributes, Level.WORKITEM))
    return all(matches(c.predicate, terms) for c in filter_query(keys).conditions)


def subscribers_of_new(globals_: Globals, attributes: JsonDict) -> dict[str, bool]:
    """The AE titles a new workitem is subscribed to (PS3.4 CC.2.5.3), with their locks."""
    found: dict[str, bool] = {}
    for ae, subscription in globals_.subscriptions.items():
        if subscription.suspended:
            continue
        if subscription.kind == "filtered" and not _matches(subscription.filter, attributes):
            continue
        found[ae] = subscription.deletion_lock
    return found
