"""Builds the adapters named by the configuration and holds them for one process.

The composition root: ``build_container(settings)`` is called once in an entry point; tests
build their own container and pass it to ``services.app.create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import ParseResult, parse_qs, unquote, urlparse

from pacsflow.audit.trail import AuditTrail
from pacsflow.auth import Sites, TokenVerifier
from pacsflow.commitment.service import CommitmentService, CommitmentSettings
from pacsflow.config import BusSettings, IndexSettings, ObjectStoreSettings, Settings
from pacsflow.errors import ServiceUnavailable
from pacsflow.nonpatient.service import NonPatientService
from pacsflow.pipeline.ingest import IngestContext
from pacsflow.pipeline.outcomes import OutcomeBoard
from pacsflow.pipeline.records import EVENTS_TOPIC, IngestEvent, RecordError
from pacsflow.ports import Bus, Index, ObjectStore, Subscription
from pacsflow.ports.commitments import CommitmentStore
from pacsflow.ports.workitems import WorkitemStore
from pacsflow.stow.deletion import DeletionService
from pacsflow.stow.inflight import InFlight
from pacsflow.stow.service import StowService
from pacsflow.ups.service import UpsSettings
from pacsflow.ups.worklist import Worklist
from pacsflow.wado.render_cache import RenderCache
from pacsflow.wado.service import WadoService
from pacsflow.ws.service import WadoWsService, WadoWsSettings

if TYPE_CHECKING:
    from pacsflow.adapters.kafka_bus import KafkaSecurity

__all__ = ["ROLE_BACKENDS", "Container", "build_container", "kafka_security"]

log = logging.getLogger(__name__)

Backend = Literal["bus", "objects", "index", "workitems", "commitments"]
# The backends each role calls while it serves: what its readiness depends on.
ROLE_BACKENDS: dict[str, tuple[Backend, ...]] = {
    "stow": ("bus", "objects"),  # publishes to ingest, stages large parts, reads events
    "qido": ("index",),
    "wado": ("index", "objects"),
    "worker": ("bus", "objects", "index"),
    "ups": ("bus", "workitems"),  # workitems and subscriptions; events on the bus
    "console": (),  # its pages need no backend; its status page asks them all (docs/console.md)
    # verifies stored objects against the index; asks the bus how far ingest has come
    "commitment": ("bus", "objects", "index", "commitments"),
}
# Upper bound of one readiness check: each adapter bounds its own call below this.
CHECK_TIMEOUT = 6.0


@dataclass
class Container:
    """The adapters and use cases of one process."""

    settings: Settings
    bus: Bus
    objects: ObjectStore
    index: Index
    outcomes: OutcomeBoard = field(default_factory=OutcomeBoard)
    workitems: WorkitemStore | None = None
    commitments: CommitmentStore | None = None
    inflight: InFlight | None = None  # a STOW process's requests in flight (stow/inflight.py)
    _listener: asyncio.Task[None] | None = None
    _worklist: Worklist | None = None
    _renderings: RenderCache | None = None
    _wado_ws: WadoWsService | None = None

    @property
    def stow(self) -> StowService:
        """The Store Instances use case."""
        return StowService(self.settings, self.bus, self.objects, self.outcomes, self.inflight)

    @property
    def deletion(self) -> DeletionService:
        """DELETE of studies, series and instances, through the pipeline."""
        timeout = self.settings.stow_timeout_seconds
        return DeletionService(self.bus, self.index, self.outcomes, timeout)

    @property
    def wado(self) -> WadoService:
        """The WADO-RS and WADO-URI use cases."""
        secret = self.settings.anonymize_secret
        key = secret.get_secret_value() if secret is not None else None
        if self._renderings is None:
            self._renderings = RenderCache(self.settings.render_cache_mb * 1024 * 1024)
        return WadoService(self.index, self.objects, key, self._renderings)

    @property
    def nonpatient(self) -> NonPatientService:
        """The Non-Patient Instance Service (PS3.18 Chapter 12) over the Studies pipeline."""
        return NonPatientService(self.stow, self.index, self.wado)

    @property
    def commitment(self) -> CommitmentService:
        """The Storage Commitment Service (PS3.18 Chapter 13)."""
        if self.commitments is None:
            raise ServiceUnavailable("this process has no commitment store")
        settings = CommitmentSettings(
            timeout_seconds=self.settings.commitment_timeout_seconds,
            retention_seconds=self.settings.commitment_retention_seconds,
        )
        return CommitmentService(self.index, self.objects, self.bus, self.commitments, settings)

    @property
    def wado_ws(self) -> WadoWsService:
        """The WADO-WS use case (SOAP, IHE RAD-69), built once: it holds the parsed schemas."""
        if self._wado_ws is None:
            secret = self.settings.anonymize_secret
            settings = WadoWsSettings(
                max_request_bytes=self.settings.wado_ws_max_request_bytes,
                max_documents=self.settings.wado_ws_max_documents,
                repository_unique_id=self.settings.wado_ws_repository_unique_id,
                anonymize_secret=secret.get_secret_value() if secret is not None else None,
            )
            self._wado_ws = WadoWsService(self.index, self.objects, settings)
        return self._wado_ws

    @property
    def ingest_context(self) -> IngestContext:
        """What the ingest step needs."""
        return IngestContext(
            objects=self.objects,
            index=self.index,
            duplicate_policy=self.settings.duplicate_policy,
            decode_pixels=self.settings.validate_pixel_data == "decode",
            audit=self.audit,
        )

    @cached_property
    def sites(self) -> Sites:
        """The sites this process serves (``PACSFLOW_SITE`` and ``PACSFLOW_SITES``)."""
        return Sites(self.settings.site, self.settings.sites)

    @cached_property
    def verifier(self) -> TokenVerifier | None:
        """The bearer token verifier, or None while authentication is off."""
        return TokenVerifier(self.settings.auth) if self.settings.auth.enabled else None

    @cached_property
    def audit(self) -> AuditTrail:
        """Where this process's audit messages go (PS3.15 A.5)."""
        return AuditTrail(self.settings.audit, self.bus)

    @property
    def ups(self) -> Worklist:
        """The Worklist Service (UPS-RS) of this process, for every site it serves."""
        if self.workitems is None:
            raise ServiceUnavailable("this process has no workitem store")
        if self._worklist is None:
            settings = UpsSettings(
                worklist_label=self.settings.ups_worklist_label,
                max_results=self.settings.ups_max_results,
                retention_seconds=self.settings.ups_retention_seconds,
            )
            self._worklist = Worklist(self.workitems, self.bus, settings, self.sites.names)
        return self._worklist

    async def start(self, *, listen_for_outcomes: bool = True) -> None:
        """Start every adapter; a STOW process also listens to ingest events.

        When a backend cannot be reached, the adapters already open are closed again and the
        adapter's ``...Unavailable`` error is raised.
        """
        try:
            await self.bus.start()
            await self.objects.start()
            await self.index.start()
            if self.workitems is not None:
                await self.workitems.start()
            if self.commitments is not None:
                await self.commitments.start()
        except BaseException:
            await self.close()
            raise
        if not listen_for_outcomes:
            return
        self.inflight = InFlight(self.settings.data_dir / "stow-inflight")
        try:
            await self.inflight.sweep(self.objects)
        except ServiceUnavailable as exc:  # left for the next start; serving matters more
            log.warning("staged parts of requests cut short not swept: %s", exc)
        subscription = await self.bus.subscribe(
            EVENTS_TOPIC, f"stow-{uuid.uuid4().hex}", start="latest"
        )
        self._listener = asyncio.create_task(self._listen(subscription))

    async def _listen(self, sub: Subscription) -> None:
        try:
            while True:
                try:
                    messages = await sub.fetch(256, timeout=1.0)
                except ServiceUnavailable as exc:
                    log.warning("events fetch failed: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                for message in messages:
                    try:
                        self.outcomes.deliver(IngestEvent.from_bytes(message.value))
                    except RecordError as exc:
                        log.warning("ignoring an unreadable event: %s", exc)
        finally:
            await sub.close()

    async def check(self, roles: Iterable[str]) -> dict[Backend, str]:
        """Ask every backend that ``roles`` use whether it answers, at once and bounded in time.

        Returns the reason of each backend that does not answer (empty: ready).
        """
        ports: dict[Backend, Bus | ObjectStore | Index | WorkitemStore | CommitmentStore | None] = {
            "bus": self.bus,
            "objects": self.objects,
            "index": self.index,
            "workitems": self.workitems,
            "commitments": self.commitments,
        }
        names = sorted({backend for role in roles for backend in ROLE_BACKENDS[role]})

        async def one(name: Backend) -> str | None:
            port = ports[name]
            if port is None:
                return "not configured"
            try:
                await asyncio.wait_for(port.check(), CHECK_TIMEOUT)
            except TimeoutError:
                return f"no answer within {CHECK_TIMEOUT} s"
            except ServiceUnavailable as exc:
                return str(exc)
            return None

        reasons = await asyncio.gather(*(one(name) for name in names))
        return {name: reason for name, reason in zip(names, reasons, strict=True) if reason}

    async def close(self) -> None:
        """Stop listening and close every adapter."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.workitems is not None:
            await self.workitems.close()
        if self.commitments is not None:
            await self.commitments.close()
        if self.inflight is not None:
            self.inflight.close()
        await self.audit.close()
        await self.index.close()
        await self.objects.close()
        await self.bus.close()


def build_container(settings: Settings) -> Container:
    """Choose adapters by URL scheme; raise ``ValueError`` for an unknown backend."""
    return Container(
        settings=settings,
        bus=_bus(settings.resolved_bus_url(), settings.bus),
        objects=_objects(settings.resolved_object_store_url(), settings.objects),
        index=_index(settings.resolved_index_url(), settings.index, settings.stow_consistency),
        workitems=_workitems(settings.resolved_workitem_store_url(), settings.index),
        commitments=_commitments(settings.resolved_commitment_store_url(), settings.index),
    )


def _path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.netloc + parsed.path) if parsed.netloc else unquote(parsed.path))


def _bus(url: str, settings: BusSettings) -> Bus:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from pacsflow.adapters.embedded_bus import EmbeddedBus

        return EmbeddedBus(_path(url))
    if parsed.scheme == "kafka":
        from pacsflow.adapters.kafka_bus import KafkaBus

        return KafkaBus(
            parsed.netloc,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            max_message_bytes=settings.max_message_bytes,
            enable_idempotence=settings.idempotence,
            retention_ms=settings.retention_ms,
            security=kafka_security(settings),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )
    raise ValueError(
        f"unsupported bus URL {url!r} (sqlite:///path or kafka://host:port[,host:port])"
    )


def kafka_security(settings: BusSettings) -> KafkaSecurity:
    """TLS and SASL of the Kafka clients (the bus and the Faust worker)."""
    from pacsflow.adapters.kafka_bus import KafkaSecurity

    return KafkaSecurity(
        protocol=settings.security_protocol,
        ca_certs=settings.ca_certs or None,
        cert_file=settings.cert_file or None,
        key_file=settings.key_file or None,
        sasl_mechanism=settings.sasl_mechanism,
        sasl_username=settings.sasl_username or None,
        sasl_password=settings.sasl_password.get_secret_value() or None,
    )


def _objects(url: str, settings: ObjectStoreSettings) -> ObjectStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from pacsflow.adapters.fs_store import FileSystemObjectStore

        return FileSystemObjectStore(_path(url))
    if parsed.scheme in ("s3", "s3+https"):
        from pacsflow.adapters.s3_store import S3ObjectStore

        bucket, _, prefix = parsed.path.lstrip("/").partition("/")
        query = parse_qs(parsed.query)
        return S3ObjectStore(
            f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname),
            bucket,
            access_key=unquote(parsed.username or "") or settings.access_key,
            secret_key=unquote(parsed.password or "") or settings.secret_key.get_secret_value(),
            secure=parsed.scheme == "s3+https",
            region=query.get("region", [None])[0],
            prefix=prefix,
            ca_certs=settings.ca_certs or None,
        )
    raise ValueError(
        f"unsupported object store URL {url!r} "
        "(file:///path, s3://key:secret@host:port/bucket, s3+https://...)"
    )


def _index(url: str, settings: IndexSettings, consistency: str) -> Index:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from pacsflow.adapters.sqlite_index import SqliteIndex

        return SqliteIndex(_path(url))
    if parsed.scheme in ("http", "https"):
        from pacsflow.adapters.es_index import ElasticsearchIndex

        auth, host = _es_auth(parsed, settings), _host(parsed)
        return ElasticsearchIndex(
            f"{parsed.scheme}://{host}",
            prefix=settings.prefix,
            # read-your-writes: with "indexed" STOW, a write is searchable once acknowledged
            refresh=consistency == "indexed",
            basic_auth=auth,
            api_key=settings.api_key.get_secret_value() or None,
            ca_certs=settings.ca_certs or None,
        )
    raise ValueError(
        f"unsupported index URL {url!r} (sqlite:///path or http(s)://[user:pass@]host:9200)"
    )


def _es_auth(parsed: ParseResult, settings: IndexSettings) -> tuple[str, str] | None:
    """Basic credentials of an Elasticsearch URL, else of the settings, else none."""
    if parsed.username:
        return unquote(parsed.username), unquote(parsed.password or "")
    if settings.username:
        return settings.username, settings.password.get_secret_value()
    return None


def _host(parsed: ParseResult) -> str:
    return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)


def _es_url(parsed: ParseResult) -> str:
    """An Elasticsearch URL without its credentials."""
    return f"{parsed.scheme}://{_host(parsed)}"


def _es_store_options(parsed: ParseResult, settings: IndexSettings) -> dict[str, Any]:
    """Prefix and credentials of a store kept in the index's Elasticsearch."""
    return {
        "prefix": settings.prefix,
        "basic_auth": _es_auth(parsed, settings),
        "api_key": settings.api_key.get_secret_value() or None,
        "ca_certs": settings.ca_certs or None,
    }


def _workitems(url: str, settings: IndexSettings) -> WorkitemStore:
    """The workitem store of the Worklist (UPS-RS): SQLite, or the index's Elasticsearch."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from pacsflow.adapters.sqlite_workitems import SqliteWorkitemStore

        return SqliteWorkitemStore(_path(url))
    if parsed.scheme in ("http", "https"):
        from pacsflow.adapters.es_workitems import ElasticsearchWorkitemStore

        return ElasticsearchWorkitemStore(_es_url(parsed), **_es_store_options(parsed, settings))
    raise ValueError(
        f"unsupported workitem store URL {url!r} (sqlite:///path or http(s)://host:9200)"
    )


def _commitments(url: str, settings: IndexSettings) -> CommitmentStore:
    """The commitment store (Storage Commitment): SQLite, or the index's Elasticsearch."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from pacsflow.adapters.sqlite_commitments import SqliteCommitmentStore

        return SqliteCommitmentStore(_path(url))
    if parsed.scheme in ("http", "https"):
        from pacsflow.adapters.es_commitments import ElasticsearchCommitmentStore

        return ElasticsearchCommitmentStore(_es_url(parsed), **_es_store_options(parsed, settings))
    raise ValueError(
        f"unsupported commitment store URL {url!r} (sqlite:///path or http(s)://host:9200)"
    )
