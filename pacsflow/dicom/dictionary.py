"""The one VR of a standard attribute when the encoding does not carry it (PS3.5 7.1.3, A.1).

The data dictionary (PS3.6 6, through pydicom) lists several VRs for a few attributes. In
Implicit VR, the only encoding where the dictionary decides, PS3.5 A.1 c gives OW to every one
of them that may be OW (Pixel Data, Overlay Data, Waveform Data and its channel values, LUT
Data, Gray Lookup Table Data); ``US or SS`` follows Pixel Representation (PS3.3 C.7.6.3.1),
which no reader here knows, so it is US, as pydicom resolves it without one. The scan at
ingest, the metadata writer, QIDO, workitem search and the export all ask here, so they agree
on what is bulk data; the workitem payload check and the raw DICOM JSON writer read the whole
list (``dictionary_vrs``).
"""

from __future__ import annotations

from pydicom.datadict import dictionary_VR

__all__ = ["dictionary_vr", "dictionary_vrs"]


def dictionary_vrs(tag: int) -> tuple[str, ...] | None:
    """Every VR the data dictionary lists for a standard attribute (PS3.6 6), in its order;
    None for a private or unknown tag."""
    if tag & 0x00010000:  # an odd group: private (PS3.5 7.8)
        return None
    try:
        listed = str(dictionary_VR(tag))
    except KeyError:
        return None
    return tuple(listed.split(" or "))


def dictionary_vr(tag: int) -> str | None:
    """The VR of a standard attribute (PS3.5 A.1 c); None for a private or unknown tag."""
    if (choices := dictionary_vrs(tag)) is None:
        return None
    return "OW" if "OW" in choices else choices[0]
