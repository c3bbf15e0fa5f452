"""STOW-RS (PS3.18 10.5): streaming parts, their admission as ingest records, the response."""
