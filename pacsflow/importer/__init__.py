"""Bulk import into a DICOMweb archive (``pacsflow import``): see ``pacsflow.importer.run``."""

from typing import Final

__all__ = ["DEFAULT_URL"]

DEFAULT_URL: Final = "http://127.0.0.1:8080/dicom-web"  # the archive ``pacsflow serve`` runs
