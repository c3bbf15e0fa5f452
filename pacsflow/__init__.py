"""pacsflow: a DICOMweb archive (DICOM PS3.18) built as a message-driven ingestion pipeline."""

__all__ = ["__version__"]

__version__ = "0.1.0"
