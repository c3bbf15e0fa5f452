"""Storage Commitment (PS3.18 Chapter 13) end to end, in both modes, with raw HTTP.

Embedded: ``pacsflow serve`` without processors, and a ``pacsflow worker`` on the same data
directory started later. Pipeline: ``pacsflow stow`` and ``pacsflow commitment`` as their own
processes on Tansu, moto and osmem, and a Faust ``pacsflow worker`` started later. An instance
acknowledged with 202 while no worker runs is in the log only: its commitment is Working until
the worker has processed it, then Done. Results survive a restart of the serving process.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.support.corpus import CORPUS
from tests.support.dicomweb import sequence, stow, value
from tests.support.servers import (
    MODES,
    Server,
    pipeline_env,
    run_tansu,
    start_server,
    start_worker,
    stop_process,
)

CT = CORPUS / "modality/CT_small.dcm"
MR = CORPUS / "modality/MR_siemens_csa_private.dcm"
WAIT = 240.0  # bound of every wait for the worker (a Faust worker joins Tansu in ~30 s)


@dataclass
class Deployment:
    """The process that stores, the one that answers commitments, and a worker to start."""

    stow: Server
    commitment: Server
    start_worker: Callable[[], None]
    restart_commitment: Callable[[], Server]


@pytest.fixture(params=MODES)
def deployment(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    with contextlib.ExitStack() as stack:
        if request.param == "embedded":
            env = {"PACSFLOW_PROCESSORS": "false"}
            data = tmp_path / "data"
            serve = start_server(data, env)
            stack.callback(lambda: deployed.commitment.stop())

            def embedded_worker() -> None:
                worker = start_worker(data, tmp_path / "worker.log", env)
                stack.callback(stop_process, worker)

            def restart_serve() -> Server:
                deployed.commitment.stop()
                deployed.commitment = deployed.stow = start_server(data, env)
                return deployed.commitment

            deployed = Deployment(serve, serve, embedded_worker, restart_serve)
        else:
            broker = stack.enter_context(run_tansu(tmp_path))
            name = f"t{os.urandom(4).hex()}"
            s3, es = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("es_url")
            env = pipeline_env(f"127.0.0.1:{broker}", s3, es, name, stow_timeout_seconds="180")
            stow_role = start_server(tmp_path / "stow", env, command="stow")
            stack.callback(stow_role.stop)
            commitment = start_server(tmp_path / "commitment", env, command="commitment")
            stack.callback(lambda: deployed.commitment.stop())

            def faust_worker() -> None:
                log = tmp_path / "worker.log"
                worker = start_worker(tmp_path / "worker", log, env)
                stack.callback(stop_process, worker)
                deadline = time.monotonic() + WAIT
                while b"[^Worker]: Ready" not in log.read_bytes():
                    assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)

            def restart_commitment() -> Server:
                deployed.commitment.stop()
                root = tmp_path / "commitment"
                deployed.commitment = start_server(root, env, command="commitment")
                return deployed.commitment

            deployed = Deployment(stow_role, commitment, faust_worker, restart_commitment)
        yield deployed


def _request(url: str, uid: str, *pairs: tuple[str, str]) -> httpx.Response:
    items = [
        {"00081150": {"vr": "UI", "Value": [c]}, "00081155": {"vr": "UI", "Value": [i]}}
        for c, i in pairs
    ]
    return httpx.post(
        f"{url}/commitment-requests/{uid}",
        content=orjson.dumps({"00081199": {"vr": "SQ", "Value": items}}),
        headers={"Content-Type": "application/dicom+json", "Accept": "application/dicom+json"},
        timeout=120,
    )


def _check(url: str, uid: str) -> httpx.Response:
    return httpx.get(f"{url}/commitment-requests/{uid}", timeout=120)


def _done(url: str, uid: str) -> dict[str, Any]:
    """Check the result until the origin server is done (bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        answer = _check(url, uid)
        if answer.status_code == 200:
            result: dict[str, Any] = answer.json()
            return result
        assert answer.status_code == 202, answer.text
        assert answer.content == b""
        assert time.monotonic() < deadline, "the commitment stayed Working"
        time.sleep(0.5)


def _pair(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


def test_commitment_waits_for_the_pipeline_and_survives_a_restart(
    deployment: Deployment,
) -> None:
    ct, mr = _pair(CT), _pair(MR)
    unknown = (ct[0], f"2.25.{uuid.uuid4().int}")
    logged = stow(deployment.stow.url, [CT.read_bytes()], Prefer="respond-async")
    assert logged.status_code == 202, logged.text  # in the log; no worker has it yet
    first, second = f"2.25.{uuid.uuid4().int}", f"2.25.{uuid.uuid4().int}"

    working = _request(deployment.commitment.url, first, ct, unknown)
    assert (working.status_code, working.content) == (202, b"")
    assert int(working.headers["retry-after"]) > 0
    assert _check(deployment.commitment.url, first).status_code == 202

    deployment.start_worker()
    result = _done(deployment.commitment.url, first)
    assert [value(i, "00081155") for i in sequence(result, "00081199")] == [ct[1]]
    assert [(value(i, "00081155"), value(i, "00081197")) for i in sequence(result, "00081198")] == [
        (unknown[1], 0x0112)
    ]

    DICOMwebClient(url=deployment.stow.url).store_instances([pydicom.dcmread(MR)])
    at_once = _request(deployment.commitment.url, second, mr)
    assert at_once.status_code == 200  # every instance named is indexed: synchronous
    assert [value(i, "00081155") for i in sequence(at_once.json(), "00081199")] == [mr[1]]

    restarted = deployment.restart_commitment()
    assert _check(restarted.url, first).json() == result
    assert _check(restarted.url, second).json() == at_once.json()
    assert _request(restarted.url, first, ct).status_code == 409
