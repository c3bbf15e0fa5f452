"""The Store Instances Response Module (PS3.18 Annex I, Table I.1-1) and its status code.

200 when every instance was stored without warning, 202 when some failed or carry warnings
(or, with the ``durable`` consistency, are still being processed, or a failure concerns no
instance: Other Failures Sequence), 409 when none was stored (PS3.18 Table 10.5.3-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pacsflow.dicom.status import FailureReason
from pacsflow.pipeline.keys import instance_path

__all__ = ["PartOutcome", "StowResult"]

JsonDict = dict[str, Any]


@dataclass(slots=True)
class PartOutcome:
    """What happened to one part of the request."""

    number: int
    sop_class_uid: str = ""
    sop_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    published: bool = False
    processed: bool = False
    failure_reason: FailureReason | None = None
    warning_reason: int | None = None
    message: str = ""
    size: int = 0  # bytes of the part, once published

    def fail(self, reason: FailureReason, message: str) -> None:
        """Mark the part failed."""
        self.failure_reason, self.message = reason, message

    @property
    def stored(self) -> bool:
        """Accepted onto the bus and not failed."""
        return self.published and self.failure_reason is None


@dataclass(slots=True)
class StowResult:
    """The outcome of a STOW request, rendered as DICOM JSON by ``to_json``."""

    study_uid: str | None
    consistency: Literal["indexed", "durable"]
    parts: list[PartOutcome] = field(default_factory=list)
    other_failures: list[tuple[FailureReason, str]] = field(default_factory=list)
    resource: str | None = None  # an NPI resource (PS3.18 12.5): its URLs instead of studies'

    @property
    def status_code(self) -> int:
        """200, 202 or 409 (PS3.18 Table 10.5.3-1)."""
        stored = [p for p in self.parts if p.stored]
        if not stored:
            return 409
        if len(stored) < len(self.parts) or any(p.warning_reason for p in stored):
            return 202
        if self.other_failures:
            return 202
        if any(not p.processed for p in stored):
            return 202  # durable consistency, or the wait for processing timed out
        return 200

    def warnings(self) -> list[str]:
        """Human-readable reasons for the HTTP Warning header (PS3.18 10.5.3.2)."""
        lines = [f"failure {int(r):04X}: {message}" for r, message in self.other_failures]
        for p in self.parts:
            if p.failure_reason is not None:
                code = f"{int(p.failure_reason):04X}"
                lines.append(
                    f"part {p.number} {p.sop_uid or '(no SOP Instance UID)'}: "
                    f"failure {code}: {p.message}"
                )
            elif p.warning_reason is not None:
                lines.append(
                    f"part {p.number} {p.sop_uid}: warning {p.warning_reason:04X}: {p.message}"
                )
            elif p.stored and not p.processed:
                lines.append(
                    f"part {p.number} {p.sop_uid}: received durably, validation pending"
                    if self.consistency == "durable"
                    else f"part {p.number} {p.sop_uid}: still being processed"
                )
        return lines

    def to_json(self, root_url: str) -> JsonDict:
        """The response data set; ``root_url`` is the DICOMweb root (no trailing slash)."""
        referenced, failed = [], []
        for p in self.parts:
            item: JsonDict = {
                "00081150": _ui(p.sop_class_uid),
                "00081155": _ui(p.sop_uid),
            }
            if p.stored:
                path = (
                    f"{self.resource}/{p.sop_uid}"
                    if self.resource
                    else instance_path(p.study_uid, p.series_uid, p.sop_uid)
                )
                url = f"{root_url}/{path}"
                item["00081190"] = {"vr": "UR", "Value": [url]}
                if p.warning_reason is not None:
                    item["00081196"] = {"vr": "US", "Value": [p.warning_reason]}
                referenced.append(item)
            else:
                reason = p.failure_reason or FailureReason.PROCESSING_FAILURE
                item["00081197"] = {"vr": "US", "Value": [int(reason)]}
                failed.append(item)
        studies = {p.study_uid for p in self.parts if p.stored}
        study = self.study_uid or (next(iter(studies)) if len(studies) == 1 else None)
        out: JsonDict = {
            "00081190": {"vr": "UR", "Value": [f"{root_url}/{self.resource or 'studies'}/{study}"]}
            if study
            else {"vr": "UR"}
        }
        if failed:
            out["00081198"] = {"vr": "SQ", "Value": failed}
        if referenced:
            out["00081199"] = {"vr": "SQ", "Value": referenced}
        if self.other_failures:
            other = [{"00081197": {"vr": "US", "Value": [int(r)]}} for r, _ in self.other_failures]
            out["0008119A"] = {"vr": "SQ", "Value": other}
        return out


def _ui(value: str) -> JsonDict:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}
