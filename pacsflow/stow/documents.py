"""Encapsulated documents of a metadata request: PDF, CDA and STL (PS3.18 10.5.1.4, PS3.3 C.24.2).

"An Encapsulated Document (0042,0011) Bulkdata element shall be encoded using the media-type
from the MIME Type of the Encapsulated Document (0042,0012) Attribute with one message part per
document" (PS3.18 10.5.1.4). Each media type has one SOP Class (PS3.4 B.5): Encapsulated PDF,
CDA (HL7 CDA R2, ``text/xml``) and STL (``model/stl``). The part is checked to be what its
media type says before it is stored: a PDF starts with its header (ISO 32000-1 7.5.2), a CDA
document is well-formed XML whose root is ``ClinicalDocument`` in the HL7 v3 namespace (read
without entities, DTDs or network), an STL file is binary (80-byte header, triangle count, 50
bytes per triangle) or ASCII (``solid`` ... ``endsolid``).
"""

from __future__ import annotations

from typing import BinaryIO, Final

from lxml import etree
from pydicom.uid import EncapsulatedCDAStorage, EncapsulatedPDFStorage, EncapsulatedSTLStorage

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason

__all__ = ["DOCUMENT_CLASSES", "check_document"]

DOCUMENT_CLASSES: Final = {
    "application/pdf": EncapsulatedPDFStorage,
    "text/xml": EncapsulatedCDAStorage,
    "model/stl": EncapsulatedSTLStorage,
}
"""The SOP Class of each media type an Encapsulated Document part may have."""

_CDA_ROOT: Final = "{urn:hl7-org:v3}ClinicalDocument"
_CDA_MAX_BYTES: Final = 64 * 1024 * 1024


def _refused(media: str, why: str) -> PartRejected:
    return PartRejected(FailureReason.CANNOT_UNDERSTAND, f"the {media} part is not valid: {why}")


def check_document(fp: BinaryIO, media: str, size: int) -> None:
    """Check that an Encapsulated Document part holds what its media type says."""
    fp.seek(0)
    if media == "application/pdf":
        if not fp.read(1024).lstrip(b"\x00\t\n\r ").startswith(b"%PDF-"):
            raise _refused(media, "it does not start with a %PDF- header")
    elif media == "text/xml":
        if size > _CDA_MAX_BYTES:
            raise _refused(media, f"a CDA document of more than {_CDA_MAX_BYTES} bytes")
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        try:
            root = etree.fromstring(fp.read(), parser)
        except etree.XMLSyntaxError as exc:
            raise _refused(media, f"not well-formed XML: {exc}") from exc
        if root.tag != _CDA_ROOT:
            tag = root.tag if isinstance(root.tag, str) else repr(root.tag)
            raise _refused(media, f"the root element is {tag}, not an HL7 CDA ClinicalDocument")
    elif media == "model/stl":
        _check_stl(fp, size)
    fp.seek(0)


def _check_stl(fp: BinaryIO, size: int) -> None:
    head = fp.read(84)
    if len(head) == 84 and 84 + 50 * int.from_bytes(head[80:84], "little") == size:
        return  # binary STL
    if head.lstrip().lower().startswith(b"solid"):
        fp.seek(max(0, size - 1024))
        if b"endsolid" in fp.read().lower():
            return  # ASCII STL
    raise _refused("model/stl", "neither a binary nor an ASCII STL file")
