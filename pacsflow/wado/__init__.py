"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data from object storage.

``WadoService`` (``service.py``) is what the routes call, with the types of ``retrieval.py``.

Nothing here parses a stored DICOM file to answer: metadata comes from the DICOM JSON written
at ingest, frames and bulk values from byte ranges recorded at ingest (frame offset table and
bulk ranges), instances stream as stored unless the client asks for another transfer syntax. The one
exception: frames of an instance stored Deflated (not addressable by range) are parsed.
"""
