"""Storage Commitment (PS3.18 Chapter 13, PS3.4 Annex J): request, verdicts and result.

``CommitmentService`` (``service.py``) is what the routes call; ``request.py`` reads the
Storage Commitment Request Module, ``verify.py`` decides for each instance, ``response.py``
writes the Storage Commitment Response Module; requests and results live in the commitment
store port (``pacsflow.ports.commitments``).
"""
