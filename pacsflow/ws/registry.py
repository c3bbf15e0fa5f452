"""RegistryResponse and RegistryError (ebRS 3.0) as WADO-WS responses carry them.

ITI TF-3 4.2.4 and RAD TF-3 4.69.4.2.2: the status is Success when every document was returned,
PartialSuccess when some were, Failure when none was; each document not returned has one
RegistryError with severity Error, an errorCode, the reason in codeContext and its
DocumentUniqueId in location, and no DocumentResponse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from pacsflow.ws.names import RS, Status

__all__ = ["RegistryError", "registry_response"]


@dataclass(frozen=True, slots=True)
class RegistryError:
    """Why one document is not in the response."""

    code: str
    context: str
    location: str


def registry_response(errors: Sequence[RegistryError], delivered: int) -> etree._Element:
    """The rs:RegistryResponse of ``delivered`` documents and ``errors``."""
    if not errors:
        status = Status.SUCCESS
    else:
        status = Status.PARTIAL_SUCCESS if delivered else Status.FAILURE
    response = etree.Element(f"{{{RS}}}RegistryResponse", {"status": status})
    if errors:
        listing = etree.SubElement(
            response, f"{{{RS}}}RegistryErrorList", {"highestSeverity": Status.ERROR}
        )
        for error in errors:
            etree.SubElement(
                listing,
                f"{{{RS}}}RegistryError",
                {
                    "codeContext": error.context,
                    "errorCode": error.code,
                    "severity": Status.ERROR,
                    "location": error.location,
                },
            )
    return response
