"""HTTP services (FastAPI): one module per DICOMweb service; parse, call one use case, render."""
