"""One error hierarchy for pacsflow; ``services.errors`` maps it to HTTP status codes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "RETRY_AFTER",
    "RETRY_AFTER_SECONDS",
    "BadRequest",
    "BusFull",
    "BusUnavailable",
    "Conflict",
    "Forbidden",
    "Gone",
    "IndexFull",
    "IndexUnavailable",
    "InsufficientStorage",
    "NotAcceptable",
    "NotFound",
    "ObjectNotFound",
    "ObjectStoreFull",
    "ObjectStoreUnavailable",
    "PacsflowError",
    "PayloadTooLarge",
    "PublishUnconfirmed",
    "RangeNotSatisfiable",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
]


RETRY_AFTER_SECONDS: Final = 5
"""How long a client waits before it repeats a request a 503 answered (RFC 9110 10.2.3)."""
RETRY_AFTER: Final[Mapping[str, str]] = MappingProxyType({"Retry-After": str(RETRY_AFTER_SECONDS)})
"""The header of every 503 (and 507, and a 202 still working): HTTP services, the worker's
``/ready`` and WADO-WS Receiver faults all send this one."""


class PacsflowError(Exception):
    """Base of every error pacsflow raises on purpose.

    ``warning`` is the text of an HTTP ``Warning: 299`` header the standard asks for with this
    failure (the Worklist transactions of PS3.18 Chapter 11 name theirs), or ``None``.
    """

    def __init__(self, *args: object, warning: str | None = None) -> None:
        super().__init__(*args)
        self.warning = warning


class BadRequest(PacsflowError):
    """The request is malformed (HTTP 400)."""


class Unauthorized(PacsflowError):
    """The request carries no acceptable credentials (HTTP 401 with ``challenge`` as its
    ``WWW-Authenticate``, RFC 6750 3)."""

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(message)
        self.challenge = challenge


class NotFound(PacsflowError):
    """The addressed resource does not exist (HTTP 404)."""


class Forbidden(PacsflowError):
    """The server understood the request and refuses to perform it (HTTP 403).

    ``challenge`` is a ``WWW-Authenticate`` value when the token lacks a right (RFC 6750 3.1).
    """

    def __init__(
        self, *args: object, challenge: str | None = None, warning: str | None = None
    ) -> None:
        super().__init__(*args, warning=warning)
        self.challenge = challenge


class Conflict(PacsflowError):
    """The request is inconsistent with the current state of the resource (HTTP 409)."""


class Gone(PacsflowError):
    """The addressed resource existed and no longer exists (HTTP 410)."""


class NotAcceptable(PacsflowError):
    """No representation matches the Accept header (HTTP 406)."""


class PayloadTooLarge(PacsflowError):
    """The request body exceeds the configured limit (HTTP 413)."""


class UnsupportedMediaType(PacsflowError):
    """The request's media type is not one this resource accepts (HTTP 415)."""


class RangeNotSatisfiable(PacsflowError):
    """A Range header asks for bytes outside the value (HTTP 416)."""


class ServiceUnavailable(PacsflowError):
    """A backend cannot make the request durable right now (HTTP 503 with Retry-After)."""


class InsufficientStorage(ServiceUnavailable):
    """A backend's disk is full (HTTP 507 with Retry-After, RFC 4918 11.5): nothing was kept."""


class BusUnavailable(ServiceUnavailable):
    """The bus adapter failed to publish or consume."""


class PublishUnconfirmed(BusUnavailable):
    """A publish failed after its messages may have reached the log: whether they were
    appended is unknown (a timeout, a lost connection or an unknown broker error)."""


class ObjectStoreUnavailable(ServiceUnavailable):
    """The object store adapter failed."""


class IndexUnavailable(ServiceUnavailable):
    """The index adapter failed."""


class BusFull(BusUnavailable, InsufficientStorage):
    """The bus's journal cannot grow: its disk is full."""


class ObjectStoreFull(ObjectStoreUnavailable, InsufficientStorage):
    """The object store has no space for the object."""


class IndexFull(IndexUnavailable, InsufficientStorage):
    """The index cannot grow: its disk is full."""


class ObjectNotFound(NotFound):
    """The object store has no object under the key (a 404 when a request meets it)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no stored object {key}")
        self.key = key
