"""Where audit messages go: the ``audit`` topic, and optionally syslog over TLS (IHE ATNA).

The ``audit`` group of ``pacsflow.config.Settings`` (``PACSFLOW_AUDIT_SYSLOG_URL``, ...;
docs/security.md).
"""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AuditSettings"]


class AuditSettings(BaseModel):
    """The audit trail of a process (PS3.15 A.5)."""

    model_config = ConfigDict(hide_input_in_errors=True)

    enabled: bool = True
    source_id: str = Field(default="", max_length=256)
    syslog_url: str = ""
    syslog_ca_certs: str = ""
    syslog_cert_file: str = ""
    syslog_key_file: str = ""

    @field_validator("syslog_url")
    @classmethod
    def _tls(cls, url: str) -> str:
        """RFC 5425: syslog over TLS only, as ``tls://host:port``."""
        if url:
            parsed = urlparse(url)
            if parsed.scheme != "tls" or not parsed.hostname or not parsed.port:
                raise ValueError("PACSFLOW_AUDIT_SYSLOG_URL: tls://host:port (RFC 5425)")
        return url
