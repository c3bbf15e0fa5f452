"""The WADO-WS use case: one SOAP request in, one SOAP response (or Fault) out.

Built once per process by the container, like ``WadoService``. ``answer`` reads and checks the
envelope (``envelope``), validates its payload against the packaged schemas (``schema``),
bounds the number of documents, runs the operation over the index and the object store with
the request's site, and returns the ``Payload`` of the MTOM (or inline) response. Every failure
becomes a SOAP Fault (``faults``): the request's are Sender faults with a 4xx status, a backend
that does not answer is a Receiver fault with 503, anything else a Receiver fault with 500 and
no detail (the trace goes to the log only).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from lxml import etree

from pacsflow.errors import BadRequest, ServiceUnavailable
from pacsflow.ports import Index, ObjectStore
from pacsflow.wado.retrieval import Payload
from pacsflow.ws.context import Context
from pacsflow.ws.envelope import SoapRequest, read_request
from pacsflow.ws.faults import SoapFault, fault_payload, unavailable
from pacsflow.ws.metadata import retrieve_metadata_document_set
from pacsflow.ws.names import IHE, METADATA, RENDERED, RETRIEVE, WADO
from pacsflow.ws.rendered import retrieve_rendered_document_set
from pacsflow.ws.reply import Reply, Spool, wants_inline
from pacsflow.ws.retrieve import retrieve_document_set
from pacsflow.ws.schema import Schemas

__all__ = ["WadoWsService", "WadoWsSettings"]

log = logging.getLogger(__name__)

Answer = Callable[[Context, Reply, Spool], Awaitable[None]]
_ANSWERS: Final[dict[str, Answer]] = {
    RETRIEVE.name: retrieve_document_set,
    RENDERED.name: retrieve_rendered_document_set,
    METADATA.name: retrieve_metadata_document_set,
}
_DOCUMENTS: Final = (
    f"{{{IHE}}}DocumentRequest",
    f"{{{WADO}}}RenderedDocumentRequest",
    f"{{{WADO}}}DocumentRequest",
)


@dataclass(frozen=True, slots=True)
class WadoWsSettings:
    """The limits of a request and this source's RepositoryUniqueId (docs/configuration.md)."""

    max_request_bytes: int = 4 * 1024 * 1024
    max_documents: int = 10_000
    repository_unique_id: str | None = None
    anonymize_secret: str | None = None


class WadoWsService:
    """Answer WADO-WS requests (PS3.18 2016 6.4; IHE RAD-69) and serve the WSDL and schemas."""

    def __init__(self, index: Index, objects: ObjectStore, settings: WadoWsSettings) -> None:
        self._index = index
        self._objects = objects
        self.settings = settings
        self._schemas = Schemas()

    def wsdl(self, endpoint: str) -> bytes:
        """The WSDL, addressed to ``endpoint``."""
        return self._schemas.wsdl(endpoint)

    def xsd(self, name: str, endpoint: str) -> bytes | None:
        """One of the schemas the WSDL imports, or None."""
        return self._schemas.xsd(name, endpoint)

    def too_large(self) -> Payload:
        """The Fault of a request body beyond ``max_request_bytes`` (413)."""
        limit = self.settings.max_request_bytes
        reason = f"the request is larger than {limit} bytes (PACSFLOW_WADO_WS_MAX_REQUEST_BYTES)"
        return fault_payload(SoapFault("Sender", reason, status=413))

    async def answer(
        self, body: bytes, content_type: str, accept: str, site: str, root_url: str
    ) -> Payload:
        """The response to one SOAP request, or its Fault; never raises."""
        request: SoapRequest | None = None
        try:
            request = await read_request(body, content_type)
            self._check(request)
            context = Context(
                self._index,
                self._objects,
                site,
                self.settings.repository_unique_id,
                self.settings.anonymize_secret,
                root_url,
            )
            return await self._run(request, context, wants_inline(accept))
        except SoapFault as fault:
            return fault_payload(self._related(fault, request))
        except ServiceUnavailable as exc:
            log.warning("WADO-WS: %s", exc)
            return fault_payload(self._related(unavailable(str(exc)), request))
        except BadRequest as exc:
            return fault_payload(self._related(SoapFault("Sender", str(exc)), request))
        except Exception:
            log.exception("WADO-WS: unexpected error")
            return fault_payload(self._related(SoapFault("Receiver", "internal error"), request))

    @staticmethod
    def _related(fault: SoapFault, request: SoapRequest | None) -> SoapFault:
        if request is not None and fault.relates_to is None:
            fault.relates_to = request.message_id
        return fault

    def _check(self, request: SoapRequest) -> None:
        """The payload follows its schema and lists no more documents than allowed."""
        if (why := self._schemas.invalid(request.payload)) is not None:
            name = etree.QName(request.payload).localname
            raise SoapFault("Sender", f"the {name} does not follow its schema (see ?wsdl): {why}")
        count = sum(1 for _ in request.payload.iter(*_DOCUMENTS))
        if count > self.settings.max_documents:
            limit = self.settings.max_documents
            raise SoapFault(
                "Sender",
                f"the request lists {count} documents; at most {limit} a request"
                " (PACSFLOW_WADO_WS_MAX_DOCUMENTS)",
                status=413,
            )

    @staticmethod
    async def _run(request: SoapRequest, context: Context, inline: bool) -> Payload:
        reply = Reply(request)
        spool = Spool()
        try:
            await _ANSWERS[request.operation.name](context, reply, spool)
        except BaseException:
            spool.close()
            raise
        return reply.payload(inline, spool.close)
