"""Normal forms of DICOM values, shared by index terms and query values (PS3.5 6.2, PS3.4 C.2.2.2).

Dates, times and date-times become fixed-width strings so that bytewise order is time order
(``YYYYMMDD``, ``HHMMSS.ffffff``, ``YYYYMMDDHHMMSS.ffffff``); a value of reduced precision
stands for the interval it covers (``low`` or ``high`` end). Numbers become one canonical text.
Person names are compared case-insensitively; fuzzy matching also ignores accents.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "fold",
    "name_tokens",
    "norm_da",
    "norm_dt",
    "norm_number",
    "norm_pn",
    "norm_tm",
]

_DA: Final = re.compile(r"^(\d{4})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")
_TM: Final = re.compile(r"^([01]\d|2[0-3])(?:([0-5]\d)(?:([0-5]\d|60)(?:\.(\d{1,6}))?)?)?$")
_DT: Final = re.compile(
    r"^(\d{4})(?:(0[1-9]|1[0-2])(?:(0[1-9]|[12]\d|3[01])"
    r"(?:([01]\d|2[0-3])(?:([0-5]\d)(?:([0-5]\d|60)(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:[+-](?:[01]\d|2[0-3])[0-5]\d)?$"
)
_NAME_SEPARATORS: Final = re.compile(r"[\^=\s,]+")


def norm_da(value: str) -> str | None:
    """``YYYYMMDD`` if ``value`` is a DA value, else ``None``."""
    value = value.strip()
    return value if _DA.match(value) else None


def norm_tm(value: str, *, high: bool = False) -> str | None:
    """``HHMMSS.ffffff`` of a TM value: the start (or with ``high`` the end) of its precision."""
    match = _TM.match(value.strip())
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    fill = "9" if high else "0"
    minutes = minutes or ("59" if high else "00")
    seconds = seconds or ("59" if high else "00")
    fraction = ((fraction or "") + fill * 6)[:6]
    return f"{hours}{minutes}{seconds}.{fraction}"


def norm_dt(value: str, *, high: bool = False) -> str | None:
    """``YYYYMMDDHHMMSS.ffffff`` of a DT value (UTC offset ignored), start or end of precision."""
    match = _DT.match(value.strip())
    if match is None:
        return None
    year, month, day, hours, minutes, seconds, fraction = match.groups()
    top = {"month": "12", "day": "31", "hours": "23", "minutes": "59", "seconds": "59"}
    parts = {"month": month, "day": day, "hours": hours, "minutes": minutes, "seconds": seconds}
    low = {"month": "01", "day": "01", "hours": "00", "minutes": "00", "seconds": "00"}
    filled = {k: v if v is not None else (top[k] if high else low[k]) for k, v in parts.items()}
    fill = "9" if high else "0"
    fraction = ((fraction or "") + fill * 6)[:6]
    return (
        f"{year}{filled['month']}{filled['day']}{filled['hours']}{filled['minutes']}"
        f"{filled['seconds']}.{fraction}"
    )


def norm_number(value: object) -> str | None:
    """One text per numeric value (``5``, ``5.0`` and ``"05"`` alike), or ``None``."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def norm_pn(value: str) -> str:
    """A person name for case-insensitive comparison: casefolded, no trailing ``^``/``=``."""
    groups = [group.rstrip("^ ") for group in value.split("=")]
    return "=".join(groups).rstrip("=").casefold()


def fold(value: str) -> str:
    """Casefolded and without accents (NFKD, combining marks dropped): fuzzy comparison."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_tokens(value: str) -> list[str]:
    """The folded words of a person name (components and their words), for fuzzy matching."""
    return [token for token in _NAME_SEPARATORS.split(fold(value)) if token]
