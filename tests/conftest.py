"""Session fixtures shared by the tiers: the Kafka, S3 and OpenSearch protocol servers.

The helpers behind them (and every other shared piece) are in tests/support/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.durable import DURABLE, run_broker, run_seaweedfs, run_tansu_on_s3
from tests.support.servers import run_moto, run_osmem

_TIER_MARKS = {"e2e": pytest.mark.e2e, "deploy": pytest.mark.deploy}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of tests/e2e is marked ``e2e`` and of tests/deploy ``deploy``, by folder."""
    for item in items:
        tier = item.path.parent.name
        if tier in _TIER_MARKS:
            item.add_marker(_TIER_MARKS[tier])


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3-protocol server on loopback for the session (TEST-INFRA.md), as "host:port";
    SeaweedFS with ``PACSFLOW_TEST_BACKENDS=durable`` (tests/support/durable.py)."""
    if DURABLE:
        with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs") / "data") as endpoint:
            yield endpoint
    else:
        with run_moto(tmp_path_factory.mktemp("moto")) as endpoint:
            yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    """A unique bucket name on ``s3_endpoint``; the bucket and its objects are removed after."""
    yield from _bucket(s3_endpoint)


@pytest.fixture(scope="session")
def seaweedfs_endpoint(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """SeaweedFS (a durable S3 server, issue 23) on loopback for the session, as "host:port"
    (the session's S3 server itself with ``PACSFLOW_TEST_BACKENDS=durable``)."""
    if DURABLE:
        yield request.getfixturevalue("s3_endpoint")
        return
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs") / "data") as endpoint:
        yield endpoint


@pytest.fixture
def seaweedfs_bucket(seaweedfs_endpoint: str) -> Iterator[str]:
    """A unique bucket name on ``seaweedfs_endpoint``; removed with its objects after."""
    yield from _bucket(seaweedfs_endpoint)


def _bucket(endpoint: str) -> Iterator[str]:
    from minio import Minio
    from minio.error import S3Error

    bucket = f"pacsflow-test-{os.urandom(8).hex()}"
    yield bucket
    client = Minio(endpoint, access_key="test", secret_key="test", secure=False)
    try:
        for item in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, str(item.object_name))
        client.remove_bucket(bucket)
    except S3Error as exc:
        if exc.code != "NoSuchBucket":
            raise


@pytest.fixture(scope="session")
def durable_kafka_bootstrap(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A Tansu broker keeping its log in a SeaweedFS bucket (durable), as "host:port" (the
    session's broker itself with ``PACSFLOW_TEST_BACKENDS=durable``)."""
    if DURABLE:
        yield request.getfixturevalue("kafka_bootstrap")
        return
    seaweedfs_endpoint = request.getfixturevalue("seaweedfs_endpoint")
    log_dir = tmp_path_factory.mktemp("tansu-s3")
    with run_tansu_on_s3(log_dir, seaweedfs_endpoint, "tansu-log") as port:
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_bootstrap(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A Tansu broker shared by the session, as "host:port" (keeping its log in the session's
    S3 server with ``PACSFLOW_TEST_BACKENDS=durable``)."""
    log_dir = tmp_path_factory.mktemp("tansu")
    s3 = request.getfixturevalue("s3_endpoint") if DURABLE else ""
    with run_broker(log_dir, s3, "session") as port:
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An osmem server (OpenSearch protocol, in memory) on loopback for the session, as a URL."""
    with run_osmem(tmp_path_factory.mktemp("osmem")) as url:
        yield url


@pytest.fixture(scope="session")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OpenID provider (oidc-provider) on loopback for the session (tests/oidc)."""
    from tests.oidc.provider import run_provider

    with run_provider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider
