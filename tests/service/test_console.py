"""The web console's server side in process: its pages, its status counters and their auth.

The pages are shells (the browser fills them from the DICOMweb API, tests/e2e/test_console.py):
they carry the configuration the scripts need, a Content Security Policy of this origin, and
no patient data. ``/console/status.json`` counts what the archive holds, what the processors
did, the dead letters on the real ``dead-letter`` topic with their reasons, the storage and
the backends; with authentication on it needs the admin right (a real OpenID provider).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from pacsflow.auth import AuthSettings, RightRule
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter
from tests.oidc.provider import AUDIENCE, Provider
from tests.support.archive import Archive, running_archive
from tests.support.corpus import CORPUS

ORIGIN = "http://pacsflow.test"
ROLES = ("stow", "qido", "wado", "console")
CT = CORPUS / "modality/CT_small.dcm"
PAGES = ["/", "/console/upload", "/console/status", "/console/callback"]


@pytest_asyncio.fixture(loop_scope="function")
async def console(tmp_path: Path) -> AsyncIterator[Archive]:
    async with running_archive(tmp_path / "data", roles=ROLES, sites=["a"]) as running:
        yield running


def embedded_config(page: httpx.Response) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="pf-config">(.*?)</script>', page.text)
    assert found, page.text[:500]
    config: dict[str, object] = json.loads(found.group(1))
    return config


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_is_html_with_a_policy_of_this_origin(console: Archive, path: str) -> None:
    page = await console.client.get(ORIGIN + path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    config = embedded_config(page)
    assert config["roots"] == {"default": "/dicom-web", "a": "/sites/a/dicom-web"}
    assert config["auth"] is None and config["viewer"] is False and config["delete"] is True
    assert config["reasons"]["C000"] == "cannot understand"  # type: ignore[index]
    for script in re.findall(r'<script src="([^"]+)"', page.text):
        asset = await console.client.get(ORIGIN + script)
        assert asset.status_code == 200, script


async def test_the_study_page_names_its_study_and_refuses_what_is_no_uid(console: Archive) -> None:
    stored = await console.stow_files(CT)
    assert stored.status_code == 200, stored.text
    study = stored.json()["00081190"]["Value"][0].rsplit("/", 1)[-1]
    page = await console.client.get(f"{ORIGIN}/console/studies/{study}")
    assert page.status_code == 200
    assert f'data-study="{study}"' in page.text
    assert "CompressedSamples" not in page.text  # the patient's name is fetched by the browser
    bad = await console.client.get(f"{ORIGIN}/console/studies/not-a-uid")
    assert bad.status_code == 400
    assert "not a study UID" in bad.json()["message"]


async def test_status_counts_what_was_stored_and_shows_dead_letters(console: Archive) -> None:
    stored = await console.stow_files(CT)
    assert stored.status_code == 200, stored.text
    letter = DeadLetter(
        topic="ingest",
        partition=3,
        offset=41,
        failure_reason=0xC000,
        message="the instance cannot be parsed",
        record={"site": "default", "study_uid": "1.2.3", "sop_uid": "1.2.3.4"},
    )
    await console.container.bus.publish(DEAD_LETTER_TOPIC, b"k", letter.to_bytes())
    answer = await console.client.get(f"{ORIGIN}/console/status.json")
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert status["archive"] == {"study": 1, "series": 1, "instance": 1}
    ingest = status["ingest"]
    assert ingest["published"] >= 1 and 0 <= ingest["processed"] <= ingest["published"]
    assert ingest["lag"] == ingest["published"] - ingest["processed"]
    dead = status["dead_letters"]
    assert dead["total"] == 1
    assert dead["recent"] == [
        {
            "reason": "C000",
            "message": "the instance cannot be parsed",
            "site": "default",
            "study_uid": "1.2.3",
            "sop_uid": "1.2.3.4",
            "partition": 3,
            "offset": 41,
        }
    ]
    objects = status["storage"]["objects"]
    assert objects["kind"] == "file" and objects["files"] >= 1
    assert objects["bytes"] >= CT.stat().st_size // 2
    assert status["storage"]["data_dir"]["free"] > 0
    assert status["backends"] == {
        name: {"ready": True} for name in ("bus", "commitments", "index", "objects", "workitems")
    }
    assert status["roles"] == list(ROLES)


async def test_without_authentication_anyone_may_do_everything(console: Archive) -> None:
    answer = await console.client.get(f"{ORIGIN}/console/rights.json")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    every = ["read", "write", "delete", "admin"]
    assert answer.json() == {"subject": "anonymous", "rights": {"default": every, "a": every}}


async def test_the_viewer_says_how_to_install_it(console: Archive) -> None:
    page = await console.client.get(f"{ORIGIN}/viewer/")
    assert page.status_code == 404
    assert "pacsflow viewer install" in page.text
    entry = await console.client.get(f"{ORIGIN}/viewer?StudyInstanceUIDs=1.2.3")
    assert entry.status_code == 307
    assert entry.headers["location"] == "/viewer/viewer?StudyInstanceUIDs=1.2.3"
    signed_out = await console.client.get(f"{ORIGIN}/viewer/signed-out")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"


async def test_status_needs_the_admin_right_when_auth_is_on(tmp_path: Path, oidc: Provider) -> None:
    auth = AuthSettings(
        issuer=oidc.issuer,
        audience=[AUDIENCE],
        rights=[RightRule(claim="scope", pattern="pacs:{site}:{right}")],
    )
    async with running_archive(tmp_path / "data", roles=ROLES, auth=auth) as archive:
        url = f"{ORIGIN}/console/status.json"
        page = await archive.client.get(f"{ORIGIN}/")
        assert page.status_code == 200  # the page itself holds nothing: it signs in
        config = embedded_config(page)
        assert config["auth"] == {
            "issuer": oidc.issuer.rstrip("/"),
            "clientId": "pacsflow-console",
            "scope": "openid",
            "resource": None,
        }
        assert oidc.issuer.rstrip("/") in page.headers["content-security-policy"]
        missing = await archive.client.get(url)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer realm=")
        reader = oidc.token("scoped", "pacs:default:read")
        refused = await archive.client.get(url, headers={"Authorization": f"Bearer {reader}"})
        assert refused.status_code == 403
        admin = oidc.token("scoped", "pacs:default:admin")
        allowed = await archive.client.get(url, headers={"Authorization": f"Bearer {admin}"})
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["archive"] == {"study": 0, "series": 0, "instance": 0}
        # The actions a page offers: Delete only to a principal with the delete right.
        rights = f"{ORIGIN}/console/rights.json"
        assert (await archive.client.get(rights)).status_code == 401
        for scope, held in [
            ("pacs:default:read", ["read"]),
            ("pacs:default:read pacs:default:delete", ["read", "delete"]),
            ("pacs:default:admin", ["read", "write", "delete", "admin"]),
        ]:
            token = oidc.token("scoped", scope)
            answer = await archive.client.get(rights, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["rights"] == {"default": held}, scope


async def test_status_on_kafka_reads_the_bus_positions(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Pipeline mode: ``Bus.positions`` of a real broker (Tansu) and its dead-letter tail."""
    async with running_archive(
        tmp_path / "data",
        roles=("qido",),
        processors=False,
        bus_url=f"kafka://{kafka_bootstrap}",
        kafka_idempotence=False,  # Tansu refuses InitProducerId
        kafka_partitions=2,
    ) as archive:
        url = f"{ORIGIN}/console/status.json"
        before = (await archive.client.get(url)).json()
        reason = "the instance cannot be parsed on kafka"
        letter = DeadLetter(
            topic="ingest", partition=0, offset=7, failure_reason=0xC000, message=reason,
            record={"site": "default", "study_uid": "1.2.3", "sop_uid": "1.2.3.9"},
        )  # fmt: skip
        await archive.container.bus.publish(DEAD_LETTER_TOPIC, b"k", letter.to_bytes())
        for _ in range(120):  # the tail's consumer joins its group first (a rebalance)
            after = (await archive.client.get(url)).json()
            if reason in [shown["message"] for shown in after["dead_letters"]["recent"]]:
                break
            await asyncio.sleep(0.5)
    for status in (before, after):
        ingest = status["ingest"]
        assert "error" not in ingest, ingest
        assert ingest["lag"] == ingest["published"] - ingest["processed"] >= 0
        # every partition of the topic (the session's broker may have made it with more)
        partitions = ingest["partitions"]
        assert len(partitions) >= 2 and set(partitions) == {str(n) for n in range(len(partitions))}
    # at least ours (the session's broker is shared: other letters may land meanwhile)
    assert after["dead_letters"]["total"] >= before["dead_letters"]["total"] + 1
    assert reason in [shown["message"] for shown in after["dead_letters"]["recent"]]
    assert after["backends"]["bus"] == {"ready": True}


async def test_the_qido_role_serves_the_console_in_pipeline_mode(tmp_path: Path) -> None:
    async with running_archive(tmp_path / "data", roles=("qido",), processors=False) as archive:
        page = await archive.client.get(f"{ORIGIN}/")
        assert page.status_code == 200
        assert embedded_config(page)["roots"] == {"default": "/dicom-web"}
        status = await archive.client.get(f"{ORIGIN}/console/status.json")
        assert status.status_code == 200
        assert status.json()["roles"] == ["qido"]
