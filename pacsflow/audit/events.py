"""The audit messages pacsflow sends, one function per PS3.15 A.5.3 event.

Every message names who (the requester: the token's subject and name, and the client's
address), the archive process (the audit source, with the site as AuditEnterpriseSiteID),
what (study, SOP Class and instance UIDs, the query, the resource) and the outcome.

=============================  =======  ==============================================
event (PS3.15)                 action   sent for
=============================  =======  ==============================================
A.5.3.7 Instances Transferred  C        STOW-RS: instances stored
A.5.3.3 Begin Transferring     E        WADO-RS / WADO-URI: instances, frames, bulk data
A.5.3.6 Instances Accessed     R        metadata, rendered, thumbnails
A.5.3.8 Study Deleted          D        a study deleted
A.5.3.10 Query                 E        QIDO-RS and UPS-RS searches
A.5.3.12 User Authentication   E        a bearer token refused (Login, minor failure)
A.5.3.11 Security Alert        E        a request without the right it needs
=============================  =======  ==============================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from pacsflow.audit.messages import (
    AuditMessage,
    Code,
    Outcome,
    Participant,
    ParticipantObject,
    SopClassInstances,
)

__all__ = [
    "SEARCH_SOP_CLASSES",
    "AuditContext",
    "authentication_failed",
    "begin_transferring",
    "instances_accessed",
    "instances_stored",
    "query",
    "security_alert",
    "study_deleted",
]

DCM: Final = "DCM"
BEGIN_TRANSFERRING: Final = Code("110102", DCM, "Begin Transferring DICOM Instances")
INSTANCES_ACCESSED: Final = Code("110103", DCM, "DICOM Instances Accessed")
INSTANCES_TRANSFERRED: Final = Code("110104", DCM, "DICOM Instances Transferred")
STUDY_DELETED: Final = Code("110105", DCM, "DICOM Study Deleted")
QUERY: Final = Code("110112", DCM, "Query")
SECURITY_ALERT: Final = Code("110113", DCM, "Security Alert")
USER_AUTHENTICATION: Final = Code("110114", DCM, "User Authentication")
LOGIN: Final = Code("110122", DCM, "Login")
RESTRICTED_FUNCTION: Final = Code("110132", DCM, "Use of Restricted Function")
SOURCE: Final = Code("110153", DCM, "Source Role ID")
DESTINATION: Final = Code("110152", DCM, "Destination Role ID")
STUDY_UID: Final = Code("110180", DCM, "Study Instance UID")
SOP_CLASS_UID: Final = Code("110181", DCM, "SOP Class UID")
URI: Final = Code("12", "RFC-3881", "URI")
# The SOP Class a search stands for (A.5.3.10 ParticipantObjectID): QIDO-RS searches the
# Study Root information model, UPS-RS searches are UPS Pull.
SEARCH_SOP_CLASSES: Final = {
    "studies": "1.2.840.10008.5.1.4.1.2.2.1",
    "workitems": "1.2.840.10008.5.1.4.34.6.3",
}
_SYSTEM_OBJECT, _REPORT, _SECURITY_RESOURCE = "2", "3", "13"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every message about one request shares: who asked, which process, which site."""

    requester: Participant
    archive: Participant
    source_id: str
    site: str

    def message(
        self,
        event: Code,
        action: str,
        outcome: Outcome,
        participants: Sequence[Participant],
        objects: Sequence[ParticipantObject] = (),
        *,
        event_types: Sequence[Code] = (),
        description: str | None = None,
    ) -> AuditMessage:
        """A message about this request (the fields in the order of ``AuditMessage``)."""
        where = (self.source_id, self.site)
        return AuditMessage(
            event, action, outcome, *where, participants, objects, event_types, description
        )

    def as_role(self, participant: Participant, role: Code) -> Participant:
        """``participant`` in the role ``role`` of this event (RoleIDCode, PS3.16 CID 402)."""
        return Participant(
            participant.user_id, participant.requestor, role, participant.name, participant.address
        )


