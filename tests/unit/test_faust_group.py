"""The worker's consumer group options (issue 23, chaos trials): PACSFLOW_KAFKA_SESSION_TIMEOUT_MS
and PACSFLOW_KAFKA_GROUP_INSTANCE_ID reach Faust's consumer settings."""

from __future__ import annotations

import pytest
from faust.types.settings import Settings as FaustSettings
from pydantic import ValidationError

from pacsflow.config import Settings
from streams.faust_app import create_faust_app


def _app(settings: Settings) -> FaustSettings:
    bus = settings.bus
    return create_faust_app(
        "kafka://127.0.0.1:9092",
        lambda: pytest.fail("no container is built here"),
        session_timeout=bus.session_timeout_ms / 1000,
        group_instance_id=bus.group_instance_id,
    ).conf


def test_the_defaults_are_fausts_dynamic_membership() -> None:
    conf = _app(Settings())
    assert conf.broker_session_timeout == 60.0
    assert conf.broker_heartbeat_interval == 3.0
    assert conf.consumer_group_instance_id is None


def test_a_short_session_and_a_static_member() -> None:
    settings = Settings(kafka_session_timeout_ms=9000, kafka_group_instance_id="worker-0")
    conf = _app(settings)
    assert conf.broker_session_timeout == 9.0
    assert conf.broker_heartbeat_interval == 3.0
    assert conf.consumer_group_instance_id == "worker-0"
    conf = _app(Settings(kafka_session_timeout_ms=6000))
    assert conf.broker_heartbeat_interval == 2.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("kafka_session_timeout_ms", 5999),  # below Kafka's group.min.session.timeout.ms
        ("kafka_session_timeout_ms", 90_001),  # above Faust's request timeout
        ("kafka_group_instance_id", "a b"),
    ],
)
def test_values_kafka_would_refuse_are_refused_at_start(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})


@pytest.mark.parametrize("wait", [None, 40])
async def test_the_worker_consumer_waits_for_records_as_long_as_configured(
    wait: int | None,
) -> None:
    """PACSFLOW_KAFKA_FETCH_MAX_WAIT_MS (100 by default) replaces the 1,500 ms Faust gives
    the worker's aiokafka consumer: a broker that holds fetches to that wait (Tansu) added it
    to every record's way to the worker."""
    settings = Settings() if wait is None else Settings(kafka_fetch_max_wait_ms=wait)
    app = create_faust_app(
        "kafka://127.0.0.1:9092",
        lambda: pytest.fail("no container is built here"),
        fetch_max_wait_ms=settings.bus.fetch_max_wait_ms,
    )
    thread = app.consumer._new_consumer_thread()

    consumer = thread._create_worker_consumer(app.transport)  # built, not connected

    assert consumer._fetch_max_wait_ms == (wait or 100)
