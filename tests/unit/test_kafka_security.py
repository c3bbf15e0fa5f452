"""TLS and SASL to Kafka, from PACSFLOW_KAFKA_* to aiokafka's and Faust's options."""

from __future__ import annotations

import ssl

import certifi
import faust
import pytest

from pacsflow.adapters.kafka_bus import KafkaSecurity
from pacsflow.config import Settings
from pacsflow.container import kafka_security
from streams.faust_app import broker_credentials


def test_plaintext_by_default() -> None:
    security = kafka_security(Settings().bus)
    assert security == KafkaSecurity()
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(security) is None


def test_tls_verifies_the_brokers_against_the_ca_bundle() -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ca_certs=certifi.where())
    options = kafka_security(settings.bus).client_options()
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert "sasl_mechanism" not in options
    credentials = broker_credentials(kafka_security(settings.bus))
    assert isinstance(credentials, faust.SSLCredentials)


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_logs_in_with_the_mechanism(protocol: str) -> None:
    settings = Settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="pacsflow",
        kafka_sasl_password="secret",
    )
    options = kafka_security(settings.bus).client_options()
    assert options["security_protocol"] == protocol
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-512",
        "pacsflow",
    )
    assert options["sasl_plain_password"] == "secret"
    assert ("ssl_context" in options) == (protocol == "SASL_SSL")
    credentials = broker_credentials(kafka_security(settings.bus))
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "pacsflow"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert str(credentials.protocol.value) == protocol


def test_unknown_protocols_are_refused() -> None:
    with pytest.raises(ValueError):
        Settings(kafka_security_protocol="TLS")
    with pytest.raises(ValueError):
        Settings(kafka_sasl_mechanism="GSSAPI")


def test_index_credentials_apart_from_the_url() -> None:
    from pacsflow.container import build_container

    settings = Settings(
        index_url="https://es.example.org:9200", index_username="u", index_password="p@ss/word"
    )
    index = build_container(settings).index
    assert index._options["basic_auth"] == ("u", "p@ss/word")  # type: ignore[attr-defined]
