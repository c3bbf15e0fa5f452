"""What every WADO-WS operation works with: the ports, the request's site and its settings."""

from __future__ import annotations

from dataclasses import dataclass

from pacsflow.ports import Index, ObjectStore

__all__ = ["Context"]


@dataclass(frozen=True, slots=True)
class Context:
    """The ports, the site a request reads (as every service's, ``services.common``), this
    source's RepositoryUniqueId (None: not checked), the de-identification secret (None: no
    anonymization) and the DICOMweb root for BulkDataURIs."""

    index: Index
    objects: ObjectStore
    site: str
    repository: str | None = None
    anonymize_secret: str | None = None
    root_url: str = ""
