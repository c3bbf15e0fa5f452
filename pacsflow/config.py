"""Configuration, read once per process from ``PACSFLOW_*`` variables (pydantic-settings).

Backends are chosen by URL: ``sqlite:///path`` (embedded bus journal or index),
``file:///path`` (object store), ``kafka://``, ``s3://``, ``http(s)://``; unset URLs default to
files under ``data_dir``. The settings of each backend are grouped (``bus``, ``objects``,
``index``); the flat names of docs/configuration.md (``PACSFLOW_KAFKA_PARTITIONS``) and the
nested ones (``PACSFLOW_BUS__PARTITIONS``) both set them. Secrets are ``SecretStr``: they never
appear in a repr, a log line or a validation error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pacsflow.audit.settings import AuditSettings
from pacsflow.auth.settings import AuthSettings
from pacsflow.auth.sites import SITE_PATTERN

__all__ = [
    "FLAT_NAMES",
    "HTTP_ROLES",
    "INLINE_EMBEDDED",
    "INLINE_KAFKA",
    "BusSettings",
    "IndexSettings",
    "ObjectStoreSettings",
    "Settings",
    "variable_name",
]

INLINE_KAFKA = 1024 * 1024
INLINE_EMBEDDED = 64 * 1024
HTTP_ROLES = ("stow", "qido", "wado", "ups", "commitment")
"""The roles that serve HTTP (``pacsflow serve`` runs them all)."""
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3 bucket names: 3 to 63
# The backend URL forms each variable accepts, by scheme.
_URL_FORMS: dict[str, dict[str, str]] = {
    "PACSFLOW_BUS_URL": {"sqlite": "sqlite:///path", "kafka": "kafka://host:port[,host:port]"},
    "PACSFLOW_OBJECT_STORE_URL": {
        "file": "file:///path",
        "s3": "s3://[key:secret@]host:port/bucket[/prefix]",
        "s3+https": "s3+https://...",
    },
    "PACSFLOW_INDEX_URL": {
        "sqlite": "sqlite:///path",
        "http": "http(s)://[user:password@]host:9200",
        "https": "https://...",
    },
}


def _check_url(variable: str, url: str | None) -> str | None:
    """``url`` if its scheme is one ``variable`` accepts and it names a place; else ValueError."""
    if url is None or not url.strip():
        return None
    parsed = urlparse(url)
    accepted = _URL_FORMS[variable]
    forms = " or ".join(accepted.values())
    if parsed.scheme not in accepted:
        raise ValueError(f"{variable}: unsupported scheme {parsed.scheme + '://'!r}; use {forms}")
    if accepted[parsed.scheme].endswith(":///path"):
        if not (parsed.netloc + parsed.path).strip("/"):
            raise ValueError(f"{variable}: {parsed.scheme}:// needs a path ({forms})")
    elif not parsed.hostname:
        raise ValueError(f"{variable}: {parsed.scheme}:// needs a host ({forms})")
    bucket = parsed.path.lstrip("/").partition("/")[0]
    if parsed.scheme.startswith("s3") and not _S3_BUCKET.match(bucket):
        raise ValueError(
            f"{variable}: {bucket!r} is not an S3 bucket name"
            " (3 to 63 lowercase letters, digits, dots and hyphens)"
        )
    return url


def _backend_url(variable: str) -> AfterValidator:
    return AfterValidator(partial(_check_url, variable))


class BusSettings(BaseModel):
    """The bus: the embedded journal, or Kafka with its clients' options and security."""

    model_config = ConfigDict(hide_input_in_errors=True)  # URLs may carry credentials

    url: Annotated[str | None, _backend_url("PACSFLOW_BUS_URL")] = None
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    idempotence: bool = True
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    # fetch.max.wait.ms of every consumer (the worker's and the STOW events reader); a broker
    # that holds a fetch until then even when records arrived (Tansu) adds it to each hop
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=30_000)
    # the worker's consumer group: session.timeout.ms (Faust's 60 s; at most Faust's 90 s
    # request timeout, at least the brokers' default group.min.session.timeout.ms) and
    # group.instance.id (static membership, KIP-345; empty: dynamic)
    session_timeout_ms: int = Field(default=60_000, ge=6_000, le=90_000)
    group_instance_id: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,249}$")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ca_certs: str = ""
    cert_file: str = ""
    key_file: str = ""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")


