"""Every audit message pacsflow writes validates against the PS3.15 A.5.1 schema.

The schema is the standard's text (tests/schemas/ps3.15-audit-message.rnc, RELAX NG Compact),
converted with rnc2rng and checked with lxml's RelaxNG. The standard's ``##`` comments follow
the patterns they document, which the compact syntax only allows before them: they are read as
plain comments (``#``), which changes no pattern.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
import rnc2rng
from lxml import etree

from pacsflow.audit import events
from pacsflow.audit.messages import AuditMessage, Outcome, Participant, SopClassInstances, to_xml
from pacsflow.audit.syslog import syslog_frame

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "ps3.15-audit-message.rnc"
CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    text = SCHEMA.read_text().replace("##", "#")
    return etree.RelaxNG(etree.fromstring(rnc2rng.dumps(rnc2rng.loads(text)).encode()))


CTX = events.AuditContext(
    requester=Participant("alice", True, name="Alice <alice@example.org>", address="10.0.0.7"),
    archive=Participant("pacsflow@archive", False, address="127.0.0.1"),
    source_id="pacsflow@archive",
    site="north",
)
STORED = {
    "1.2.3": [SopClassInstances(CT, ("1.2.3.1.1", "1.2.3.1.2")), SopClassInstances(None, ())],
    "1.2.4": [SopClassInstances(CT, ("1.2.4.1.1",))],
}
MESSAGES: dict[str, Callable[[], AuditMessage]] = {
    "stored": lambda: events.instances_stored(CTX, STORED, Outcome.SUCCESS),
    "store failed": lambda: events.instances_stored(CTX, {}, Outcome.MINOR_FAILURE, "no parts"),
    "transfer": lambda: events.begin_transferring(CTX, ["1.2.3"], Outcome.SUCCESS),
    "accessed": lambda: events.instances_accessed(CTX, ["1.2.3"], Outcome.MINOR_FAILURE, "404"),
    "deleted": lambda: events.study_deleted(CTX, ["1.2.3", "1.2.4"], Outcome.SUCCESS),
    "query": lambda: events.query(
        CTX, events.SEARCH_SOP_CLASSES["studies"], b"PatientName=<D\x00E>*", Outcome.SUCCESS
    ),
    "authentication": lambda: events.authentication_failed(CTX, "the token has expired"),
    "alert": lambda: events.security_alert(CTX, "/sites/south/dicom-web/studies", "no right"),
}


@pytest.mark.parametrize("name", MESSAGES)
def test_every_message_validates_against_the_ps3_15_schema(
    schema: etree.RelaxNG, name: str
) -> None:
    document = etree.fromstring(to_xml(MESSAGES[name]()))
    assert schema.validate(document), schema.error_log


def test_a_message_names_who_what_where_and_the_outcome() -> None:
    root = etree.fromstring(to_xml(MESSAGES["stored"]()))
    event = root.find("EventIdentification")
    assert event is not None and event.get("EventActionCode") == "C"
    assert event.get("EventOutcomeIndicator") == "0"
    assert event.find("EventID").get("csd-code") == "110104"  # type: ignore[union-attr]
    users = {p.get("UserID"): p for p in root.iter("ActiveParticipant")}
    assert users["alice"].get("UserIsRequestor") == "true"
    assert users["alice"].get("NetworkAccessPointID") == "10.0.0.7"
    roles = {u: p.find("RoleIDCode").get("csd-code") for u, p in users.items()}  # type: ignore[union-attr]
    assert roles == {"alice": "110153", "pacsflow@archive": "110152"}  # source, destination
    source = root.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditEnterpriseSiteID") == "north"
    studies = {
        o.get("ParticipantObjectID"): o for o in root.iter("ParticipantObjectIdentification")
    }
    assert set(studies) == {"1.2.3", "1.2.4"}
    instances = [i.get("UID") for i in studies["1.2.3"].iter("Instance")]
    assert instances == ["1.2.3.1.1", "1.2.3.1.2"]


def test_the_query_travels_base64_encoded_byte_for_byte() -> None:
    root = etree.fromstring(to_xml(MESSAGES["query"]()))
    query = root.find("ParticipantObjectIdentification/ParticipantObjectQuery")
    assert query is not None and query.text is not None
    assert base64.b64decode(query.text) == b"PatientName=<D\x00E>*"


def test_the_schema_is_no_rubber_stamp(schema: etree.RelaxNG) -> None:
    good = to_xml(MESSAGES["transfer"]())
    for broken in (
        good.replace(b'EventOutcomeIndicator="0"', b'EventOutcomeIndicator="1"'),
        good.replace(b"<EventID ", b"<EventName "),
        good.replace(b'UserIsRequestor="true"', b'UserIsRequestor="maybe"'),
    ):
        assert not schema.validate(etree.fromstring(broken))


def test_a_syslog_record_is_rfc_5424_framed_for_tls() -> None:
    document = to_xml(MESSAGES["alert"]())
    frame = syslog_frame(document, "archive host")
    length, _, record = frame.partition(b" ")
    assert int(length) == len(record)  # RFC 5425 4.3 octet counting
    header, _, message = record.partition(b"\xef\xbb\xbf")
    assert header.startswith(b"<85>1 ")  # facility 10 (authpriv), severity 5 (notice), version 1
    parts = header.decode().split(" ")
    assert parts[2] == "archivehost" and parts[3] == "pacsflow" and parts[5] == "IHE+RFC-3881"
    assert parts[6] == "-" and message == document
