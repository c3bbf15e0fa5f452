"""DICOM JSON metadata of an instance (PS3.18 Annex F) with bulk data as BulkDataURI.

pydicom's ``DataElement.to_json_dict`` encodes each element that ``raw_json`` leaves to it
(most short values are encoded from their bytes there, at a fraction of the cost); this module
walks the data set itself so that every BulkDataURI names the element's path in nested
sequences and so that a deferred bulk value (a 2 GB Pixel Data) is never read to be replaced
by its URI.
"""

from __future__ import annotations

from typing import Any, Final

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from pacsflow.dicom.dictionary import dictionary_vr
from pacsflow.dicom.raw_json import ascii_compatible, raw_json
from pacsflow.dicom.scan import BULK_VRS, PIXEL_DATA

__all__ = ["INLINE_BINARY_MAX", "bulkdata_path", "dataset_to_json", "strip_bulk"]

INLINE_BINARY_MAX: Final = 1024
_SPECIFIC_CHARACTER_SET: Final = 0x00080005
JsonDict = dict[str, Any]


def bulkdata_path(path: tuple[int, ...]) -> str:
    """The URI path segment of a bulk value: tags as 8 hex digits, item numbers in between."""
    parts = [f"{p:08X}" if i % 2 == 0 else str(p) for i, p in enumerate(path)]
    return "/".join(parts)


def dataset_to_json(ds: Dataset, instance_path: str, *, from_bytes: bool = True) -> JsonDict:
    """Encode ``ds`` as DICOM JSON; bulk values become ``{instance_path}/bulkdata/{path}``.

    ``from_bytes=False``: every element through pydicom (the reference ``raw_json`` matches).
    """
    return _encode(ds, instance_path, (), True if from_bytes else None)


def _encode(ds: Dataset, base: str, path: tuple[int, ...], fast: bool | None) -> JsonDict:
    """``fast``: the character set in force leaves ASCII as is (``raw_json``); None: never."""
    out: JsonDict = {}
    charset = ds.get_item(_SPECIFIC_CHARACTER_SET, keep_deferred=True)
    if fast is not None and charset is not None:
        fast = ascii_compatible(charset.value)
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset would convert raw elements
        tag_int = int(tag)
        if tag_int >> 16 == 0x0002:  # File Meta never appears in the data set's JSON
            continue
        elem_path = (*path, tag_int)
        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement):
            if _is_bulk(raw):
                vr = _raw_vr(raw)
                out[f"{tag_int:08X}"] = {
                    "vr": vr,
                    "BulkDataURI": f"{base}/bulkdata/{bulkdata_path(elem_path)}",
                }
                continue
            if fast and (encoded := raw_json(raw)) is not None:
                out[f"{tag_int:08X}"] = encoded
                continue
        elem = ds[tag]
        if elem.VR == "SQ":
            items = [
                _encode(item, base, (*elem_path, i), fast) for i, item in enumerate(elem.value)
            ]
            out[f"{tag_int:08X}"] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
            continue
        if elem.VR in BULK_VRS and len(elem.value or b"") > INLINE_BINARY_MAX:
            uri = f"{base}/bulkdata/{bulkdata_path(elem_path)}"
            out[f"{tag_int:08X}"] = {"vr": elem.VR, "BulkDataURI": uri}
            continue
        # Everything else inline: the scan at ingest records byte ranges by the same rule,
        # so every BulkDataURI written here resolves (pacsflow.wado.bulkdata).
        out[f"{tag_int:08X}"] = elem.to_json_dict(
            bulk_data_element_handler=None, bulk_data_threshold=1 << 62
        )
    return out


def _is_bulk(raw: RawDataElement) -> bool:
    undefined = raw.length == 0xFFFFFFFF
    if raw.tag == PIXEL_DATA:
        return undefined or raw.length > INLINE_BINARY_MAX
    return _raw_vr(raw) in BULK_VRS and (undefined or raw.length > INLINE_BINARY_MAX)


def _raw_vr(raw: RawDataElement) -> str:
    """The element's VR: as encoded (Explicit VR), else the dictionary's, else UN."""
    return str(raw.VR) if raw.VR else dictionary_vr(raw.tag) or "UN"


def strip_bulk(attributes: JsonDict) -> JsonDict:
    """A copy of DICOM JSON without bulk values (for the index)."""
    out: JsonDict = {}
    for key, value in attributes.items():
        if "BulkDataURI" in value or "InlineBinary" in value:
            continue
        if value.get("vr") == "SQ" and "Value" in value:
            value = {"vr": "SQ", "Value": [strip_bulk(item) for item in value["Value"]]}
        out[key] = value
    return out
