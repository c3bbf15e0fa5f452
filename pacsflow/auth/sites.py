"""The sites (partitions) a process serves, and the site of a request (docs/security.md).

Every key, index entry, record and workitem carries its site; a request names its site in
its path (``/sites/{site}/dicom-web/...``) or gets the default site (``/dicom-web/...``).
A site a process does not serve is answered 404, before anything is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from pacsflow.errors import NotFound

__all__ = ["SITE_PATTERN", "Sites"]

SITE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SITE: Final = re.compile(SITE_PATTERN)


class Sites:
    """The default site and every other site one process serves."""

    def __init__(self, default: str, others: Iterable[str] = ()) -> None:
        self.default = default
        self.names = frozenset({default, *others})
        bad = sorted(name for name in self.names if not _SITE.match(name))
        if bad:
            raise ValueError(f"not a site name: {', '.join(bad)}")

    def resolve(self, name: str | None) -> str:
        """The site a request names (the default when it names none); ``NotFound`` otherwise."""
        if name is None:
            return self.default
        if name not in self.names:
            raise NotFound(f"this archive serves no site {name[:64]!r}")
        return name
