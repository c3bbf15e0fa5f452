"""Configuration: defaults, PACSFLOW_* variables, URLs, validation at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pacsflow.config import Settings
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
    ],
)
def test_invalid_settings_fail_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]


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
    with pytest.raises(ValueError, match="unsupported bus URL"):
        build_container(Settings(data_dir=tmp_path, bus_url="amqp://x"))
