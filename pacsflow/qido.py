"""QIDO-RS Search for Studies (PS3.18 10.6), the minimal form: every study of the site, paged.

Matching, includefield and the other levels arrive with the QIDO-RS issue.
"""

from __future__ import annotations

from typing import Any, Final

from pacsflow.errors import BadRequest
from pacsflow.ports import Index

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "search_for_studies"]

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000


async def search_for_studies(
    index: Index, site: str, root_url: str, limit: int | None, offset: int | None
) -> list[dict[str, Any]]:
    """Studies as DICOM JSON, each with its RetrieveURL (PS3.18 Table 10.6.3-3)."""
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if limit < 1 or offset < 0:
        raise BadRequest("limit must be >= 1 and offset >= 0")
    records = await index.search_studies(site, min(limit, MAX_LIMIT), offset)
    results = []
    for record in records:
        attributes = dict(record.attributes)
        attributes["00081190"] = {"vr": "UR", "Value": [f"{root_url}/studies/{record.study_uid}"]}
        results.append(dict(sorted(attributes.items())))
    return results
