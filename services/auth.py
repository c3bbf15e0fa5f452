"""Who may call a route: bearer authentication, rights per site and the audit trail, in one place.

A router adds one line - ``APIRouter(dependencies=[guard(Right.READ, Audited.QUERY)])``, or
one ``dependencies=[...]`` per route where they differ - and ``services.app`` refuses to
build an app with a DICOMweb route that has none. The guard:

1. authenticates: the ``Authorization: Bearer`` token (RFC 6750 2.1; a WebSocket or a
   browser's GET may give it as the ``access_token`` query parameter instead, RFC 6750 2.3,
   which ``TokenQueryParameter`` moves into the header and out of the logged URL); a
   missing token is answered 401 with ``WWW-Authenticate: Bearer realm=...``, a refused one
   401 with ``error="invalid_token"`` and a User Authentication audit message;
2. resolves the request's site (``services.common.request_site``: 404 for a site not served)
   and checks that every UID the path names is one (400 otherwise, PS3.5 9.1);
3. authorizes: without the right on that site, 403 with ``error="insufficient_scope"`` and a
   Security Alert audit message;
4. audits the transaction (``Audited``) with its outcome once the route has answered.

While authentication is off (no ``PACSFLOW_AUTH_ISSUER``) every request is ``ANYONE``, who
holds every right; auditing still happens.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from enum import Enum
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, params
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from pacsflow.audit import events
from pacsflow.audit.events import AuditContext
from pacsflow.audit.messages import AuditMessage, Outcome, Participant, SopClassInstances
from pacsflow.auth import ANYONE, InvalidToken, MissingToken, Principal, Right, bearer_token
from pacsflow.container import Container
from pacsflow.dicom.uids import require_uid
from pacsflow.errors import Forbidden, PacsflowError, Unauthorized
from services.common import ContainerDep, SiteDep

__all__ = ["Audited", "PrincipalDep", "TokenQueryParameter", "guard", "is_guarded", "principal_of"]

_TOKEN_PARAMETER: Final = "access_token"
_PATH_UIDS: Final = ("study", "series", "instance", "workitem")  # path parameters that are UIDs


class Audited(Enum):
    """The audit message a route's transaction sends (``pacsflow.audit.events``)."""

    NONE = "none"
    STORE = "store"
    QUERY = "query"
    TRANSFER = "transfer"
    ACCESS = "access"
    DELETE = "delete"


def _requester(connection: HTTPConnection, principal: Principal | None) -> Participant:
    address = connection.client.host if connection.client else None
    if principal is None:  # not authenticated: all we know is where the request came from
        return Participant(address or "unknown", True, address=_ip(address))
    return Participant(principal.subject, True, name=principal.name, address=_ip(address))


def _ip(address: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(address or ""))
    except ValueError:
        return None


def _context(
    connection: HTTPConnection, container: Container, site: str, principal: Principal | None
) -> AuditContext:
    server = connection.scope.get("server")
    archive = Participant(
        container.audit.source_id, False, address=_ip(server[0]) if server else None
    )
    return AuditContext(_requester(connection, principal), archive, container.audit.source_id, site)


async def _principal(connection: HTTPConnection, container: ContainerDep) -> Principal:
    """The sender of the request (``ANYONE`` while authentication is off); 401 otherwise."""
    verifier = container.verifier
    if verifier is None:
        return ANYONE
    realm = f'Bearer realm="{container.settings.auth.realm}"'
    try:
        return await verifier.principal(bearer_token(connection.headers.get("authorization")))
    except MissingToken as exc:
        raise Unauthorized(str(exc), realm) from None
    except InvalidToken as exc:
        reason = str(exc).replace('"', "'")
        site = container.sites.default
        context = _context(connection, container, site, None)
        await container.audit.record(events.authentication_failed(context, reason))
        challenge = f'{realm}, error="invalid_token", error_description="{reason}"'
        raise Unauthorized(f"invalid bearer token: {reason}", challenge) from None


PrincipalDep = Annotated[Principal, Depends(_principal)]


def principal_of(connection: HTTPConnection) -> Principal:
    """The principal the guard admitted for this request."""
    principal: Principal = connection.state.principal
    return principal


def _studies(connection: HTTPConnection) -> list[str]:
    study = connection.path_params.get("study") or connection.query_params.get("studyUID")
    return [study] if study else []


