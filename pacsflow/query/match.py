"""Evaluate a predicate of the query model on the match terms of one entity, in memory.

The reference semantics of ``pacsflow.query.model`` on a single entity, for the one place that
must decide about one entity without asking an index: whether a new workitem matches the filter
of a Filtered Worklist Subscription (PS3.18 11.10.1.2, PS3.4 CC.2.3.3). It mirrors
``pacsflow.query.sql``: ``Glob`` as SQLite ``GLOB`` (``*``, ``?``; every other character
literal), ``Range`` bytewise on UTF-8 (code point order, the same order), ``Not`` as no term
satisfying the predicate. ``tests/contract/test_workitem_store.py`` checks it against both
index translators on the same workitems.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from pacsflow.query.model import All, Any_, Glob, Not, Predicate, Range, Term, Terms

__all__ = ["matches"]


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def matches(predicate: Predicate, terms: Collection[str]) -> bool:
    """True if an entity with these match terms satisfies ``predicate``."""
    if isinstance(predicate, Term):
        return predicate.value in terms
    if isinstance(predicate, Terms):
        return any(value in terms for value in predicate.values)
    if isinstance(predicate, Glob):
        pattern = _glob(predicate.pattern)
        return any(pattern.fullmatch(term) for term in terms)
    if isinstance(predicate, Range):
        return any(predicate.low <= term <= predicate.high for term in terms)
    if isinstance(predicate, Not):
        return not matches(predicate.predicate, terms)
    if isinstance(predicate, All):
        return all(matches(p, terms) for p in predicate.predicates)
    if isinstance(predicate, Any_):
        return any(matches(p, terms) for p in predicate.predicates)
    raise TypeError(f"not a predicate: {predicate!r}")
