"""Text of the performance page: numbers at 3 significant digits, ratios, ranges, table cells.

Every figure on docs/performance.md goes through here, so the same value always reads the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bench.results import Stat

__all__ = [
    "DASH",
    "EN_DASH",
    "MINUS",
    "code_span",
    "date_text",
    "duration",
    "number",
    "one_line",
    "params_text",
    "percent",
    "ratio_text",
    "scale_text",
    "stat_label",
    "table",
    "with_range",
]

# Stats whose name already says the unit (the metric's unit is not appended).
STAT_LABELS: Final = {
    "instances_per_s": "instances/s",
    "mb_per_s": "MB/s",
    "requests_per_s": "requests/s",
    "peak_mib": "peak MiB",
    "peak_rss_mib": "peak RSS MiB",
}
# Stat name endings that say the unit: ``before_mib`` -> ``before MiB``.
UNIT_SUFFIXES: Final = (
    ("_per_s", "/s"),
    ("_mib", " MiB"),
    ("_mb", " MB"),
    ("_bytes", " bytes"),
    ("_ms", " ms"),
    ("_s", " s"),
)
# Stats in the metric's unit besides its primary one (and percentiles: p50, p99.9).
SAME_UNIT: Final = frozenset({"min", "max", "mean", "median"})
DASH: Final = "\u2014"  # em dash: no value
EN_DASH: Final = "\u2013"  # ranges: 11.9-13.0
MINUS: Final = "\u2212"


def _decimals(value: float) -> int:
    """Decimals that show ``value`` with 3 significant digits (none from 100 up)."""
    if value == 0 or not math.isfinite(value):
        return 0
    return max(0, 2 - math.floor(math.log10(abs(value))))


def number(value: float, decimals: int | None = None) -> str:
    """A number with 3 significant digits, thousands separators from 1,000 up."""
    if not math.isfinite(value):
        return str(value)
    places = _decimals(value) if decimals is None else decimals
    return f"{value:,.{places}f}"


def ratio_text(value: float | None) -> str:
    """A ratio with 2 decimals, 3 significant digits below 0.1 (trailing zeros dropped)."""
    if value is None:
        return DASH
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 0.1:
        return f"{value:.2f}"
    if value <= 0:
        return f"{value:.2f}"
    text = f"{value:.{_decimals(value)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{value * 100:.1f} %"


def with_range(found: Stat) -> str:
    """``median (min-max)`` (an en dash) at the median's precision; one run: the median."""
    places = _decimals(found.median)
    text = number(found.median, places)
    if len(found.runs) > 1:
        text += f" ({number(found.min, places)}{EN_DASH}{number(found.max, places)})"
    return text


def _cell(text: Any) -> str:
    """Text safe in a GitHub table cell: no line breaks, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code_span(text: str) -> str:
    """An inline code span for ``text`` (longer fence when it holds backticks)."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    """A GitHub-flavoured table; ``right`` marks right-aligned (numeric) columns."""
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def stat_label(name: str, unit: str, primary: str = "") -> str:
    """A column header for a stat: ``p50 ms``, ``instances/s``, ``before MiB``, ``seconds``.

    The metric's unit is the unit of its primary stat and of percentiles and extremes
    (``p95``, ``max``); a stat whose name says its unit keeps that; any other stat
    (``seconds``) is shown by name.
    """
    if name in STAT_LABELS:
        return STAT_LABELS[name]
    for suffix, shown in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].replace("_", " ") + shown
    label = name.replace("_", " ")
    in_unit = name == primary or name in SAME_UNIT or re.fullmatch(r"p\d+(\.\d+)?", name)
    return f"{label} {unit}" if in_unit and unit and unit not in label else label


def scale_text(scale: int | None) -> str:
    """An index size (instances), or a dash when the metric has none."""
    return DASH if scale is None else f"{scale:,}"


def params_text(params: Mapping[str, Any]) -> str:
    """``k=v, ...`` sorted by key, or a dash when there are none."""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or DASH


def duration(seconds: float) -> str:
    """Seconds as ``1 h 2 min``, ``3 min 4 s`` or ``5 s``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def date_text(iso: str) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM`` (as given when it is not one)."""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def one_line(text: str) -> str:
    """Free text on one line (a bullet item)."""
    return " ".join(text.split())