def _stored(parts: Any) -> tuple[dict[str, list[SopClassInstances]], list[str]]:
    """Stored instances by study and SOP Class; the SOP Instance UIDs that failed."""
    by_study: dict[str, dict[str, list[str]]] = {}
    failed: list[str] = []
    for part in parts or ():
        if part.stored:
            sops = by_study.setdefault(part.study_uid, {})
            sops.setdefault(part.sop_class_uid, []).append(part.sop_uid)
        else:
            failed.append(part.sop_uid or f"part {part.number}")
    studies = {
        study: [SopClassInstances(c or None, tuple(uids)) for c, uids in sorted(sops.items())]
        for study, sops in by_study.items()
    }
    return studies, failed


def _messages(
    kind: Audited,
    connection: HTTPConnection,
    context: AuditContext,
    outcome: Outcome,
    description: str | None,
) -> list[AuditMessage]:
    if kind is Audited.QUERY:
        resource = "workitems" if "/workitems" in connection.url.path else "studies"
        text = connection.scope.get("query_string", b"")
        sop_class = events.SEARCH_SOP_CLASSES[resource]
        return [events.query(context, sop_class, text, outcome, description)]
    if kind is Audited.STORE:
        studies, failed = _stored(getattr(connection.state, "stored_parts", None))
        found = [events.instances_stored(context, studies, Outcome.SUCCESS)] if studies else []
        if failed or outcome is not Outcome.SUCCESS:
            why = description or f"not stored: {', '.join(failed)}"
            found.append(events.instances_stored(context, {}, Outcome.MINOR_FAILURE, why))
        return found
    build = {
        Audited.TRANSFER: events.begin_transferring,
        Audited.ACCESS: events.instances_accessed,
        Audited.DELETE: events.study_deleted,
    }[kind]
    return [build(context, _studies(connection), outcome, description)]


def guard(right: Right, audited: Audited = Audited.NONE) -> params.Depends:
    """The dependency that admits a request needing ``right`` and audits it as ``audited``."""

    async def admit(
        connection: HTTPConnection,
        container: ContainerDep,
        principal: PrincipalDep,
        site: SiteDep,
    ) -> AsyncIterator[Principal]:
        for name in _PATH_UIDS:
            if name in connection.path_params:
                require_uid(connection.path_params[name], name)
        if not principal.may(site, right):
            context = _context(connection, container, site, principal)
            reason = f"{principal.subject} has no {right} right on site {site}"
            alert = events.security_alert(context, connection.url.path, reason)
            await container.audit.record(alert)
            challenge = (
                f'Bearer realm="{container.settings.auth.realm}", error="insufficient_scope"'
            )
            raise Forbidden(f"no {right} right on site {site}", challenge=challenge)
        connection.state.principal = principal
        if audited is Audited.NONE:
            yield principal
            return
        outcome, description = Outcome.SUCCESS, None
        try:
            yield principal
        except PacsflowError as exc:
            outcome, description = Outcome.MINOR_FAILURE, str(exc)[:500]
            raise
        except Exception as exc:
            outcome, description = Outcome.SERIOUS_FAILURE, type(exc).__name__
            raise
        finally:
            context = _context(connection, container, site, principal)
            for message in _messages(audited, connection, context, outcome, description):
                await container.audit.record(message)

    admit.pacsflow_right = right  # type: ignore[attr-defined]
    dependency: params.Depends = Depends(admit)
    return dependency


def is_guarded(call: Callable[..., Any] | None) -> bool:
    """Whether a dependency's callable is a guard (``services.app`` checks every route)."""
    return call is not None and hasattr(call, "pacsflow_right")


class TokenQueryParameter:
    """Moves ``access_token`` from the query string into ``Authorization`` (RFC 6750 2.3).

    A WebSocket in a browser cannot send headers, nor can an ``<img>``; the parameter is taken
    out of the scope before routing, so no route sees it and the server's access log shows
    the URL without it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and _TOKEN_PARAMETER.encode() in scope.get(
            "query_string", b""
        ):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            tokens = [value for key, value in pairs if key == _TOKEN_PARAMETER]
            kept = [(key, value) for key, value in pairs if key != _TOKEN_PARAMETER]
            scope["query_string"] = urlencode(kept).encode("latin-1")
            headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            has_header = len(headers) != len(scope["headers"])
            if tokens and not has_header:
                headers.append((b"authorization", f"Bearer {tokens[-1]}".encode("latin-1")))
                scope["headers"] = headers
        await self.app(scope, receive, send)
