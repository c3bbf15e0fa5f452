"""The Storage Commitment Response Module (PS3.18 Annex J.2) as DICOM JSON.

The response mirrors the request's form. For Referenced SOP Sequence requests: the committed
instances in Referenced SOP Sequence (0008,1199), the others in Failed SOP Sequence (0008,1198)
with Failure Reason (0008,1197). For Referenced Study Sequence requests: the committed ones in
Referenced Study Sequence (0008,1110) > Referenced Series Sequence (0008,1115) > Referenced
Instances by SOP Class Sequence (0008,1112) > Referenced Instance Sequence (0008,114A); the
failed ones, which that hierarchy cannot hold with a reason, in Failed SOP Sequence too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pacsflow.commitment.request import (
    REFERENCED_INSTANCE_SEQUENCE,
    REFERENCED_INSTANCES_BY_CLASS,
    REFERENCED_SERIES_SEQUENCE,
    REFERENCED_SOP_CLASS_UID,
    REFERENCED_SOP_INSTANCE_UID,
    REFERENCED_SOP_SEQUENCE,
    REFERENCED_STUDY_SEQUENCE,
    SERIES_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    Form,
    Reference,
)
from pacsflow.commitment.verify import Verdict

__all__ = ["FAILED_SOP_SEQUENCE", "FAILURE_REASON", "response_module"]

JsonDict = dict[str, Any]

FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"


def _uid(value: str) -> JsonDict:
    return {"vr": "UI", "Value": [value]}


def _sequence(items: list[JsonDict]) -> JsonDict:
    return {"vr": "SQ", "Value": items}


def _sop_item(reference: Reference) -> JsonDict:
    return {
        REFERENCED_SOP_CLASS_UID: _uid(reference.sop_class_uid),
        REFERENCED_SOP_INSTANCE_UID: _uid(reference.sop_uid),
    }


def _by_study(committed: list[Reference]) -> list[JsonDict]:
    """Study > series > SOP Class > instances, in the order of the request."""
    tree: dict[str, dict[str, dict[str, list[str]]]] = {}
    for ref in committed:
        classes = tree.setdefault(ref.study_uid, {}).setdefault(ref.series_uid, {})
        classes.setdefault(ref.sop_class_uid, []).append(ref.sop_uid)
    return [
        {
            STUDY_INSTANCE_UID: _uid(study),
            REFERENCED_SERIES_SEQUENCE: _sequence(
                [
                    {
                        SERIES_INSTANCE_UID: _uid(series),
                        REFERENCED_INSTANCES_BY_CLASS: _sequence(
                            [
                                {
                                    REFERENCED_SOP_CLASS_UID: _uid(sop_class),
                                    REFERENCED_INSTANCE_SEQUENCE: _sequence(
                                        [{REFERENCED_SOP_INSTANCE_UID: _uid(u)} for u in uids]
                                    ),
                                }
                                for sop_class, uids in classes.items()
                            ]
                        ),
                    }
                    for series, classes in by_series.items()
                ]
            ),
        }
        for study, by_series in tree.items()
    ]


def response_module(form: Form, verdicts: Sequence[Verdict]) -> JsonDict:
    """The response data set of the verdicts, in the request's form."""
    committed = [v.reference for v in verdicts if v.failure is None]
    failed = [
        {**_sop_item(v.reference), FAILURE_REASON: {"vr": "US", "Value": [int(v.failure)]}}
        for v in verdicts
        if v.failure is not None
    ]
    module: JsonDict = {}
    if committed and form == "study":
        module[REFERENCED_STUDY_SEQUENCE] = _sequence(_by_study(committed))
    elif committed:
        module[REFERENCED_SOP_SEQUENCE] = _sequence([_sop_item(r) for r in committed])
    if failed:
        module[FAILED_SOP_SEQUENCE] = _sequence(failed)
    return dict(sorted(module.items()))