def _studies(
    studies: Mapping[str, Sequence[SopClassInstances]] | Iterable[str],
) -> list[ParticipantObject]:
    groups = studies if isinstance(studies, Mapping) else {uid: () for uid in studies}
    return [
        ParticipantObject(
            uid, STUDY_UID, _SYSTEM_OBJECT, _REPORT, name=f"studies/{uid}", sop_classes=tuple(sops)
        )
        for uid, sops in sorted(groups.items())
    ]


def instances_stored(
    ctx: AuditContext,
    studies: Mapping[str, Sequence[SopClassInstances]],
    outcome: Outcome,
    description: str | None = None,
) -> AuditMessage:
    """A.5.3.7 DICOM Instances Transferred, action Create: STOW-RS stored instances."""
    people = [ctx.as_role(ctx.requester, SOURCE), ctx.as_role(ctx.archive, DESTINATION)]
    objects = _studies(studies)
    return ctx.message(
        INSTANCES_TRANSFERRED, "C", outcome, people, objects, description=description
    )


def begin_transferring(
    ctx: AuditContext, studies: Iterable[str], outcome: Outcome, description: str | None = None
) -> AuditMessage:
    """A.5.3.3 Begin Transferring DICOM Instances: the archive sends instances to the client."""
    people = [ctx.as_role(ctx.archive, SOURCE), ctx.as_role(ctx.requester, DESTINATION)]
    objects = _studies(studies)
    return ctx.message(BEGIN_TRANSFERRING, "E", outcome, people, objects, description=description)


def instances_accessed(
    ctx: AuditContext, studies: Iterable[str], outcome: Outcome, description: str | None = None
) -> AuditMessage:
    """A.5.3.6 DICOM Instances Accessed, action Read: metadata and renderings."""
    people = [ctx.requester, ctx.archive]
    objects = _studies(studies)
    return ctx.message(INSTANCES_ACCESSED, "R", outcome, people, objects, description=description)


def study_deleted(
    ctx: AuditContext, studies: Iterable[str], outcome: Outcome, description: str | None = None
) -> AuditMessage:
    """A.5.3.8 DICOM Study Deleted."""
    objects = _studies(studies)
    people = [ctx.requester, ctx.archive]
    return ctx.message(STUDY_DELETED, "D", outcome, people, objects, description=description)


def query(
    ctx: AuditContext,
    sop_class: str,
    query_text: bytes,
    outcome: Outcome,
    description: str | None = None,
) -> AuditMessage:
    """A.5.3.10 Query: the query string of a search, as sent (base64 in the message)."""
    people = [ctx.as_role(ctx.requester, SOURCE), ctx.as_role(ctx.archive, DESTINATION)]
    item = ParticipantObject(
        sop_class,
        SOP_CLASS_UID,
        _SYSTEM_OBJECT,
        _REPORT,
        query=query_text,
        details=(("QueryEncoding", b"UTF-8"),),
    )
    return ctx.message(QUERY, "E", outcome, people, [item], description=description)


def authentication_failed(ctx: AuditContext, reason: str) -> AuditMessage:
    """A.5.3.12 User Authentication, Login, minor failure: a refused bearer token."""
    people = [ctx.requester, ctx.archive]
    return ctx.message(
        USER_AUTHENTICATION,
        "E",
        Outcome.MINOR_FAILURE,
        people,
        event_types=[LOGIN],
        description=reason,
    )


def security_alert(ctx: AuditContext, resource: str, reason: str) -> AuditMessage:
    """A.5.3.11 Security Alert, Use of Restricted Function: a request without its right."""
    people = [ctx.archive, ctx.requester]
    item = ParticipantObject(resource, URI, _SYSTEM_OBJECT, _SECURITY_RESOURCE, name=resource)
    return ctx.message(
        SECURITY_ALERT,
        "E",
        Outcome.MINOR_FAILURE,
        people,
        [item],
        event_types=[RESTRICTED_FUNCTION],
        description=reason,
    )
