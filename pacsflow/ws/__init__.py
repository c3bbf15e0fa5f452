"""WADO-WS (PS3.18 2016 Chapter 6.4, retired from DICOM in 2017 and kept by IHE as XDS-I.b
RAD-69): SOAP 1.2 retrieval of document sets, rendered documents and metadata over ``wado/``.

``WadoWsService`` (``service.py``) answers one SOAP request: ``envelope`` reads and checks it,
``schema`` validates its payload against the packaged XSDs (and serves them with the WSDL),
``retrieve``, ``rendered`` and ``metadata`` answer the three operations with the WADO-RS
transcoding, rendering and metadata paths, ``reply`` packages the answer as MTOM/XOP.
"""
