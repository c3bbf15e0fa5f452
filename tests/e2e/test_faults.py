"""Faults in pipeline mode: the broker and the object store go away in the middle of an ingest.

Each backend sits behind a ``Link`` that is cut and restored, so its state survives the
outage. The test proves that STOW answers 503 with Retry-After instead of acknowledging what it
cannot make durable, that the worker retries, and that every acknowledged instance ends up
stored and indexed exactly once while nothing unacknowledged is.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from tests.support.corpus import one_file_per_instance, uids_of
from tests.support.dicomweb import retrieve_bytes, sequence, served_as_sent, stow, value
from tests.support.faults import Link
from tests.support.servers import (
    pipeline_env,
    run_tansu,
    start_server,
    start_worker,
    stop_process,
)

ACK_STATUSES = (200, 202)


@dataclass
class Links:
    """Proxies in front of the broker, the object store and the index."""

    broker: Link
    s3: Link
    index: Link
    bootstrap: str


@pytest.fixture
def links(tmp_path: Path, s3_endpoint: str, es_url: str) -> Iterator[Links]:
    """A dedicated broker advertising its proxy; proxies in front of S3 and the index."""
    broker_link = Link(target=1)  # target set once the broker's port is known
    with run_tansu(tmp_path, advertised_port=broker_link.port) as broker_port:
        broker_link.target = broker_port
        s3_link = Link(target=int(s3_endpoint.rsplit(":", 1)[1]))
        index_link = Link(target=int(es_url.rsplit(":", 1)[1]))
        try:
            yield Links(broker_link, s3_link, index_link, f"127.0.0.1:{broker_link.port}")
        finally:
            for link in (broker_link, s3_link, index_link):
                link.close()


def _indexed(index_url: str, prefix: str, sops: list[str]) -> list[str]:
    """The SOP Instance UIDs among ``sops`` that the index holds (read with the adapter)."""
    from pacsflow.adapters.es_index import ElasticsearchIndex

    async def read() -> list[str]:
        index = ElasticsearchIndex(index_url, prefix=prefix)
        await index.start()
        try:
            return [s for s in sops if await index.get_instance("default", s) is not None]
        finally:
            await index.close()

    return asyncio.run(read())


def _indexed_count(index_url: str, prefix: str) -> int:
    """The instances of site "default" as the studies count them (NumberOfStudyRelatedInstances).

    The sum over every study must equal the number of instance entries: an instance indexed
    twice would be counted twice by its study.
    """
    from pacsflow.adapters.es_index import ElasticsearchIndex

    async def read() -> int:
        index = ElasticsearchIndex(index_url, prefix=prefix)
        await index.start()
        try:
            studies = await index.search("default", parse_query(Level.STUDY, [("limit", "1000")]))
            assert len(studies.records) == studies.total  # one page holds every study
            instances = await index.search("default", parse_query(Level.INSTANCE, []))
            counted = sum(int(s["00201208"]["Value"][0]) for s in studies.records)
            assert counted == instances.total, (counted, instances.total)
            return counted
        finally:
            await index.close()

    return asyncio.run(read())


def test_outages_of_broker_object_store_and_index(tmp_path: Path, links: Links) -> None:
    broker_link, s3_link, bootstrap = links.broker, links.s3, links.bootstrap
    prefix = f"faults-{uuid.uuid4().hex[:8]}"
    index_url = f"http://127.0.0.1:{links.index.port}"
    env = pipeline_env(
        bootstrap,
        f"127.0.0.1:{s3_link.port}",
        index_url,
        prefix,
        stow_consistency="durable",
        inline_max_bytes="65536",
    )
    worker_log = tmp_path / "worker.log"
    worker = start_worker(tmp_path / "worker", worker_log, env)
    stow_service = start_server(tmp_path / "stow", env, command="stow")
    wado_service = start_server(tmp_path / "wado", env, command="wado")
    files = one_file_per_instance()
    acknowledged: dict[str, Path] = {}
    refused: list[Path] = []

    def send(batch: list[Path]) -> httpx.Response:
        response = stow(stow_service.url, [p.read_bytes() for p in batch])
        if response.status_code in ACK_STATUSES:
            for item in sequence(response.json(), "00081199"):
                sop = value(item, "00081155")
                acknowledged[sop] = next(p for p in batch if uids_of(p)[2] == sop)
        else:
            refused.extend(batch)
        return response

    try:
        thirds = len(files) // 3
        assert send(files[:thirds]).status_code in ACK_STATUSES
        broker_link.cut()  # the broker goes away
        down = send(files[thirds : thirds + 2])
        assert down.status_code == 503, down.text
        assert int(down.headers["retry-after"]) > 0
        broker_link.restore()
        s3_link.cut()  # the object store goes away: large parts cannot be staged
        large = [p for p in files[thirds + 2 :] if p.stat().st_size > 65536][:1]
        small = [p for p in files[thirds + 2 :] if p.stat().st_size <= 65536]
        if large:
            assert send(large).status_code == 503
        deadline = time.monotonic() + 60  # the broker link comes back: bounded reconnect
        response = send(small[:5])
        while response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(1)
            response = send(small[:5])
        assert response.status_code in ACK_STATUSES  # inline parts need only the broker
        time.sleep(2)  # let the worker hit the missing object store and retry
        s3_link.restore()
        links.index.cut()  # the index goes away: the worker cannot finish, it retries
        rest = [p for p in files[thirds + 2 :] if p not in large and p not in small[:5]]
        assert send(rest).status_code in ACK_STATUSES
        time.sleep(2)
        links.index.restore()
        # every acknowledged instance is stored and indexed exactly once
        deadline = time.monotonic() + 240
        missing = dict(acknowledged)
        while missing and time.monotonic() < deadline:
            for sop, path in list(missing.items()):
                study, series, _ = uids_of(path)
                url = f"{wado_service.url}/studies/{study}/series/{series}/instances/{sop}"
                if httpx.get(url, timeout=30).status_code == 200:
                    served = retrieve_bytes(wado_service.url, study, series, sop)
                    assert served_as_sent(path.read_bytes(), served), path
                    del missing[sop]
            time.sleep(0.5)
        assert not missing, (list(missing), worker_log.read_text()[-4000:])
        refused_sops = [uids_of(p)[2] for p in refused if uids_of(p)[2] not in acknowledged]
        indexed = _indexed(index_url, prefix, [*acknowledged, *refused_sops])
        assert set(acknowledged) <= set(indexed)
        # A refused part may still arrive if its publish reached the broker before the
        # timeout (at-least-once); nothing that was never sent can appear, and each instance
        # is counted once.
        assert _indexed_count(index_url, prefix) == len(indexed)
    finally:
        stow_service.stop()
        wado_service.stop()
        stop_process(worker)


def test_a_publish_whose_answer_is_lost_is_confirmed_not_refused(
    tmp_path: Path, links: Links
) -> None:
    """The broker appends a publish but its answer is lost: STOW sends it again once the
    broker answers, and acknowledges the instance instead of a false 503 (issue 23's
    "refused yet stored"); the instance, logged twice, is stored and indexed once."""
    prefix = f"lost-{uuid.uuid4().hex[:8]}"
    index_url = f"http://127.0.0.1:{links.index.port}"
    env = pipeline_env(
        links.bootstrap,
        f"127.0.0.1:{links.s3.port}",
        index_url,
        prefix,
        stow_max_ingest_lag="0",  # no lag read: the muted broker would refuse the request early
        stow_timeout_seconds="180",
    )
    worker = start_worker(tmp_path / "worker", tmp_path / "worker.log", env)
    stow_service = start_server(tmp_path / "stow", env, command="stow")
    wado_service = start_server(tmp_path / "wado", env, command="wado")
    first, second = [p for p in one_file_per_instance() if p.stat().st_size <= 65536][:2]
    answers: list[httpx.Response] = []
    try:
        assert stow(stow_service.url, [first.read_bytes()]).status_code == 200
        links.broker.mute()  # requests reach the broker, its answers are lost
        sender = threading.Thread(
            target=lambda: answers.append(stow(stow_service.url, [second.read_bytes()]))
        )
        sender.start()
        deadline = time.monotonic() + 120
        while b"unconfirmed, sending it again" not in stow_service.log.read_bytes():
            assert time.monotonic() < deadline, stow_service.log.read_text()[-3000:]
            assert sender.is_alive(), answers[0].text
            time.sleep(0.5)
        links.broker.cut()  # the muted connections drop; the broker answers again
        links.broker.restore()
        sender.join(240)
        assert not sender.is_alive()
        assert answers[0].status_code == 200, answers[0].text
        study, series, sop = uids_of(second)
        served = retrieve_bytes(wado_service.url, study, series, sop)
        assert served_as_sent(second.read_bytes(), served)
        assert _indexed_count(index_url, prefix) == 2  # each instance counted once
        assert b"publish to ingest confirmed after" in stow_service.log.read_bytes()
    finally:
        stow_service.stop()
        wado_service.stop()
        stop_process(worker)
