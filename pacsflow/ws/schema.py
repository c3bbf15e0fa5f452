"""The WSDL and XML Schemas of the WADO-WS endpoint, shipped in ``pacsflow/ws/schemas``.

They are served as written except for addresses: the port's ``soap12:address`` becomes the
endpoint's URL and every ``schemaLocation`` becomes ``{endpoint}?xsd={name}``, so a client
reading ``{endpoint}?wsdl`` finds every schema over HTTP. Request payloads are validated against
the same schemas (lxml ``XMLSchema``), loaded from the package through a resolver that serves
only these files: no file system path or network address is ever opened.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Final

from lxml import etree

from pacsflow.ws.names import IHE, IHE_RAD, WADO

__all__ = ["SCHEMA_NAMES", "WSDL_NAME", "Schemas"]

WSDL_NAME: Final = "wado-ws.wsdl"
SCHEMA_NAMES: Final = (
    "rim.xsd",
    "rs.xsd",
    "XDS.b_DocumentRepository.xsd",
    "XDSI.b_ImagingDocumentSource.xsd",
    "dicom.wado.ws.2011.xsd",
)
_XS: Final = "http://www.w3.org/2001/XMLSchema"
_SOAP12_WSDL: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
_ENTRY: Final = {
    IHE_RAD: "XDSI.b_ImagingDocumentSource.xsd",
    IHE: "XDS.b_DocumentRepository.xsd",
    WADO: "dicom.wado.ws.2011.xsd",
}


def _packaged(name: str) -> bytes:
    return files("pacsflow.ws").joinpath("schemas").joinpath(name).read_bytes()


class _PackageResolver(etree.Resolver):
    """Resolve ``schemaLocation`` to the packaged schemas, and nothing else."""

    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> Any:
        name = (system_url or "").rsplit("/", 1)[-1]
        if name in SCHEMA_NAMES:
            return self.resolve_string(_packaged(name), context, base_url=name)
        return self.resolve_empty(context)


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(_PackageResolver())
    return parser


class Schemas:
    """The endpoint's WSDL and schemas: served with its address, and validating requests."""

    def __init__(self) -> None:
        imports = "".join(
            f'<xs:import namespace="{ns}" schemaLocation="{name}"/>' for ns, name in _ENTRY.items()
        )
        driver = f'<xs:schema xmlns:xs="{_XS}">{imports}</xs:schema>'.encode()
        document = etree.fromstring(driver, _parser(), base_url="pacsflow-wado-ws.xsd")
        self._schema = etree.XMLSchema(document)

    def invalid(self, payload: etree._Element) -> str | None:
        """Why ``payload`` does not follow its schema, or None when it does."""
        if self._schema.validate(payload):
            return None
        error = self._schema.error_log.last_error
        return error.message if error is not None else "the payload does not follow the schema"

    @staticmethod
    def wsdl(endpoint: str) -> bytes:
        """The WSDL with ``endpoint`` as the port's address and its schemas' addresses."""
        document = etree.fromstring(_packaged(WSDL_NAME), _parser())
        for address in document.iter(f"{{{_SOAP12_WSDL}}}address"):
            address.set("location", endpoint)
        return _with_locations(document, endpoint)

    @staticmethod
    def xsd(name: str, endpoint: str) -> bytes | None:
        """The schema ``name`` with the addresses of the schemas it imports; None if unknown."""
        if name not in SCHEMA_NAMES:
            return None
        return _with_locations(etree.fromstring(_packaged(name), _parser()), endpoint)


def _with_locations(document: etree._Element, endpoint: str) -> bytes:
    for tag in (f"{{{_XS}}}import", f"{{{_XS}}}include"):
        for element in document.iter(tag):
            location = element.get("schemaLocation")
            if location in SCHEMA_NAMES:
                element.set("schemaLocation", f"{endpoint}?xsd={location}")
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")
