"""Build a :class:`~pacsflow.query.model.Query` from the query parameters of a Search request.

PS3.18 8.3.4 (query parameters) and 10.6.1 (Search Transaction); matching per PS3.4 C.2.2.2:
Single Value, List of UID, Universal, Wild Card, Range (DA, TM, DT; combined date-time),
Empty Value (``""``) and Sequence Matching; person names case-insensitively, with
``fuzzymatching=true`` word by word ignoring accents. Every malformed or unsupported parameter
is a :class:`~pacsflow.errors.BadRequest` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pacsflow.dicom.stored import CREATOR_TAG, STORED_TAGS
from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest
from pacsflow.query.attributes import (
    DATE_TIME_PAIRS,
    Attribute,
    is_match_key,
    key_level,
    resolve,
)
from pacsflow.query.model import (
    All,
    Any_,
    Condition,
    Glob,
    Level,
    Not,
    Predicate,
    Query,
    Range,
    Term,
    Terms,
)
from pacsflow.query.terms import MAX_ITEMS, MAX_TERM, NUMERIC_VRS
from pacsflow.query.values import name_tokens, norm_da, norm_dt, norm_number, norm_pn, norm_tm

__all__ = [
    "MAX_LIST_VALUES",
    "MAX_OFFSET",
    "MAX_PREDICATES",
    "MAX_VALUE_LENGTH",
    "MAX_WILDCARDS",
    "parse_query",
]

# Bounds of one query, so that what an index cannot evaluate is refused as the client's error
# (400) instead of failing in the index as an outage: SQLite limits a compound SELECT to 500
# terms and a GLOB pattern to 50,000 bytes, Elasticsearch a bool query to 1,024 clauses and
# ``from`` to a 32-bit integer.
MAX_VALUE_LENGTH: Final = 1024  # characters of one matching value (DICOM's longest ST)
MAX_LIST_VALUES: Final = 4096  # UIDs of one List of UID Matching value
MAX_WILDCARDS: Final = 16  # "*" in one value (each one makes a match backtrack)
MAX_PREDICATES: Final = 256  # single values, wildcards and ranges of a whole query
MAX_OFFSET: Final = 2**31 - 1
RESERVED: Final = frozenset({"includefield", "fuzzymatching", "limit", "offset"})
_WILDCARD_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_RANGE: Final = {"DA": norm_da, "TM": norm_tm, "DT": norm_dt}


@dataclass(frozen=True, slots=True)
class _Key:
    """One matching parameter: its name, the attributes of its dotted path and its value."""

    parameter: str
    path: tuple[Attribute, ...]
    value: str


def _attribute_path(name: str, parameter: str | None = None) -> tuple[Attribute, ...]:
    """The attributes of a dotted path ``name`` given in query parameter ``parameter``."""
    parameter = parameter or name
    path = []
    for part in name.split("."):
        attribute = resolve(part)
        if attribute is None:
            raise BadRequest(f"query parameter {parameter!r}: {part!r} is not a DICOM attribute")
        path.append(attribute)
    if any(a.vr != "SQ" for a in path[:-1]):
        raise BadRequest(f"query parameter {parameter!r}: only a sequence can have a '.'")
    return tuple(path)


def _integer(name: str, values: list[str], minimum: int, maximum: int) -> int | None:
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"query parameter {name!r} is given more than once")
    try:
        number = int(values[0])
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer") from None
    if number < minimum:
        raise BadRequest(f"query parameter {name!r} must be at least {minimum}")
    if number > maximum:
        raise BadRequest(f"query parameter {name!r} must be at most {maximum}")
    return number


def _fuzzy(values: list[str]) -> bool:
    if not values:
        return False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise BadRequest("query parameter 'fuzzymatching' must be 'true' or 'false'")
    return values[0] == "true"


def _include(values: list[str]) -> tuple[frozenset[str], bool]:
    tags: set[str] = set()
    include_all = False
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name == "all":
                include_all = True
            elif name.upper() in STORED_TAGS:  # the archive's private block (dicom/stored.py)
                tags |= {name.upper(), CREATOR_TAG}
            elif name:
                tags.add(_attribute_path(name, "includefield")[0].tag)
            else:
                raise BadRequest("query parameter 'includefield' has an empty attribute")
    return frozenset(tags), include_all


def _split_range(parameter: str, vr: str, value: str) -> tuple[str | None, str | None]:
    """(low, high) normal forms of a range value; ``None`` for an open end."""
    norm = _RANGE[vr]
    for at in [i for i, c in enumerate(value) if c == "-"]:
        low, high = value[:at].strip(), value[at + 1 :].strip()
        if (low or high) and (not low or norm(low)) and (not high or norm(high)):
            return (_norm(norm, low) if low else None), (_norm(norm, high, True) if high else None)
    raise BadRequest(f"query parameter {parameter!r}: {value!r} is not a {vr} range")


def _norm(norm: object, value: str, high: bool = False) -> str:
    if norm is norm_da:
        return value
    return norm(value, high=high)  # type: ignore[operator,no-any-return]


def _range(parameter: str, path: str, vr: str, value: str) -> Predicate:
    if "*" in value or "?" in value:
        raise BadRequest(f"query parameter {parameter!r}: no wildcards in a {vr} value")
    single = _RANGE[vr](value)
    if "-" in value:
        try:
            low, high = _split_range(parameter, vr, value)
        except BadRequest:
            if single is None:
                raise
        else:  # "20230101-0500" is a DT with a UTC offset, "2023-2024" a range of years
            if not (single is not None and low and high and low > high):
                return Range(f"{path}={low or ''}", f"{path}={high or MAX_TERM}")
    low_value = _RANGE[vr](value)
    if low_value is None:
        raise BadRequest(f"query parameter {parameter!r}: {value!r} is not a valid {vr} value")
    if vr == "DA":
        return Term(f"{path}={low_value}")
    return Range(f"{path}={low_value}", f"{path}={_norm(_RANGE[vr], value, True)}")


def _text(path: str, value: str) -> Predicate:
    return Glob(f"{path}={value}") if "*" in value or "?" in value else Term(f"{path}={value}")


def _leaf(key: _Key, path: str, fuzzy: bool) -> Predicate | None:
    """The predicate of one value on the term path ``path``; ``None`` for Universal Matching."""
    attribute, value, parameter = key.path[-1], key.value, key.parameter
    vr = attribute.vr
    if vr != "UI" and len(value) > MAX_VALUE_LENGTH:
        raise BadRequest(
            f"query parameter {parameter!r}: a value of {len(value)} characters,"
            f" at most {MAX_VALUE_LENGTH}"
        )
    if value.count("*") > MAX_WILDCARDS:
        raise BadRequest(f"query parameter {parameter!r}: more than {MAX_WILDCARDS} '*'")
    if value in ("", "*"):
        return None
    if value == '""' and vr == "SQ":  # no items
        return Not(Range(f"{path}[", f"{path}[{MAX_TERM}"))
    if value == '""':
        return Not(Range(f"{path}=", f"{path}={MAX_TERM}"))
    if vr == "SQ":
        raise BadRequest(f"query parameter {parameter!r}: match a sequence by its attributes")
    if vr in ("DA", "TM", "DT"):
        return _range(parameter, path, vr, value)
    if vr == "UI":
        uids = [u.strip() for u in value.replace("\\", ",").split(",")]
        if len(uids) > MAX_LIST_VALUES:
            raise BadRequest(
                f"query parameter {parameter!r}: {len(uids)} UIDs, at most {MAX_LIST_VALUES}"
            )
        if not all(is_valid_uid(u, strict=False) for u in uids):
            raise BadRequest(f"query parameter {parameter!r}: {value!r} is not a list of UIDs")
        return (
            Term(f"{path}={uids[0]}")
            if len(uids) == 1
            else Terms(tuple(f"{path}={u}" for u in uids))
        )
    choices: list[Predicate] = []
    for part in value.split("\\"):
        part = part.strip(" ")
        if ("*" in part or "?" in part) and vr not in _WILDCARD_VRS:
            raise BadRequest(f"query parameter {parameter!r}: no wildcards in a {vr} value")
        if vr == "PN" and fuzzy:
            words = name_tokens(part)
            choices.append(All(tuple(Glob(f"{path}~{w.rstrip('*')}*") for w in words)))
        elif vr == "PN":
            pattern = norm_pn(part)
            choices.append(_text(path, pattern))
            if pattern.endswith("^*") and pattern[:-2]:  # "Doe^*" also finds "Doe" alone
                choices.append(_text(path, pattern[:-2]))
        elif vr in NUMERIC_VRS:
            if (number := norm_number(part)) is None:
                raise BadRequest(f"query parameter {parameter!r}: {part!r} is not a number")
            choices.append(Term(f"{path}={number}"))
        elif part:
            choices.append(_text(path, part))
    choices = [c for c in choices if c != All(())]
    if not choices:
        return None
    return choices[0] if len(choices) == 1 else Any_(tuple(choices))


def _negates(predicate: Predicate) -> bool:
    """True if ``predicate`` holds for an entity without any term (it contains a ``Not``)."""
    if isinstance(predicate, Not):
        return True
    if isinstance(predicate, All | Any_):
        return any(_negates(p) for p in predicate.predicates)
    return False


def _predicate(keys: Sequence[_Key], prefix: str, depth: int, fuzzy: bool) -> Predicate | None:
    """All keys below ``prefix`` (keys share the path up to ``depth``) as one predicate."""
    parts: list[Predicate] = []
    groups: dict[str, list[_Key]] = {}
    for key in keys:
        tag = key.path[depth].tag
        if len(key.path) == depth + 1:
            if (leaf := _leaf(key, f"{prefix}{tag}", fuzzy)) is not None:
                parts.append(leaf)
        else:
            groups.setdefault(tag, []).append(key)
    for tag, members in groups.items():
        items = []
        for i in range(MAX_ITEMS):
            item = _predicate(members, f"{prefix}{tag}[{i}].", depth + 1, fuzzy)
            if item is not None and _negates(item):  # the item itself must exist
                item = All((Term(f"{prefix}{tag}[{i}]"), item))
            items.append(item)
        if all(item is not None for item in items):
            parts.append(Any_(tuple(item for item in items if item is not None)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def _combined(keys: dict[str, _Key], level: Level) -> list[Condition]:
    """Combined date-time range conditions (PS3.4 C.2.2.2.5.1); removes the pairs used."""
    conditions = []
    for date_tag, time_tag in DATE_TIME_PAIRS.items():
        date, time = keys.get(date_tag), keys.get(time_tag)
        if date is None or time is None or {date.value, time.value} & {"", "*", '""'}:
            continue
        if "-" not in date.value and "-" not in time.value:
            continue
        path = f"{date_tag}+{time_tag}"
        d_low, d_high = _bounds(date, "DA")
        t_low, t_high = _bounds(time, "TM")
        low = f"{path}={d_low}{t_low or '000000.000000'}" if d_low else f"{path}="
        high = f"{path}={d_high}{t_high or '235959.999999'}" if d_high else f"{path}={MAX_TERM}"
        name = f"{date.parameter}&{time.parameter}"
        conditions.append(Condition(key_level(date_tag, level), name, Range(low, high)))
        del keys[date_tag], keys[time_tag]
    return conditions


def _bounds(key: _Key, vr: str) -> tuple[str | None, str | None]:
    if "*" in key.value or "?" in key.value or key.value == '""':
        raise BadRequest(f"query parameter {key.parameter!r}: not a {vr} value or range")
    if "-" in key.value:
        return _split_range(key.parameter, vr, key.value)
    single = _RANGE[vr](key.value)
    if single is None:
        raise BadRequest(f"query parameter {key.parameter!r}: {key.value!r} is not a {vr} value")
    return single, _norm(_RANGE[vr], key.value, True)


def parse_query(
    level: Level,
    parameters: Sequence[tuple[str, str]],
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    default_limit: int = 100,
    max_limit: int = 1000,
) -> Query:
    """The query of a Search request at ``level`` scoped by the path's UIDs (PS3.18 10.6.1)."""
    reserved: dict[str, list[str]] = {name: [] for name in RESERVED}
    keys: dict[str, _Key] = {}
    for name, value in parameters:
        if name in RESERVED:
            reserved[name].append(value)
            continue
        path = _attribute_path(name)
        top = path[0]
        if key_level(top.tag, level).depth > level.depth:
            raise BadRequest(
                f"query parameter {name!r}: {top.keyword} is a {key_level(top.tag, level)}-level"
                f" attribute; it cannot be matched in a search for {level} entities"
            )
        if not is_match_key(top.tag, level):
            raise BadRequest(f"query parameter {name!r}: {top.keyword} is not a matching key")
        joined = ".".join(a.tag for a in path)
        if joined in keys:
            raise BadRequest(f"query parameter {name!r} is given more than once")
        keys[joined] = _Key(name, path, value)
    fuzzy = _fuzzy(reserved["fuzzymatching"])
    return_tags, include_all = _include(reserved["includefield"])
    if return_tags & STORED_TAGS and level is not Level.INSTANCE:
        raise BadRequest(
            "query parameter 'includefield': (00A1,10xx) of PACSFLOW 1 are instance attributes"
        )
    # PS3.18 10.6.3.3: an attribute of a level below the one searched is not returned.
    return_tags = frozenset(t for t in return_tags if key_level(t, level).depth <= level.depth)
    return_tags |= {key.path[0].tag for key in keys.values()}
    conditions = _combined(keys, level)
    by_level: dict[Level, dict[str, list[_Key]]] = {}
    for key in keys.values():
        by_level.setdefault(key_level(key.path[0].tag, level), {}).setdefault(
            key.path[0].tag, []
        ).append(key)
    for attribute_level_, by_tag in by_level.items():
        for members in by_tag.values():
            predicate = _predicate(members, "", 0, fuzzy)
            if predicate is not None:
                name = ",".join(m.parameter for m in members)
                conditions.append(Condition(attribute_level_, name, predicate))
    if (count := sum(_predicates(c.predicate) for c in conditions)) > MAX_PREDICATES:
        raise BadRequest(
            f"the query has {count} values, wildcards and ranges to match; at most"
            f" {MAX_PREDICATES}: narrow it"
        )
    limit = _integer("limit", reserved["limit"], 1, MAX_OFFSET)
    offset = _integer("offset", reserved["offset"], 0, MAX_OFFSET) or 0
    return Query(
        level=level,
        study_uid=study_uid,
        series_uid=series_uid,
        conditions=tuple(conditions),
        return_tags=frozenset(return_tags),
        include_all=include_all,
        fuzzy=fuzzy,
        limit=min(limit or default_limit, max_limit),
        offset=offset,
    )


def _predicates(predicate: Predicate) -> int:
    """How many single matches ``predicate`` asks of the index (a UID list is one)."""
    if isinstance(predicate, All | Any_):
        return sum(_predicates(p) for p in predicate.predicates)
    if isinstance(predicate, Not):
        return _predicates(predicate.predicate)
    return 1
