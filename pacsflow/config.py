"""Configuration, read once per process from ``PACSFLOW_*`` variables (pydantic-settings).

Backends are chosen by URL: ``sqlite:///path`` (embedded bus journal or index),
``file:///path`` (object store). Unset URLs default to files under ``data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["INLINE_EMBEDDED", "INLINE_KAFKA", "Settings"]

INLINE_KAFKA = 1024 * 1024
INLINE_EMBEDDED = 64 * 1024


class Settings(BaseSettings):
    """Every setting of a pacsflow process; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="PACSFLOW_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("pacsflow-data")
    bus_url: str | None = None
    object_store_url: str | None = None
    index_url: str | None = None
    site: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    public_url: str | None = None
    max_request_bytes: int = Field(16 * 1024**3, ge=1)
    inline_max_bytes: int | None = Field(None, ge=0)
    header_prefix_max_bytes: int = Field(16 * 1024**2, ge=1024)
    stow_consistency: Literal["indexed", "durable"] = "indexed"
    stow_timeout_seconds: float = Field(120.0, gt=0)
    duplicate_policy: Literal["replace", "reject"] = "replace"
    qido_max_results: int = Field(1000, ge=1, le=100_000)
    anonymize_secret: str = ""
    validate_pixel_data: Literal["decode", "structure"] = "structure"
    processors: bool = True
    http_workers: int = Field(0, ge=0, le=64)
    ingest_workers: int = Field(1, ge=1, le=64)
    ingest_concurrency: int = Field(2, ge=1, le=64)
    ingest_worker: int = Field(0, ge=0)  # set by ``pacsflow serve`` for its processors
    listen_fd: int | None = Field(None, ge=0)  # set by ``pacsflow serve`` for its HTTP workers
    kafka_partitions: int = Field(6, ge=1)
    kafka_replication_factor: int = Field(1, ge=1)
    kafka_max_message_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    kafka_idempotence: bool = True
    kafka_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ca_certs: str = ""
    kafka_cert_file: str = ""
    kafka_key_file: str = ""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    index_prefix: str = Field("pacsflow", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    index_api_key: str = ""
    index_ca_certs: str = ""
    index_username: str = ""
    index_password: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_ca_certs: str = ""
    worker_health_port: int = Field(0, ge=0, le=65535)
    log_level: str = "info"

    @model_validator(mode="after")
    def _inline_fits_a_message(self) -> Settings:
        """An inline part (base64 in a JSON record) must fit one Kafka message."""
        if (self.bus_url or "").startswith("kafka:"):
            needed = self.resolved_inline_max_bytes() * 4 // 3 + 64 * 1024
            if needed > self.kafka_max_message_bytes:
                raise ValueError(
                    f"PACSFLOW_INLINE_MAX_BYTES={self.resolved_inline_max_bytes()} does not fit "
                    f"PACSFLOW_KAFKA_MAX_MESSAGE_BYTES={self.kafka_max_message_bytes}"
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
        return INLINE_KAFKA if (self.bus_url or "").startswith("kafka:") else INLINE_EMBEDDED

    def resolved_bus_url(self) -> str:
        """The bus URL, defaulting to the embedded journal in ``data_dir``."""
        return self.bus_url or f"sqlite:///{(self.data_dir / 'bus.sqlite').resolve()}"

    def resolved_object_store_url(self) -> str:
        """The object store URL, defaulting to ``data_dir/objects``."""
        return self.object_store_url or f"file:///{(self.data_dir / 'objects').resolve()}"

    def resolved_index_url(self) -> str:
        """The index URL, defaulting to ``data_dir/index.sqlite``."""
        return self.index_url or f"sqlite:///{(self.data_dir / 'index.sqlite').resolve()}"
