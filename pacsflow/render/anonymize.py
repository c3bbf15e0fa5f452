"""WADO-URI ``anonymize=yes`` (PS3.18 9.1.2): the PS3.15 Annex E Basic Application Level
Confidentiality Profile, applied on the fly to a copy of a stored instance.

pydicom has no de-identification profile, and the packages that do (deid, dicognito) bring
recipes or pseudonymisation schemes of their own; the table itself is data in
``pacsflow.render.confidentiality`` (all 456 rows of Table E.1-1 that name one attribute, with
the combined codes resolved as documented there). The rules, at every level of every sequence:

* the table's action for a listed attribute: X removes, Z empties, D puts a dummy of the VR
  (a sequence keeps its items, each de-identified in turn; the code sequences that name a
  person or an institution get one dummy code), U replaces each UID, K keeps and recurses;
* private attributes (odd groups, their creators too) are removed, as are curves (50xx) and
  whole overlays (60xx: the table removes Overlay Data and Comments, and an overlay plane
  without its data would be invalid);
* an unlisted attribute of the patient, visit or results groups (0010, 0038, 4008) is removed
  unless it is a characteristic some IODs require (``IDENTIFYING_GROUPS_KEEP``); retired and
  rare rows of those groups that the table names are covered either way;
* an unlisted UI attribute is replaced like a U row unless it names a class, a syntax or a
  coding scheme (``UID_KEEP``); a UID under the DICOM root (1.2.840.10008) is never replaced;
* every other attribute is kept (pixel data untouched: no Clean Pixel Data Option, so burned-in
  annotation stays as it is).

A replaced UID is ``2.25.`` and a SHA-512 of the archive's secret and the original UID, so the
same input UID gives the same output UID in every response of an archive (Study/Series/SOP
hierarchy and references between instances hold) and cannot be reversed without the secret.
The result carries Patient Identity Removed YES, De-identification Method and its code
(113100, DCM), and Longitudinal Temporal Information Modified REMOVED.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import generate_uid

from pacsflow.render.confidentiality import (
    ACTIONS,
    DUMMY_CODE_SEQUENCES,
    IDENTIFYING_GROUPS,
    IDENTIFYING_GROUPS_KEEP,
    UID_KEEP,
    Action,
)

__all__ = ["METHOD", "METHOD_CODE", "anonymize", "anonymized_uid"]

METHOD: Final = "Basic Application Confidentiality Profile"
METHOD_CODE: Final = ("113100", "DCM", METHOD)
DUMMY_TEXT: Final = "ANONYMIZED"
_DICOM_ROOT: Final = "1.2.840.10008."
_DUMMIES: Final[dict[str, Any]] = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000D",
    "DS": "0",
    "IS": "0",
    **dict.fromkeys(("AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"), 0),
    **dict.fromkeys(("OB", "OD", "OF", "OL", "OV", "OW", "UN"), bytes(8)),
}


def anonymize(ds: Dataset, *, secret: str) -> Dataset:
    """A de-identified copy of ``ds`` (PS3.15 E.1.1 Basic Profile); ``ds`` is not changed.

    ``secret`` is the archive's key for the UID mapping: keep it fixed for consistent UIDs.
    """
    if not secret:
        raise ValueError("anonymize needs the archive's secret for the UID mapping")
    result = copy.deepcopy(ds)
    _deidentify(result, secret)
    file_meta = getattr(result, "file_meta", None)
    if file_meta is not None:
        _deidentify(file_meta, secret)
    result.PatientIdentityRemoved = "YES"
    methods = [m for m in _values(result.get("DeidentificationMethod")) if m != METHOD]
    result.DeidentificationMethod = [*methods, METHOD] if methods else METHOD
    codes = result.get("DeidentificationMethodCodeSequence") or Sequence()
    if not any(str(code.get("CodeValue", "")) == METHOD_CODE[0] for code in codes):
        codes.append(_code(*METHOD_CODE))
    result.DeidentificationMethodCodeSequence = codes
    result.LongitudinalTemporalInformationModified = "REMOVED"
    return result


def anonymized_uid(uid: str, secret: str) -> str:
    """The UID that replaces ``uid`` (deterministic for one secret; DICOM-root UIDs kept)."""
    uid = uid.strip("\x00 ")
    if not uid or uid.startswith(_DICOM_ROOT):
        return uid
    return str(generate_uid(prefix="2.25.", entropy_srcs=[secret, "\x00", uid]))


def _action(tag: BaseTag, elem: DataElement) -> Action | None:
    """The action for one attribute; None removes it without a table row (groups, private)."""
    group = tag.group
    if tag.is_private or 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
        return None
    if (action := ACTIONS.get(int(tag))) is not None:
        return action
    if group in IDENTIFYING_GROUPS and int(tag) not in IDENTIFYING_GROUPS_KEEP:
        return "X"
    if elem.VR == "UI" and int(tag) not in UID_KEEP:
        return "U"
    return "K"


def _deidentify(dataset: Dataset, secret: str) -> None:
    """Apply the profile to ``dataset`` in place, recursing into the sequences it keeps."""
    for elem in list(dataset):
        action = _action(elem.tag, elem)
        if action is None or action == "X":
            del dataset[elem.tag]
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else elem.empty_value
        elif action == "U" or (action == "D" and elem.VR == "UI"):
            _replace_uids(elem, secret)
        elif action == "D" and elem.VR == "SQ" and int(elem.tag) in DUMMY_CODE_SEQUENCES:
            elem.value = Sequence([_code(DUMMY_TEXT, "99PACSFLOW", DUMMY_TEXT)])
        elif action == "D" and elem.VR != "SQ":
            elem.value = _dummy(elem.VR)
        elif elem.VR == "SQ":  # K, or D of a sequence: each item de-identified
            for item in elem.value or ():
                _deidentify(item, secret)


def _replace_uids(elem: DataElement, secret: str) -> None:
    values = [
        anonymized_uid(v.decode("ascii", "replace") if isinstance(v, bytes) else str(v), secret)
        for v in _values(elem.value)
    ]
    if values:
        elem.VR = "UI"  # a UN value pydicom could not type is read as the UID it holds
        elem.value = values if len(values) > 1 else values[0]


def _dummy(vr: str) -> Any:
    """A value valid for ``vr`` that says nothing (PS3.15 E.3.1 action D)."""
    if vr in _DUMMIES:
        return _DUMMIES[vr]
    if " or " in vr:  # an ambiguous VR pydicom could not settle: OB or OW, US or SS, ...
        return bytes(8) if vr.startswith("O") else 0
    return DUMMY_TEXT


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue = value
    code.CodingSchemeDesignator = scheme
    code.CodeMeaning = meaning
    return code


def _values(value: Any) -> list[Any]:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, list | tuple | MultiValue):
        return list(value)
    return [value]
