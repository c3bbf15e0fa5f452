"""Query planner statistics of the SQLite index: ``ANALYZE`` as the archive grows.

Without statistics SQLite assumes that an equality on the first column of an index selects a
handful of rows. Every search of the index adapter starts with ``e.site = ?``, which in fact
selects every row of a single-site archive, so the planner would walk the ``(site, uid)`` index
in page order and test each row against the matching keys: a search by SOPInstanceUID over a
million instances would read them all. ``sqlite_stat1`` tells it otherwise, and it then starts
from the match terms and the UID indexes.

The statistics are gathered for the entity tables (``studies``, ``series``, ``instances``) and
their indexes only; the term tables keep the planner's default estimate (few rows per term),
which is right for the selective keys QIDO-RS is used with, and analysing them would cost ten
times as much. They are refreshed when the number of instances has doubled since the last
analysis (from ``ANALYZE_FLOOR`` on), so their cost stays proportional to what was indexed.
"""

from __future__ import annotations

import sqlite3
from typing import Final

__all__ = [
    "ANALYZED_TABLES",
    "ANALYZE_FLOOR",
    "ANALYZE_GROWTH",
    "PlannerStatistics",
    "analyzed_rows",
]

ANALYZE_FLOOR: Final = 1000  # instances; below this a search scanning them all is still fast
ANALYZE_GROWTH: Final = 2  # refresh when the instances have grown by this factor
ANALYZED_TABLES: Final = ("instances", "series", "studies")
_ROWS_STAT: Final = (
    "SELECT stat FROM sqlite_stat1 WHERE tbl = 'instances' AND idx = 'sqlite_autoindex_instances_1'"
)


def analyzed_rows(db: sqlite3.Connection) -> int:
    """The number of instances at the last analysis (0: never analysed)."""
    has_table = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    row = db.execute(_ROWS_STAT).fetchone() if has_table else None
    return int(str(row[0]).split()[0]) if row else 0


class PlannerStatistics:
    """Keeps ``sqlite_stat1`` in step with the size of the index (one connection's view).

    Every method runs on the index adapter's database thread. ``rows`` is the number of
    instances, counted once when the index opens and then kept by the writes of this adapter.
    """

    def __init__(self, floor: int = ANALYZE_FLOOR, growth: float = ANALYZE_GROWTH) -> None:
        self.floor = floor
        self.growth = growth
        self.rows = 0
        self.analyzed = 0

    def open(self, db: sqlite3.Connection) -> None:
        """Read the size of the index and of its last analysis; analyse if that is due."""
        (self.rows,) = db.execute("SELECT COUNT(*) FROM instances").fetchone()
        self.analyzed = analyzed_rows(db)
        self.refresh(db)

    def changed(self, db: sqlite3.Connection, added: int) -> None:
        """``added`` instances were inserted (negative: removed); analyse if that is due."""
        self.rows = max(0, self.rows + added)
        self.refresh(db)

    def due(self) -> bool:
        """Whether the statistics are missing or stale for the current number of instances."""
        return self.rows >= self.floor and self.rows >= self.growth * self.analyzed

    def refresh(self, db: sqlite3.Connection) -> bool:
        """``ANALYZE`` the entity tables when :meth:`due`; whether it ran."""
        if not self.due():
            return False
        for table in ANALYZED_TABLES:
            db.execute(f"ANALYZE {table}")
        self.analyzed = analyzed_rows(db) or self.rows
        return True