class ObjectStoreSettings(BaseModel):
    """The object store: a directory, or S3 with its credentials and CA bundle."""

    model_config = ConfigDict(hide_input_in_errors=True)  # URLs may carry credentials

    url: Annotated[str | None, _backend_url("PACSFLOW_OBJECT_STORE_URL")] = None
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")
    ca_certs: str = ""


class IndexSettings(BaseModel):
    """The index: SQLite, or Elasticsearch/OpenSearch with its index prefix and credentials."""

    model_config = ConfigDict(hide_input_in_errors=True)  # URLs may carry credentials

    url: Annotated[str | None, _backend_url("PACSFLOW_INDEX_URL")] = None
    prefix: str = Field(default="pacsflow", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    api_key: SecretStr = SecretStr("")
    ca_certs: str = ""
    username: str = ""
    password: SecretStr = SecretStr("")


# Today's flat names of the grouped settings (docs/configuration.md): name -> (group, field).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "bus_url": ("bus", "url"),
    **{f"kafka_{name}": ("bus", name) for name in BusSettings.model_fields if name != "url"},
    "object_store_url": ("objects", "url"),
    "s3_access_key": ("objects", "access_key"),
    "s3_secret_key": ("objects", "secret_key"),
    "s3_ca_certs": ("objects", "ca_certs"),
    **{f"index_{name}": ("index", name) for name in IndexSettings.model_fields},
    **{f"auth_{name}": ("auth", name) for name in AuthSettings.model_fields},
    **{f"audit_{name}": ("audit", name) for name in AuditSettings.model_fields},
}


def variable_name(loc: tuple[int | str, ...]) -> str:
    """The documented variable of a setting a validation error points at (``PACSFLOW_*``)."""
    path = tuple(str(part) for part in loc)
    flat = next((f for f, place in FLAT_NAMES.items() if place == path[:2]), None)
    return f"PACSFLOW_{(flat or '_'.join(path)).upper()}" if path else "PACSFLOW_*"


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    """Move flat names (``kafka_partitions``) into their group (``bus.partitions``)."""
    nested = dict(values)
    for flat, (group, name) in FLAT_NAMES.items():
        if flat in nested:
            value = nested.pop(flat)
            section = nested.get(group)
            nested[group] = {**(section if isinstance(section, dict) else {}), name: value}
    return nested


