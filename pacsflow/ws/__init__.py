"""WADO-WS (PS3.18 2016 Chapter 6.4, retired from DICOM in 2017 and kept by IHE as XDS-I.b
RAD-69): SOAP 1.2 retrieval of document sets, rendered documents and metadata over ``wado/``.

``WadoWsService`` (``service.py``) answers one SOAP request: ``envelope`` reads and checks it,
``schema`` validates its payload against the packaged XSDs (and serves them with the WSDL),
``retrieve``, ``rendered`` and ``metadata`` answer the three operations with the WADO-RS
transcoding, rendering and metadata paths, ``reply`` packages the answer as MTOM/XOP.

The SOAP layer is written here, over lxml, because no maintained Python library serves it:
spyne (last release 2022) and its older kin write SOAP 1.2 but neither stream MTOM responses
nor follow the document set model of RAD-69, and a generated server would hold every document
in memory. What is written by hand is the part of SOAP 1.2, WS-Addressing and XOP these three
operations need (envelope and header checks, faults, the MIME framing); parsing, schema
validation, XPath and serialization are lxml's.
"""
