"""Match terms: the strings an index stores per entity so that every matching rule is a term test.

A term is ``{path}={value}`` with the value in its normal form (``pacsflow.query.values``), or
``{path}~{word}`` for the folded words of a person name (fuzzy matching). ``path`` is the tag,
or for an attribute inside a sequence item ``{sequence}[{item}].{tag}``, items counted from 0;
``{sequence}[{item}]`` alone says the item exists.
Date and time pairs add ``{date}+{time}={YYYYMMDDHHMMSS.ffffff}`` for combined matching.
Both index adapters store exactly the terms of :func:`entity_terms`, and the query translators
(``pacsflow.query.sql``, ``pacsflow.query.es``) test only terms, so matching is the same on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from pacsflow.query.attributes import DATE_TIME_PAIRS, is_match_key, key_level
from pacsflow.query.model import Level
from pacsflow.query.values import name_tokens, norm_da, norm_dt, norm_number, norm_pn, norm_tm

__all__ = ["MAX_ITEMS", "MAX_VALUE_CHARS", "entity_terms", "first_value", "value_terms"]

JsonDict = dict[str, Any]

MAX_ITEMS: Final = 8  # sequence items indexed per sequence (later items are not matched)
MAX_VALUE_CHARS: Final = 256  # longer text values are indexed by their first 256 characters
NUMERIC_VRS: Final = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"})
UNMATCHED_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
MAX_TERM: Final = "\U0010ffff"  # sorts after every value character (UTF-8 bytewise)


def value_terms(path: str, vr: str, values: list[Any]) -> Iterator[str]:
    """The terms of one element's values (no terms for an element without a value)."""
    for value in values:
        if value is None:
            continue
        if vr == "PN":
            yield from _name_terms(path, value)
        elif vr == "SQ":
            continue
        elif vr in NUMERIC_VRS:
            if (number := norm_number(value)) is not None:
                yield f"{path}={number}"
        else:
            text = str(value).strip()
            normal = {"DA": norm_da, "TM": norm_tm, "DT": norm_dt}.get(vr, lambda v: None)(text)
            if text:
                yield f"{path}={(normal or text)[:MAX_VALUE_CHARS]}"


def _name_terms(path: str, value: Any) -> Iterator[str]:
    groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
    groups = [g if isinstance(g, str) else "" for g in groups]
    full = norm_pn("=".join(groups))
    if not full:
        return
    yield f"{path}={full[:MAX_VALUE_CHARS]}"
    for group in groups:
        if (normal := norm_pn(group)) and normal != full:
            yield f"{path}={normal[:MAX_VALUE_CHARS]}"
    for token in name_tokens("=".join(groups)):
        yield f"{path}~{token[:MAX_VALUE_CHARS]}"


def _element_terms(path: str, element: Any, depth: int) -> Iterator[str]:
    if not isinstance(element, dict):
        return
    vr = str(element.get("vr", ""))
    values = element.get("Value")
    if vr in UNMATCHED_VRS or not isinstance(values, list):
        return
    if vr != "SQ":
        yield from value_terms(path, vr, values)
        return
    if depth >= 2:
        return
    for index, item in enumerate(values[:MAX_ITEMS]):
        yield f"{path}[{index}]"  # the item exists (Empty Value Matching inside sequences)
        if isinstance(item, dict):
            for tag, child in item.items():
                yield from _element_terms(f"{path}[{index}].{tag}", child, depth + 1)


def first_value(attributes: JsonDict, tag: str) -> str:
    """The first value of an attribute as text, or ``""``."""
    element = attributes.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    if not values or not isinstance(values[0], str | int | float):
        return ""
    return str(values[0]).strip()


def entity_terms(attributes: JsonDict, level: Level) -> list[str]:
    """Every match term of an entity at ``level`` (study attributes include the derived ones).

    A workitem (``Level.WORKITEM``) has the terms of all its attributes but the Transaction UID.
    """
    terms: set[str] = set()
    for tag, element in attributes.items():
        if key_level(tag, level) is level and is_match_key(tag, level):
            terms.update(_element_terms(tag, element, 0))
    for date_tag, time_tag in DATE_TIME_PAIRS.items():
        if key_level(date_tag, level) is not level:
            continue
        date = norm_da(first_value(attributes, date_tag))
        if date is not None:
            time = norm_tm(first_value(attributes, time_tag)) or "000000.000000"
            terms.add(f"{date_tag}+{time_tag}={date}{time}")
    return sorted(terms)
