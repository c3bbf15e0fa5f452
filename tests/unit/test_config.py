"""Configuration: defaults, PACSFLOW_* variables, URLs, validation at start."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from pacsflow.config import Settings, variable_name
from pacsflow.container import build_container


def test_defaults_put_everything_under_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PACSFLOW_DATA_DIR", "PACSFLOW_PORT", "PACSFLOW_HOST", "PACSFLOW_BUS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    data = Path("pacsflow-data").resolve()
    assert settings.resolved_bus_url() == f"sqlite:///{data / 'bus.sqlite'}"
    assert settings.resolved_object_store_url() == f"file:///{data / 'objects'}"
    assert settings.resolved_index_url() == f"sqlite:///{data / 'index.sqlite'}"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACSFLOW_PORT", "9999")
    monkeypatch.setenv("PACSFLOW_DUPLICATE_POLICY", "reject")
    settings = Settings()
    assert settings.port == 9999 and settings.duplicate_policy == "reject"


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 0},
        {"duplicate_policy": "keep-both"},
        {"site": "../etc"},
        {"bus_url": "kafka://k:9092", "inline_max_bytes": 8 * 1024 * 1024},
        {"bus_url": "kafka://k:9092", "inline_max_bytes": 7 << 20, "record_version": 1},
        {"record_version": 3},
        {"gateway_roles": "qido,worker"},
    ],
)
def test_invalid_settings_fail_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]


def test_inline_parts_fit_a_message_as_they_are_in_version_2_records() -> None:
    """7 MiB parts fit an 8 MiB message as they are (v2), not in base64 (v1: 9.3 MiB)."""
    settings = Settings(bus_url="kafka://k:9092", inline_max_bytes=7 << 20)  # type: ignore[call-arg]

    assert settings.resolved_inline_max_bytes() == 7 << 20


def test_backends_are_chosen_by_url(tmp_path: Path) -> None:
    from pacsflow.adapters.kafka_bus import KafkaBus
    from pacsflow.adapters.s3_store import S3ObjectStore

    container = build_container(
        Settings(
            data_dir=tmp_path,
            bus_url="kafka://127.0.0.1:9092",
            object_store_url="s3://key:secret@127.0.0.1:9000/bucket/prefix",
        )
    )
    assert isinstance(container.bus, KafkaBus)
    assert isinstance(container.objects, S3ObjectStore)


@pytest.mark.parametrize(
    ("variable", "url", "reason"),
    [
        ("PACSFLOW_BUS_URL", "amqp://broker:5672", "unsupported scheme 'amqp://'"),
        ("PACSFLOW_BUS_URL", "kafka://", "needs a host"),
        ("PACSFLOW_BUS_URL", "sqlite://", "needs a path"),
        ("PACSFLOW_OBJECT_STORE_URL", "ftp://host/x", "unsupported scheme 'ftp://'"),
        ("PACSFLOW_OBJECT_STORE_URL", "s3://key:hunter2@127.0.0.1:9000/b", "not an S3 bucket"),
        ("PACSFLOW_OBJECT_STORE_URL", "s3:///bucket", "needs a host"),
        ("PACSFLOW_INDEX_URL", "elasticsearch://es:9200", "unsupported scheme"),
        ("PACSFLOW_INDEX_URL", "https://", "needs a host"),
    ],
)
def test_a_bad_backend_url_is_a_validation_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str, reason: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert variable in message and reason in message
    assert "hunter2" not in message  # the rejected value is never echoed


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "PACSFLOW_S3_SECRET_KEY": "s3-secret-value",
        "PACSFLOW_KAFKA_SASL_PASSWORD": "sasl-secret-value",
        "PACSFLOW_INDEX_PASSWORD": "index-secret-value",
        "PACSFLOW_INDEX_API_KEY": "api-key-secret-value",
        "PACSFLOW_ANONYMIZE_SECRET": "anonymize-secret-value",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert not [value for value in secrets.values() if value in shown]
    assert settings.objects.secret_key.get_secret_value() == "s3-secret-value"
    assert settings.anonymize_secret is not None
    assert settings.anonymize_secret.get_secret_value() == "anonymize-secret-value"


@pytest.mark.parametrize("value", [None, ""])
def test_no_anonymize_secret_means_no_de_identification(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.delenv("PACSFLOW_ANONYMIZE_SECRET", raising=False)
    if value is not None:
        monkeypatch.setenv("PACSFLOW_ANONYMIZE_SECRET", value)
    assert Settings(site="north").anonymize_secret is None  # never the site name


def test_grouped_settings_take_flat_and_nested_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACSFLOW_KAFKA_PARTITIONS", "3")
    monkeypatch.setenv("PACSFLOW_INDEX__PREFIX", "nested")
    monkeypatch.setenv("PACSFLOW_INDEX_PREFIX", "flat")
    settings = Settings(s3_access_key="from-an-argument")
    assert settings.bus.partitions == 3
    assert settings.index.prefix == "nested"  # the nested name wins over the flat one
    assert settings.objects.access_key == "from-an-argument"
    assert Settings(kafka_partitions=9).bus.partitions == 9  # an argument wins over both


def test_a_validation_error_names_the_documented_variable() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(kafka_partitions=0)
    [error] = raised.value.errors()
    assert variable_name(error["loc"]) == "PACSFLOW_KAFKA_PARTITIONS"
    assert variable_name(("port",)) == "PACSFLOW_PORT"
    assert variable_name(("index", "url")) == "PACSFLOW_INDEX_URL"


_NAME = re.compile(r"`(PACSFLOW_[A-Z0-9_]+)`")
DOCUMENTED = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
# A value for every documented variable, and where the settings show it.
SAMPLES: dict[str, tuple[str, Callable[[Settings], object], object]] = {
    "PACSFLOW_HOST": ("0.0.0.0", lambda s: s.host, "0.0.0.0"),
    "PACSFLOW_PORT": ("9090", lambda s: s.port, 9090),
    "PACSFLOW_DATA_DIR": ("/var/lib/x", lambda s: s.data_dir, Path("/var/lib/x")),
    "PACSFLOW_BUS_URL": ("kafka://k:9092", lambda s: s.bus.url, "kafka://k:9092"),
    "PACSFLOW_OBJECT_STORE_URL": ("s3://h:9000/bkt", lambda s: s.objects.url, "s3://h:9000/bkt"),
    "PACSFLOW_INDEX_URL": ("http://es:9200", lambda s: s.index.url, "http://es:9200"),
    "PACSFLOW_SITE": ("north", lambda s: s.site, "north"),
    "PACSFLOW_PUBLIC_URL": ("https://x/dicom-web", lambda s: s.public_url, "https://x/dicom-web"),
    "PACSFLOW_MAX_REQUEST_BYTES": ("1000", lambda s: s.max_request_bytes, 1000),
    "PACSFLOW_INLINE_MAX_BYTES": ("1024", lambda s: s.inline_max_bytes, 1024),
    "PACSFLOW_RECORD_VERSION": ("1", lambda s: s.record_version, 1),
    "PACSFLOW_KAFKA_FETCH_MAX_WAIT_MS": ("40", lambda s: s.bus.fetch_max_wait_ms, 40),
    "PACSFLOW_HEADER_PREFIX_MAX_BYTES": ("4096", lambda s: s.header_prefix_max_bytes, 4096),
    "PACSFLOW_STOW_CONSISTENCY": ("durable", lambda s: s.stow_consistency, "durable"),
    "PACSFLOW_STOW_TIMEOUT_SECONDS": ("7.5", lambda s: s.stow_timeout_seconds, 7.5),
    "PACSFLOW_STOW_PUBLISH_CONFIRM_SECONDS": (
        "12",
        lambda s: s.stow_publish_confirm_seconds,
        12.0,
    ),
    "PACSFLOW_STOW_METADATA_MAX_BYTES": ("65536", lambda s: s.stow_metadata_max_bytes, 65536),
    "PACSFLOW_STOW_BULK_MAX_BYTES": ("1048576", lambda s: s.stow_bulk_max_bytes, 1048576),
    "PACSFLOW_DUPLICATE_POLICY": ("reject", lambda s: s.duplicate_policy, "reject"),
    "PACSFLOW_ANONYMIZE_SECRET": ("k", lambda s: _secret(s.anonymize_secret), "k"),
    "PACSFLOW_QIDO_MAX_RESULTS": ("50", lambda s: s.qido_max_results, 50),
    "PACSFLOW_VALIDATE_PIXEL_DATA": ("structure", lambda s: s.validate_pixel_data, "structure"),
    "PACSFLOW_PROCESSORS": ("false", lambda s: s.processors, False),
    "PACSFLOW_LOG_LEVEL": ("debug", lambda s: s.log_level, "debug"),
    "PACSFLOW_LOG_FORMAT": ("json", lambda s: s.log_format, "json"),
    "PACSFLOW_OTLP_ENDPOINT": ("http://otel:4318", lambda s: s.otlp_endpoint, "http://otel:4318"),
    "PACSFLOW_RENDER_CACHE_MB": ("16", lambda s: s.render_cache_mb, 16),
    "PACSFLOW_STOW_MAX_INGEST_LAG": ("500", lambda s: s.stow_max_ingest_lag, 500),
    "PACSFLOW_HTTP_HEADER_TIMEOUT_SECONDS": ("5", lambda s: s.http_header_timeout_seconds, 5.0),
    "PACSFLOW_HTTP_BODY_TIMEOUT_SECONDS": ("7.5", lambda s: s.http_body_timeout_seconds, 7.5),
    "PACSFLOW_HTTP_BODY_MIN_BYTES_PER_SECOND": (
        "0",
        lambda s: s.http_body_min_bytes_per_second,
        0,
    ),
    "PACSFLOW_HTTP_SEND_TIMEOUT_SECONDS": ("12", lambda s: s.http_send_timeout_seconds, 12.0),
    "PACSFLOW_S3_ACCESS_KEY": ("ak", lambda s: s.objects.access_key, "ak"),
    "PACSFLOW_S3_SECRET_KEY": ("sk", lambda s: _secret(s.objects.secret_key), "sk"),
    "PACSFLOW_S3_CA_CERTS": ("/ca.pem", lambda s: s.objects.ca_certs, "/ca.pem"),
    "PACSFLOW_KAFKA_PARTITIONS": ("12", lambda s: s.bus.partitions, 12),
    "PACSFLOW_KAFKA_REPLICATION_FACTOR": ("3", lambda s: s.bus.replication_factor, 3),
    "PACSFLOW_KAFKA_MAX_MESSAGE_BYTES": ("9000000", lambda s: s.bus.max_message_bytes, 9000000),
    "PACSFLOW_KAFKA_RETENTION_MS": ("60000", lambda s: s.bus.retention_ms, 60000),
    "PACSFLOW_KAFKA_IDEMPOTENCE": ("false", lambda s: s.bus.idempotence, False),
    "PACSFLOW_KAFKA_SESSION_TIMEOUT_MS": ("10000", lambda s: s.bus.session_timeout_ms, 10000),
    "PACSFLOW_KAFKA_GROUP_INSTANCE_ID": ("w-0", lambda s: s.bus.group_instance_id, "w-0"),
    "PACSFLOW_KAFKA_SECURITY_PROTOCOL": ("SSL", lambda s: s.bus.security_protocol, "SSL"),
    "PACSFLOW_KAFKA_CA_CERTS": ("/k.pem", lambda s: s.bus.ca_certs, "/k.pem"),
    "PACSFLOW_KAFKA_CERT_FILE": ("/c.pem", lambda s: s.bus.cert_file, "/c.pem"),
    "PACSFLOW_KAFKA_KEY_FILE": ("/key.pem", lambda s: s.bus.key_file, "/key.pem"),
    "PACSFLOW_KAFKA_SASL_MECHANISM": (
        "SCRAM-SHA-512",
        lambda s: s.bus.sasl_mechanism,
        "SCRAM-SHA-512",
    ),
    "PACSFLOW_KAFKA_SASL_USERNAME": ("u", lambda s: s.bus.sasl_username, "u"),
    "PACSFLOW_KAFKA_SASL_PASSWORD": ("p", lambda s: _secret(s.bus.sasl_password), "p"),
    "PACSFLOW_INDEX_PREFIX": ("archive", lambda s: s.index.prefix, "archive"),
    "PACSFLOW_INDEX_API_KEY": ("key", lambda s: _secret(s.index.api_key), "key"),
    "PACSFLOW_INDEX_CA_CERTS": ("/es.pem", lambda s: s.index.ca_certs, "/es.pem"),
    "PACSFLOW_INDEX_USERNAME": ("elastic", lambda s: s.index.username, "elastic"),
    "PACSFLOW_INDEX_PASSWORD": ("pw", lambda s: _secret(s.index.password), "pw"),
    "PACSFLOW_WORKER_HEALTH_PORT": ("8081", lambda s: s.worker_health_port, 8081),
    "PACSFLOW_HTTP_WORKERS": ("3", lambda s: s.http_workers, 3),
    "PACSFLOW_INGEST_WORKERS": ("2", lambda s: s.ingest_workers, 2),
    "PACSFLOW_INGEST_CONCURRENCY": ("4", lambda s: s.ingest_concurrency, 4),
    "PACSFLOW_WORKITEM_STORE_URL": (
        "sqlite:///w.sqlite",
        lambda s: s.workitem_store_url,
        "sqlite:///w.sqlite",
    ),
    "PACSFLOW_UPS_WORKLIST_LABEL": ("CT1", lambda s: s.ups_worklist_label, "CT1"),
    "PACSFLOW_UPS_MAX_RESULTS": ("20", lambda s: s.ups_max_results, 20),
    "PACSFLOW_UPS_RETENTION_SECONDS": ("60", lambda s: s.ups_retention_seconds, 60.0),
    "PACSFLOW_UPS_MAX_REQUEST_BYTES": ("4096", lambda s: s.ups_max_request_bytes, 4096),
    "PACSFLOW_GATEWAY_ROLES": ("qido, wado", lambda s: s.gateway_roles, "qido,wado"),
    "PACSFLOW_COMMITMENT_STORE_URL": (
        "sqlite:///c.sqlite",
        lambda s: s.commitment_store_url,
        "sqlite:///c.sqlite",
    ),
    "PACSFLOW_COMMITMENT_TIMEOUT_SECONDS": ("30", lambda s: s.commitment_timeout_seconds, 30.0),
    "PACSFLOW_COMMITMENT_RETENTION_SECONDS": (
        "60",
        lambda s: s.commitment_retention_seconds,
        60.0,
    ),
    "PACSFLOW_COMMITMENT_MAX_REQUEST_BYTES": (
        "8192",
        lambda s: s.commitment_max_request_bytes,
        8192,
    ),
    "PACSFLOW_WADO_WS_MAX_REQUEST_BYTES": ("8192", lambda s: s.wado_ws_max_request_bytes, 8192),
    "PACSFLOW_WADO_WS_MAX_DOCUMENTS": ("5", lambda s: s.wado_ws_max_documents, 5),
    "PACSFLOW_WADO_WS_REPOSITORY_UNIQUE_ID": (
        "1.2.3.4",
        lambda s: s.wado_ws_repository_unique_id,
        "1.2.3.4",
    ),
    "PACSFLOW_AUTH_ISSUER": ("https://i.example", lambda s: s.auth.issuer, "https://i.example"),
    "PACSFLOW_AUTH_AUDIENCE": ("a,b", lambda s: s.auth.audience, ["a", "b"]),
    "PACSFLOW_AUTH_ALGORITHMS": ("ES256", lambda s: s.auth.algorithms, ["ES256"]),
    "PACSFLOW_AUTH_LEEWAY_SECONDS": ("5", lambda s: s.auth.leeway_seconds, 5),
    "PACSFLOW_AUTH_JWKS_URL": ("https://i/k", lambda s: s.auth.jwks_url, "https://i/k"),
    "PACSFLOW_AUTH_JWKS_REFRESH_SECONDS": ("9", lambda s: s.auth.jwks_refresh_seconds, 9.0),
    "PACSFLOW_AUTH_JWKS_MAX_AGE_SECONDS": ("90", lambda s: s.auth.jwks_max_age_seconds, 90.0),
    "PACSFLOW_AUTH_CA_CERTS": ("/idp.pem", lambda s: s.auth.ca_certs, "/idp.pem"),
    "PACSFLOW_AUTH_RIGHTS": (
        '[{"claim": "roles", "pattern": "{site}.{right}"}]',
        lambda s: [(r.claim, r.pattern) for r in s.auth.rights],
        [("roles", "{site}.{right}")],
    ),
    "PACSFLOW_AUTH_REALM": ("archive", lambda s: s.auth.realm, "archive"),
    "PACSFLOW_SITES": ("north,south", lambda s: s.sites, ["north", "south"]),
    "PACSFLOW_INSECURE": ("true", lambda s: s.insecure, True),
    "PACSFLOW_TLS_CERT_FILE": ("/c.pem", lambda s: s.tls_cert_file, "/c.pem"),
    "PACSFLOW_TLS_KEY_FILE": ("/k.pem", lambda s: s.tls_key_file, "/k.pem"),
    "PACSFLOW_CORS_ORIGINS": ("https://v.example", lambda s: s.cors_origins, ["https://v.example"]),
    "PACSFLOW_VIEWER_DIR": ("/srv/ohif", lambda s: s.resolved_viewer_dir(), Path("/srv/ohif")),
    "PACSFLOW_CONSOLE_CLIENT_ID": ("console-1", lambda s: s.console_client_id, "console-1"),
    "PACSFLOW_CONSOLE_SCOPE": (
        "openid pacs:a:read",
        lambda s: s.console_scope,
        "openid pacs:a:read",
    ),
    "PACSFLOW_CONSOLE_RESOURCE": ("urn:pacs", lambda s: s.console_resource, "urn:pacs"),
    "PACSFLOW_AUDIT_ENABLED": ("false", lambda s: s.audit.enabled, False),
    "PACSFLOW_AUDIT_SOURCE_ID": ("arch1", lambda s: s.audit.source_id, "arch1"),
    "PACSFLOW_AUDIT_SYSLOG_URL": ("tls://arr:6514", lambda s: s.audit.syslog_url, "tls://arr:6514"),
    "PACSFLOW_AUDIT_SYSLOG_CA_CERTS": ("/a.pem", lambda s: s.audit.syslog_ca_certs, "/a.pem"),
    "PACSFLOW_AUDIT_SYSLOG_CERT_FILE": ("/ac.pem", lambda s: s.audit.syslog_cert_file, "/ac.pem"),
    "PACSFLOW_AUDIT_SYSLOG_KEY_FILE": ("/ak.pem", lambda s: s.audit.syslog_key_file, "/ak.pem"),
}
# Variables that are valid only with another one (an issuer needs its audience, and so on).
COMPANIONS: dict[str, dict[str, str]] = {
    name: {"PACSFLOW_AUTH_ISSUER": "https://i.example", "PACSFLOW_AUTH_AUDIENCE": "a"}
    for name in SAMPLES
    if name.startswith("PACSFLOW_AUTH_") and name != "PACSFLOW_AUTH_AUDIENCE"
}
COMPANIONS["PACSFLOW_AUTH_ISSUER"] = {"PACSFLOW_AUTH_AUDIENCE": "a"}
COMPANIONS["PACSFLOW_TLS_CERT_FILE"] = {"PACSFLOW_TLS_KEY_FILE": "/k.pem"}
COMPANIONS["PACSFLOW_TLS_KEY_FILE"] = {"PACSFLOW_TLS_CERT_FILE": "/c.pem"}


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _documented_names() -> list[str]:
    """The variables named in the first column of docs/configuration.md's tables."""
    rows = [line for line in DOCUMENTED.read_text().splitlines() if line.startswith("| `")]
    return sorted({name for row in rows for name in _NAME.findall(row.split("|")[1])})


def test_every_documented_name_has_a_sample() -> None:
    assert set(_documented_names()) == set(SAMPLES)


@pytest.mark.parametrize("name", _documented_names())
def test_every_documented_name_still_works(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for key in [key for key in os.environ if key.startswith("PACSFLOW_")]:
        monkeypatch.delenv(key)
    value, read, expected = SAMPLES[name]
    for companion, companion_value in COMPANIONS.get(name, {}).items():
        monkeypatch.setenv(companion, companion_value)
    monkeypatch.setenv(name, value)
    assert read(Settings()) == expected
