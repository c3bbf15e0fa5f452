"""The Storage Commitment Request Module of a request payload (PS3.18 13.4.1.4, Annex J.1).

The payload is one data set, ``application/dicom+json`` or ``application/dicom+xml``, that
names the SOP Instances in one of two forms, the same forms the response mirrors (Annex J.2):

* ``sop``: Referenced SOP Sequence (0008,1199), items of the SOP Instance Reference Macro
  (PS3.3 Table 10-11): Referenced SOP Class UID (0008,1150), Referenced SOP Instance UID
  (0008,1155);
* ``study``: Referenced Study Sequence (0008,1110) > Study Instance UID, Referenced Series
  Sequence (0008,1115) > Series Instance UID, Referenced Instances by SOP Class Sequence
  (0008,1112) > Referenced SOP Class UID and Referenced Instance Sequence (0008,114A) >
  Referenced SOP Instance UID. A series item may instead list Referenced Instance Sequence
  items that each carry both UIDs (the SOP Instance Reference Macro).

Every UID is checked (PS3.5 9.1); a malformed payload is a ``BadRequest`` naming the item.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest, UnsupportedMediaType
from pacsflow.ups.dataset import JSON_TYPES, XML_TYPES, parse_payload

__all__ = ["CommitmentRequest", "Reference", "parse_request"]

JsonDict = dict[str, Any]
Form = Literal["sop", "study"]

REFERENCED_SOP_SEQUENCE: Final = "00081199"
REFERENCED_STUDY_SEQUENCE: Final = "00081110"
REFERENCED_SERIES_SEQUENCE: Final = "00081115"
REFERENCED_INSTANCES_BY_CLASS: Final = "00081112"
REFERENCED_INSTANCE_SEQUENCE: Final = "0008114A"
REFERENCED_SOP_CLASS_UID: Final = "00081150"
REFERENCED_SOP_INSTANCE_UID: Final = "00081155"
STUDY_INSTANCE_UID: Final = "0020000D"
SERIES_INSTANCE_UID: Final = "0020000E"


@dataclass(frozen=True, slots=True)
class Reference:
    """One SOP Instance a request names; study and series only in the ``study`` form."""

    sop_class_uid: str
    sop_uid: str
    study_uid: str = ""
    series_uid: str = ""


@dataclass(frozen=True, slots=True)
class CommitmentRequest:
    """The instances of a Storage Commitment request, in the form the request used."""

    form: Form
    references: tuple[Reference, ...]

    def to_json(self) -> JsonDict:
        """The request as the commitment store keeps it."""
        rows = [[r.sop_class_uid, r.sop_uid, r.study_uid, r.series_uid] for r in self.references]
        return {"form": self.form, "references": rows}

    @classmethod
    def from_json(cls, document: JsonDict) -> CommitmentRequest:
        """The inverse of ``to_json``."""
        form: Form = "study" if document["form"] == "study" else "sop"
        return cls(form, tuple(Reference(*map(str, row)) for row in document["references"]))


def parse_request(body: bytes, content_type: str) -> CommitmentRequest:
    """The request in a payload of ``content_type``; ``BadRequest`` or 415 when refused."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES | XML_TYPES:
        raise UnsupportedMediaType(
            "a Storage Commitment request is application/dicom+json or application/dicom+xml,"
            f" not {media_type or 'absent'} (PS3.18 13.4.1.4)"
        )
    dataset = parse_payload(body, media_type)
    by_sop = REFERENCED_SOP_SEQUENCE in dataset
    by_study = REFERENCED_STUDY_SEQUENCE in dataset
    if by_sop == by_study:
        raise BadRequest(
            "the Storage Commitment Request Module (PS3.18 J.1) names its instances either in"
            " Referenced SOP Sequence (0008,1199) or in Referenced Study Sequence (0008,1110)"
            + (", not in both" if by_sop else "; the payload has neither")
        )
    form: Form = "sop" if by_sop else "study"
    found = _by_sop(dataset) if by_sop else _by_study(dataset)
    references = tuple(dict.fromkeys(found))  # a repeated reference counts once
    if not references:
        raise BadRequest("the request references no SOP Instance")
    return CommitmentRequest(form, references)


def _items(dataset: JsonDict, tag: str, where: str, *, required: bool = True) -> list[JsonDict]:
    element = dataset.get(tag)
    if element is None:
        if required:
            raise BadRequest(f"{where} lacks ({tag[:4]},{tag[4:]})")
        return []
    if element.get("vr") != "SQ":
        raise BadRequest(f"{where}: ({tag[:4]},{tag[4:]}) is not a sequence")
    items: list[JsonDict] = element.get("Value", [])
    return items


def _uid(dataset: JsonDict, tag: str, where: str) -> str:
    values = dataset.get(tag, {}).get("Value") or [""]
    value = str(values[0] or "").strip()
    if not value:
        raise BadRequest(f"{where} lacks ({tag[:4]},{tag[4:]}), a Type 1 attribute")
    if not is_valid_uid(value, strict=False):
        raise BadRequest(f"{where}: ({tag[:4]},{tag[4:]}) {value[:80]!r} is not a UID")
    return value


def _by_sop(dataset: JsonDict) -> Iterator[Reference]:
    for n, item in enumerate(_items(dataset, REFERENCED_SOP_SEQUENCE, "the payload"), start=1):
        where = f"Referenced SOP Sequence item {n}"
        yield Reference(
            _uid(item, REFERENCED_SOP_CLASS_UID, where),
            _uid(item, REFERENCED_SOP_INSTANCE_UID, where),
        )


def _by_study(dataset: JsonDict) -> Iterator[Reference]:
    studies = _items(dataset, REFERENCED_STUDY_SEQUENCE, "the payload")
    for s, study in enumerate(studies, start=1):
        where = f"Referenced Study Sequence item {s}"
        study_uid = _uid(study, STUDY_INSTANCE_UID, where)
        for r, series in enumerate(_items(study, REFERENCED_SERIES_SEQUENCE, where), start=1):
            here = f"{where} > Referenced Series Sequence item {r}"
            series_uid = _uid(series, SERIES_INSTANCE_UID, here)
            by_class = _items(series, REFERENCED_INSTANCES_BY_CLASS, here, required=False)
            flat = _items(series, REFERENCED_INSTANCE_SEQUENCE, here, required=False)
            if not by_class and not flat:
                raise BadRequest(
                    f"{here} lists no instance (Referenced Instances by SOP Class Sequence"
                    " (0008,1112) or Referenced Instance Sequence (0008,114A))"
                )
            for c, group in enumerate(by_class, start=1):
                there = f"{here} > Referenced Instances by SOP Class Sequence item {c}"
                sop_class = _uid(group, REFERENCED_SOP_CLASS_UID, there)
                instances = _items(group, REFERENCED_INSTANCE_SEQUENCE, there)
                for i, instance in enumerate(instances, start=1):
                    at = f"{there} > Referenced Instance Sequence item {i}"
                    sop_uid = _uid(instance, REFERENCED_SOP_INSTANCE_UID, at)
                    yield Reference(sop_class, sop_uid, study_uid, series_uid)
            for i, instance in enumerate(flat, start=1):
                at = f"{here} > Referenced Instance Sequence item {i}"
                sop_class = _uid(instance, REFERENCED_SOP_CLASS_UID, at)
                sop_uid = _uid(instance, REFERENCED_SOP_INSTANCE_UID, at)
                yield Reference(sop_class, sop_uid, study_uid, series_uid)