class _FlatEnvironment(PydanticBaseSettingsSource):
    """The flat ``PACSFLOW_*`` variables of the grouped settings, read as their groups."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read at once in __call__

    def __call__(self) -> dict[str, Any]:
        environment = {key.upper(): value for key, value in os.environ.items()}
        found = {
            flat: environment[f"PACSFLOW_{flat.upper()}"]
            for flat in FLAT_NAMES
            if f"PACSFLOW_{flat.upper()}" in environment
        }
        return _nest(found)


class Settings(BaseSettings):
    """Every setting of a pacsflow process; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="PACSFLOW_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,  # a rejected value may be a secret
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("pacsflow-data")
    site: str = Field("default", pattern=SITE_PATTERN)
    sites: Annotated[list[str], NoDecode] = Field(default_factory=list)
    public_url: str | None = None
    max_request_bytes: int = Field(16 * 1024**3, ge=1)
    inline_max_bytes: int | None = Field(None, ge=0)
    record_version: int = Field(2, ge=1, le=2)  # of inline IngestRecords (docs/topics.md)
    header_prefix_max_bytes: int = Field(16 * 1024**2, ge=1024)
    stow_consistency: Literal["indexed", "durable"] = "indexed"
    # STOW-RS of metadata and bulk data (PS3.18 10.5.1.4); see docs/conformance.md.
    stow_metadata_max_bytes: int = Field(64 * 1024**2, ge=1024)
    stow_bulk_max_bytes: int = Field(4 * 1024**3, ge=1024)
    stow_timeout_seconds: float = Field(120.0, gt=0)
    stow_publish_confirm_seconds: float = Field(60.0, ge=0)  # pacsflow/stow/confirm.py
    stow_max_ingest_lag: int = Field(100_000, ge=0)  # pacsflow/stow/backpressure.py
    duplicate_policy: Literal["replace", "reject"] = "replace"
    qido_max_results: int = Field(1000, ge=1, le=100_000)
    anonymize_secret: SecretStr | None = None
    validate_pixel_data: Literal["decode", "structure"] = "structure"
    processors: bool = True
    http_workers: int = Field(0, ge=0, le=64)
    ingest_workers: int = Field(1, ge=1, le=64)
    ingest_concurrency: int = Field(2, ge=1, le=64)
    ingest_worker: int = Field(0, ge=0)  # set by ``pacsflow serve`` for its processors
    listen_fd: int | None = Field(None, ge=0)  # set by ``pacsflow serve`` for its HTTP workers
    http_worker: int = Field(0, ge=0)  # which HTTP worker (0 runs the Worklist upkeep)
    # set by the supervisor: each HTTP worker marks its start there (``services.health``)
    started_dir: Path | None = None
    gateway_roles: str = ""  # the roles behind the gateway in front of this process (PS3.18 8.9)
    worker_health_port: int = Field(0, ge=0, le=65535)
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object a line (docs/operations.md)
    otlp_endpoint: str = ""  # OTLP/HTTP collector for traces, e.g. http://otel:4318 (off: "")
    # Slow or stalled clients (services/limits.py); see docs/configuration.md.
    http_header_timeout_seconds: float = Field(30.0, gt=0)
    http_body_timeout_seconds: float = Field(60.0, gt=0)
    http_body_min_bytes_per_second: int = Field(1024, ge=0)
    http_send_timeout_seconds: float = Field(60.0, gt=0)
    render_cache_mb: int = Field(64, ge=0)
    # Worklist (UPS-RS, PS3.18 Chapter 11); see docs/configuration.md and docs/ups.md.
    workitem_store_url: str | None = None
    ups_worklist_label: str = Field("pacsflow", min_length=1, max_length=64)
    ups_retention_seconds: float = Field(7 * 24 * 3600.0, ge=0)
    ups_max_request_bytes: int = Field(1024 * 1024, ge=1024)
    ups_max_results: int = Field(1000, ge=1, le=10_000)
    # Storage Commitment (PS3.18 Chapter 13); see docs/configuration.md and docs/conformance.md.
    commitment_store_url: str | None = None
    commitment_timeout_seconds: float = Field(3600.0, ge=0)
    commitment_retention_seconds: float = Field(7 * 24 * 3600.0, ge=0)
    commitment_max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # WADO-WS (PS3.18 2016 6.4, IHE RAD-69); see docs/configuration.md and docs/conformance.md.
    wado_ws_max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    wado_ws_max_documents: int = Field(10_000, ge=1)
    wado_ws_repository_unique_id: str | None = Field(None, max_length=64)
    bus: BusSettings = Field(default_factory=BusSettings)
    objects: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    # Security (docs/security.md): bearer tokens, audit trail, exposure, TLS, CORS.
    auth: AuthSettings = Field(default_factory=AuthSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    insecure: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The web console and the OHIF Viewer (docs/console.md).
    viewer_dir: Path | None = None
    console_client_id: str = Field("pacsflow-console", pattern=r"^[\x21-\x7e]{1,200}$")
    console_scope: str = Field("openid", pattern=r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")
    console_resource: str = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the nested variables, then the flat ones."""
        flat = _FlatEnvironment(settings_cls)
        return init_settings, env_settings, flat, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _flat_arguments(cls, values: Any) -> Any:
        """``Settings(kafka_partitions=3)`` sets ``bus.partitions``, as the variable does."""
        return _nest(values) if isinstance(values, dict) else values

    @field_validator("sites", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``PACSFLOW_SITES=a,b`` and ``PACSFLOW_CORS_ORIGINS=https://viewer.example``."""
        return [v for v in re.split(r"[,\s]+", value) if v] if isinstance(value, str) else value

    @field_validator("sites")
    @classmethod
    def _site_names(cls, sites: list[str]) -> list[str]:
        bad = [s for s in sites if not re.match(SITE_PATTERN, s)]
        if bad:
            raise ValueError(f"PACSFLOW_SITES: not a site name: {', '.join(b[:64] for b in bad)}")
        return sites

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        """A certificate needs its key, and the other way round."""
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("PACSFLOW_TLS_CERT_FILE and PACSFLOW_TLS_KEY_FILE go together")
        return self

    @field_validator("anonymize_secret")
    @classmethod
    def _secret_or_none(cls, secret: SecretStr | None) -> SecretStr | None:
        """An empty secret is no secret: de-identification stays off."""
        return secret if secret is not None and secret.get_secret_value() else None

    @field_validator("gateway_roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        """A comma-separated list of HTTP roles (empty: this process's own)."""
        roles = [role.strip() for role in value.split(",") if role.strip()]
        unknown = [role for role in roles if role not in HTTP_ROLES]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; the roles are {', '.join(HTTP_ROLES)}")
        return ",".join(roles)

    def described_roles(self, own: Sequence[str]) -> tuple[str, ...]:
        """The roles the capability description and OpenAPI document describe."""
        listed = tuple(role for role in self.gateway_roles.split(",") if role)
        return listed or tuple(own)

    @field_validator("wado_ws_repository_unique_id")
    @classmethod
    def _repository_or_none(cls, value: str | None) -> str | None:
        """An empty RepositoryUniqueId is none: every value then names this source."""
        return (value.strip() or None) if value is not None else None

    @model_validator(mode="after")
    def _inline_fits_a_message(self) -> Settings:
        """An inline part (as it is in a v2 record, base64 in a v1 one) must fit one Kafka
        message."""
        if (self.bus.url or "").startswith("kafka:"):
            inline = self.resolved_inline_max_bytes()
            needed = (inline if self.record_version == 2 else inline * 4 // 3) + 64 * 1024
            if needed > self.bus.max_message_bytes:
                raise ValueError(
                    f"PACSFLOW_INLINE_MAX_BYTES={inline} does not fit "
                    f"PACSFLOW_KAFKA_MAX_MESSAGE_BYTES={self.bus.max_message_bytes}"
                )
        return self

    def resolved_http_workers(self) -> int:
        """HTTP worker processes sharing the port: ``http_workers``, or one per CPU (at most 4)."""
        return self.http_workers or min(os.cpu_count() or 1, 4)

    def resolved_inline_max_bytes(self) -> int:
        """Parts up to this size travel inline on the bus, larger ones are staged (claim check).

        Default: 1 MiB on Kafka (a record in memory beats three object-store requests), 64 KiB
        on the embedded journal (a staged file is written once and renamed into place, while
        inline bytes would be written to the journal, checkpointed and written again).
        """
        if self.inline_max_bytes is not None:
            return self.inline_max_bytes
        return INLINE_KAFKA if (self.bus.url or "").startswith("kafka:") else INLINE_EMBEDDED

    def resolved_bus_url(self) -> str:
        """The bus URL, defaulting to the embedded journal in ``data_dir``."""
        return self.bus.url or f"sqlite:///{(self.data_dir / 'bus.sqlite').resolve()}"

    def resolved_object_store_url(self) -> str:
        """The object store URL, defaulting to ``data_dir/objects``."""
        return self.objects.url or f"file:///{(self.data_dir / 'objects').resolve()}"

    def resolved_workitem_store_url(self) -> str:
        """The workitem store URL: the index's Elasticsearch, else ``data_dir/workitems.sqlite``."""
        return self._beside_index(self.workitem_store_url, "workitems.sqlite")

    def resolved_commitment_store_url(self) -> str:
        """The commitment store URL: the index's Elasticsearch, else ``commitments.sqlite``."""
        return self._beside_index(self.commitment_store_url, "commitments.sqlite")

    def _beside_index(self, url: str | None, file_name: str) -> str:
        """``url``, else the index's Elasticsearch, else a SQLite file in ``data_dir``."""
        if url:
            return url
        if (self.index.url or "").startswith(("http:", "https:")):
            return str(self.index.url)
        return f"sqlite:///{(self.data_dir / file_name).resolve()}"

    def resolved_viewer_dir(self) -> Path:
        """Where ``pacsflow viewer install`` puts the OHIF Viewer (default ``data_dir/viewer``)."""
        return self.viewer_dir or self.data_dir / "viewer"

    def resolved_index_url(self) -> str:
        """The index URL, defaulting to ``data_dir/index.sqlite``."""
        return self.index.url or f"sqlite:///{(self.data_dir / 'index.sqlite').resolve()}"
