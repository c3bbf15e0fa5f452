"""The change feed of the SQLite index: the table ``changefeed`` in the index's database.

Changes are appended inside the transaction of the write they record (``SqliteIndex``), so
a feed entry and its instance are committed together. A site's next sequence is one above its
highest; writers are serialized by SQLite (``BEGIN IMMEDIATE``), so sequences are dense and
ordered as the transactions commit, and a reader never sees a later entry without the earlier
ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from pacsflow.changefeed.entries import Change, FeedEntry

__all__ = ["SCHEMA", "append_changes", "latest_change", "read_changes"]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS changefeed (
    site TEXT NOT NULL, sequence INTEGER NOT NULL, origin TEXT NOT NULL, change BLOB NOT NULL,
    PRIMARY KEY (site, sequence), UNIQUE (site, origin)
) WITHOUT ROWID;
"""


def append_changes(db: sqlite3.Connection, changes: Sequence[Change]) -> None:
    """Append changes to their sites' feeds (inside the caller's transaction); an origin
    already in a site's feed is not appended again."""
    following: dict[str, int] = {}
    for change in changes:
        site = change.site
        known = db.execute(
            "SELECT 1 FROM changefeed WHERE site=? AND origin=?", (site, change.origin)
        ).fetchone()
        if known is not None:
            continue
        if site not in following:
            (highest,) = db.execute(
                "SELECT MAX(sequence) FROM changefeed WHERE site=?", (site,)
            ).fetchone()
            following[site] = (highest or 0) + 1
        db.execute(
            "INSERT INTO changefeed (site, sequence, origin, change) VALUES (?,?,?,?)",
            (site, following[site], change.origin, change.to_bytes()),
        )
        following[site] += 1


def read_changes(db: sqlite3.Connection, site: str, after: int, limit: int) -> list[FeedEntry]:
    """Entries of the site's feed above ``after``, in order (the primary key's B-tree)."""
    rows = db.execute(
        "SELECT sequence, change FROM changefeed WHERE site=? AND sequence>?"
        " ORDER BY sequence LIMIT ?",
        (site, after, limit),
    ).fetchall()
    return [FeedEntry(sequence, Change.from_bytes(blob)) for sequence, blob in rows]


def latest_change(db: sqlite3.Connection, site: str) -> FeedEntry | None:
    """The site's entry with the highest sequence, or ``None``."""
    row = db.execute(
        "SELECT sequence, change FROM changefeed WHERE site=? ORDER BY sequence DESC LIMIT 1",
        (site,),
    ).fetchone()
    return None if row is None else FeedEntry(row[0], Change.from_bytes(row[1]))
