"""The names WADO-WS messages use: namespaces, operations and their actions, statuses, errors.

Operations and actions are those of PS3.18 2016 6.4.1 to 6.4.3 (RAD-69 and the two DICOM
actions); statuses and severities are ebRS 3.0's as ITI TF-3 4.2.4 uses them; error codes are
ITI TF-3 4.2.4.1's (Table 4.2.4.1-2) and PS3.18 2016 6.4.4's ``urn:dicom:wado:00NN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "IHE",
    "IHE_RAD",
    "OPERATIONS",
    "RS",
    "SOAP11",
    "SOAP12",
    "WADO",
    "WSA",
    "XOP",
    "ErrorCode",
    "Operation",
    "Status",
    "operation_of_action",
    "operation_of_payload",
]

SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
XOP: Final = "http://www.w3.org/2004/08/xop/include"
IHE: Final = "urn:ihe:iti:xds-b:2007"
IHE_RAD: Final = "urn:ihe:rad:xdsi-b:2009"
WADO: Final = "urn:dicom:wado:ws:2011"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"


class Status:
    """RegistryResponse/@status (ebRS 3.0; PartialSuccess is ITI TF-3 4.2.4.2's)."""

    SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"


class ErrorCode:
    """RegistryError/@errorCode values pacsflow reports, one document each."""

    # ITI TF-3 Table 4.2.4.1-2: the document is not available (unknown, or not in this site).
    UNKNOWN_DOCUMENT: Final = "XDSDocumentUniqueIdError"
    # ITI TF-3 Table 4.2.4.1-2: the RepositoryUniqueId is not this Imaging Document Source's.
    UNKNOWN_REPOSITORY: Final = "XDSUnknownRepositoryId"
    # PS3.18 2016 6.4.4: Web Server does not support anonymization.
    NO_ANONYMIZATION: Final = "urn:dicom:wado:0002"
    # PS3.18 2016 6.4.4: Web Server does not support the requested format or transfer syntax.
    UNSUPPORTED_FORMAT: Final = "urn:dicom:wado:0006"
    # PS3.18 2016 6.4.4: the instance cannot be provided in the requested format or syntax.
    NOT_PROVIDED: Final = "urn:dicom:wado:0007"
    # PS3.18 2016 6.4.4: inconsistent identifiers (the instance is in another study or series).
    INCONSISTENT: Final = "urn:dicom:wado:0010"
    # PS3.18 2016 6.4.4: invalid parameter value in request.
    INVALID_PARAMETER: Final = "urn:dicom:wado:0012"
    # PS3.18 2016 6.4.4: unsupported parameter in request.
    UNSUPPORTED_PARAMETER: Final = "urn:dicom:wado:0013"
    # PS3.18 2016 6.4.4: processing failure.
    PROCESSING_FAILURE: Final = "urn:dicom:wado:0014"
    # PS3.18 2016 6.4.4: out of range frame number.
    FRAME_OUT_OF_RANGE: Final = "urn:dicom:wado:0018"


@dataclass(frozen=True, slots=True)
class Operation:
    """One WADO-WS operation: its request and response elements and their actions."""

    name: str
    request: str  # Clark notation {namespace}local of the request's payload element
    actions: frozenset[str]  # the request actions accepted (the WSDL's first)
    response: str
    response_action: str


RETRIEVE: Final = Operation(
    "RetrieveImagingDocumentSet",
    f"{{{IHE_RAD}}}RetrieveImagingDocumentSetRequest",
    frozenset({"urn:ihe:rad:2009:RetrieveImagingDocumentSet"}),
    f"{{{IHE}}}RetrieveDocumentSetResponse",
    "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
)
RENDERED: Final = Operation(
    "RetrieveRenderedImagingDocumentSet",
    f"{{{WADO}}}RetrieveRenderedImagingDocumentSetRequest",
    frozenset({"urn:dicom:wado:ws:2011:RetrieveRenderedImagingDocumentSet"}),
    f"{{{WADO}}}RetrieveRenderedImagingDocumentSetResponse",
    "urn:dicom:wado:ws:2011:RetrieveRenderedImagingDocumentSetResponse",
)
# PS3.18 2016 6.4.3.1 names the action urn:wado:2011:...; the namespace's form is accepted too.
METADATA: Final = Operation(
    "RetrieveImagingDocumentSetMetadata",
    f"{{{WADO}}}RetrieveImagingDocumentSetInformationRequest",
    frozenset(
        {
            "urn:wado:2011:RetrieveImagingDocumentSetInformation",
            "urn:dicom:wado:ws:2011:RetrieveImagingDocumentSetInformation",
        }
    ),
    f"{{{WADO}}}RetrieveImagingDocumentSetInformationResponse",
    "urn:wado:2011:RetrieveImagingDocumentSetInformationResponse",
)
OPERATIONS: Final = (RETRIEVE, RENDERED, METADATA)


def operation_of_action(action: str) -> Operation | None:
    """The operation a SOAP action names, or None."""
    return next((op for op in OPERATIONS if action in op.actions), None)


def operation_of_payload(tag: str) -> Operation | None:
    """The operation whose request element is ``tag`` (Clark notation), or None."""
    return next((op for op in OPERATIONS if op.request == tag), None)
