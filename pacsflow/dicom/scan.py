"""Strict structural scan of a DICOM stream: PS3.10 7.1 File Meta, PS3.5 7 data set encoding.

Written by hand because pydicom reads leniently on purpose: it accepts a value cut short by
the end of the file, a sequence without its delimiter, or a mis-declared transfer syntax, and
returns what it could read. An archive must refuse such objects (nothing acknowledged may turn
out unreadable later), and it needs the byte offsets of Pixel Data fragments and bulk values
to serve frames and bulk data by byte range. The scan reads element headers and skips values,
so it costs the same for a 2 GB object as for a small one.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from pacsflow.dicom.dictionary import dictionary_vr

__all__ = [
    "BULK_VRS",
    "PIXEL_DATA",
    "BulkValue",
    "PixelLayout",
    "ScanResult",
    "StructureError",
    "Truncated",
    "scan",
]

PIXEL_DATA: Final = 0x7FE00010
_FLOAT_PIXEL_DATA: Final = (0x7FE00008, 0x7FE00009)
_ITEM: Final = 0xFFFEE000
_ITEM_DELIMITER: Final = 0xFFFEE00D
_SEQUENCE_DELIMITER: Final = 0xFFFEE0DD
_UNDEFINED: Final = 0xFFFFFFFF

VALID_VRS: Final = frozenset(
    [
        "AE",
        "AS",
        "AT",
        "CS",
        "DA",
        "DS",
        "DT",
        "FD",
        "FL",
        "IS",
        "LO",
        "LT",
        "OB",
        "OD",
        "OF",
        "OL",
        "OV",
        "OW",
        "PN",
        "SH",
        "SL",
        "SQ",
        "SS",
        "ST",
        "SV",
        "TM",
        "UC",
        "UI",
        "UL",
        "UN",
        "UR",
        "US",
        "UT",
        "UV",
    ]
)
_LONG_VRS: Final = frozenset(
    ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]
)
BULK_VRS: Final = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "UN"])
_REQUIRED_META: Final = {
    0x00020002: "Media Storage SOP Class UID",
    0x00020003: "Media Storage SOP Instance UID",
    0x00020010: "Transfer Syntax UID",
}


class StructureError(ValueError):
    """The bytes are not a well-formed DICOM data set."""


class Truncated(StructureError):
    """The data ended inside an element: cut short, or a length points past the end."""


@dataclass(frozen=True, slots=True)
class BulkValue:
    """A large binary value: its tag path ``(tag, item, tag, ...)`` and byte range."""

    path: tuple[int, ...]
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """Where Pixel Data lies: one native value, or encapsulated fragments (PS3.5 A.4)."""

    tag: int
    offset: int
    length: int
    encapsulated: bool
    basic_offsets: tuple[int, ...] = ()
    fragments: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class ScanResult:
    """What a scan found: encoding, selected top-level values, pixel and bulk layout."""

    transfer_syntax: str
    has_file_meta: bool
    meta: dict[int, bytes] = field(default_factory=dict)
    values: dict[int, bytes] = field(default_factory=dict)
    pixel: PixelLayout | None = None
    bulk: list[BulkValue] = field(default_factory=list)
    addressable: bool = True  # False when offsets refer to an inflated (deflated) stream
    complete: bool = True  # False when the scan stopped early at ``stop_after``
    notes: tuple[str, ...] = ()  # deviations tolerated (the instance is kept as received)


class _Reader:
    """Exact reads over a seekable stream of known size, counting the position itself."""

    __slots__ = ("fp", "pos", "size")

    def __init__(self, fp: BinaryIO, size: int, pos: int = 0) -> None:
        self.fp, self.size, self.pos = fp, size, pos
        fp.seek(pos)

    def read(self, n: int) -> bytes:
        if self.pos + n > self.size:
            raise Truncated(f"data ends at byte {self.size}, {n} bytes needed at {self.pos}")
        data = self.fp.read(n)
        if len(data) != n:
            raise Truncated(f"data ends before byte {self.pos + n}")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise Truncated(f"a value of {n} bytes at {self.pos} runs past the end ({self.size})")
        self.pos += n
        self.fp.seek(self.pos)


class _Scanner:
    """Walks one data set; collects ``want`` values at top level, pixel and bulk layout."""

    def __init__(self, want: frozenset[int], bulk_threshold: int, stop_after: int | None) -> None:
        self.want, self.bulk_threshold, self.stop_after = want, bulk_threshold, stop_after
        self.result_values: dict[int, bytes] = {}
        self.pixel: PixelLayout | None = None
        self.bulk: list[BulkValue] = []
        self.stopped = False
        self.notes: list[str] = []

    def dataset(
        self,
        r: _Reader,
        end: int | None,
        implicit: bool,
        little: bool,
        path: tuple[int, ...],
        until_delimiter: bool = False,
    ) -> None:
        while True:
            if end is not None and r.pos >= end:
                if r.pos > end:
                    raise StructureError(f"an element overruns its enclosing item at {r.pos}")
                if until_delimiter:
                    raise StructureError("an undefined-length item lacks its delimiter")
                return
            if end is None and r.pos == r.size:
                if until_delimiter:
                    raise Truncated("the data ends before an item delimiter (FFFE,E00D)")
                return
            start = r.pos
            tag, vr, length = _element_header(r, implicit, little)
            if tag == _ITEM_DELIMITER and until_delimiter:
                if length != 0:
                    raise StructureError(f"item delimiter with length {length} at {start}")
                return
            if tag >> 16 == 0xFFFE:
                raise StructureError(f"unexpected delimiter ({_fmt(tag)}) at {start}")
            if not path and self.stop_after is not None and tag > self.stop_after:
                self.stopped = True
                return
            self.value(r, tag, vr, length, end, implicit, little, path)

    def value(
        self,
        r: _Reader,
        tag: int,
        vr: str | None,
        length: int,
        end: int | None,
        implicit: bool,
        little: bool,
        path: tuple[int, ...],
    ) -> None:
        if length == _UNDEFINED:
            if tag == PIXEL_DATA and not path and vr in ("OB", "OW", None):
                self.encapsulated(r)
            elif vr == "UN":  # PS3.5 6.2.2: contents encoded as Implicit VR Little Endian
                self.items(r, None, True, True, (*path, tag))
            elif vr == "SQ" or (implicit and vr is None):
                self.items(r, None, implicit, little, (*path, tag))
            else:
                raise StructureError(f"undefined length is not allowed for {_fmt(tag)} {vr}")
            return
        limit = r.size if end is None else end
        if r.pos + length > limit:
            raise Truncated(
                f"{_fmt(tag)} declares {length} bytes at {r.pos}, only {limit - r.pos} remain"
            )
        if vr == "SQ":
            self.items(r, r.pos + length, implicit, little, (*path, tag))
            return
        if not path and tag in self.want:
            self.result_values[tag] = r.read(length)
            return
        if not path and (tag == PIXEL_DATA or tag in _FLOAT_PIXEL_DATA):
            self.pixel = PixelLayout(tag, r.pos, length, encapsulated=False)
        elif (vr in BULK_VRS or (implicit and vr is None)) and length >= self.bulk_threshold:
            # an implicit VR element the dictionary does not know is UN (as in its metadata)
            self.bulk.append(BulkValue((*path, tag), r.pos, length))
        r.skip(length)

    def items(
        self, r: _Reader, end: int | None, implicit: bool, little: bool, path: tuple[int, ...]
    ) -> None:
        index = 0
        while end is None or r.pos < end:
            start = r.pos
            tag = _tag(r.read(4), little)
            length = _u32(r.read(4), little)
            if tag == _SEQUENCE_DELIMITER and end is None:
                if length != 0:
                    raise StructureError(f"sequence delimiter with length {length} at {start}")
                return
            if tag != _ITEM:
                raise StructureError(f"expected an item (FFFE,E000) at {start}, got {_fmt(tag)}")
            item_path = (*path, index)
            if length == _UNDEFINED:
                self.dataset(r, None, implicit, little, item_path, until_delimiter=True)
            else:
                if r.pos + length > (r.size if end is None else end):
                    raise Truncated(f"item at {start} declares {length} bytes past its end")
                self.dataset(r, r.pos + length, implicit, little, item_path)
            index += 1
        if r.pos != end:
            raise StructureError(f"a sequence overruns its declared length at {r.pos}")

    def _padded(self, r: _Reader, at: int) -> bool:
        """Whether a zero byte at ``at`` pads the odd fragment before it, outside its item.

        PS3.5 A.4 has items of even length; pydicom's writer, given an odd last fragment,
        pads the Pixel Data value instead, which puts the padding byte between the item and
        the sequence delimiter. When the byte is zero and an item or the delimiter follows
        it, the byte is skipped, noted, and the fragment read as it is.
        """
        r.fp.seek(at)
        head = r.fp.read(5)
        follows = _tag(head[1:], True) if len(head) == 5 else None
        if head[:1] != b"\x00" or follows not in (_ITEM, _SEQUENCE_DELIMITER):
            r.fp.seek(r.pos)
            return False
        r.pos = at + 1
        r.fp.seek(r.pos)
        self.notes.append(
            f"Pixel Data: the odd-length fragment before byte {at} is padded after its item"
            " (PS3.5 A.4 pads inside it); stored as received"
        )
        return True

    def encapsulated(self, r: _Reader) -> None:
        start = r.pos
        offsets: tuple[int, ...] | None = None
        fragments: list[tuple[int, int]] = []
        while True:
            at = r.pos
            tag = _tag(r.read(4), True)
            length = _u32(r.read(4), True)
            if tag == _SEQUENCE_DELIMITER:
                if length != 0:
                    raise StructureError(f"sequence delimiter with length {length} at {at}")
                break
            if tag != _ITEM and fragments and fragments[-1][1] % 2 and self._padded(r, at):
                continue  # an odd fragment with its padding byte after the item: tolerated
            if tag != _ITEM or length == _UNDEFINED:
                raise StructureError(f"bad fragment item {_fmt(tag)} in Pixel Data at {at}")
            if offsets is None:
                if length % 4:
                    raise StructureError("the Basic Offset Table length is not a multiple of 4")
                raw = r.read(length)
                offsets = struct.unpack(f"<{length // 4}I", raw)
            else:
                fragments.append((r.pos, length))
                r.skip(length)
        if offsets is None:
            raise StructureError("encapsulated Pixel Data has no Basic Offset Table item")
        if not fragments:
            raise StructureError("encapsulated Pixel Data has no fragments")
        self.pixel = PixelLayout(PIXEL_DATA, start, r.pos - start, True, offsets, tuple(fragments))


def scan(
    fp: BinaryIO,
    size: int,
    *,
    want: Iterable[int] = (),
    bulk_threshold: int = 1024,
    stop_after: int | None = None,
) -> ScanResult:
    """Scan a DICOM stream strictly; raise ``StructureError``/``Truncated`` when malformed.

    ``want`` names top-level tags whose raw values are returned; ``stop_after`` ends the scan
    at the first top-level tag above it (reading a header without scanning the whole object).
    """
    r = _Reader(fp, size)
    head = fp.read(132)
    fp.seek(0)
    meta: dict[int, bytes] = {}
    has_meta = False
    if len(head) >= 132 and head[128:132] == b"DICM":
        r.skip(132)
        meta = _file_meta(r)
        has_meta = True
    elif head[:2] == b"\x02\x00" and head[4:6].decode("latin-1") in VALID_VRS:
        meta = _file_meta(r)
        has_meta = True
    if has_meta:
        for tag, name in _REQUIRED_META.items():
            if not meta.get(tag, b"").strip(b"\x00 "):
                raise StructureError(f"the File Meta Information lacks {name} {_fmt(tag)}")
        ts = meta[0x00020010].rstrip(b"\x00 ").decode("ascii", "replace")
    else:
        ts = _guess_transfer_syntax(head)
    scanner = _Scanner(frozenset(want), bulk_threshold, stop_after)
    if r.pos == r.size:
        raise StructureError("the data set is empty")
    addressable = True
    if ts == DeflatedExplicitVRLittleEndian:
        inflated = _inflate(r, complete=stop_after is None)
        r = _Reader(inflated, inflated.seek(0, 2))
        addressable = False
    implicit = ts == ImplicitVRLittleEndian
    little = ts != ExplicitVRBigEndian
    scanner.dataset(r, None, implicit, little, ())
    return ScanResult(
        transfer_syntax=ts,
        has_file_meta=has_meta,
        meta=meta,
        values=scanner.result_values,
        pixel=scanner.pixel,
        bulk=scanner.bulk,
        addressable=addressable,
        complete=not scanner.stopped,
        notes=tuple(scanner.notes),
    )


def _file_meta(r: _Reader) -> dict[int, bytes]:
    """Read group 0002 (always Explicit VR Little Endian, PS3.10 7.1)."""
    meta: dict[int, bytes] = {}
    while True:
        if r.pos + 2 > r.size:  # a data set must follow the File Meta (PS3.10 7.1)
            raise Truncated("the data ends in or right after the File Meta Information")
        r.fp.seek(r.pos)
        is_meta = r.fp.read(2) == b"\x02\x00"
        r.fp.seek(r.pos)
        if not is_meta:
            break
        tag, _, length = _element_header(r, False, True)
        if length == _UNDEFINED:
            raise StructureError(f"undefined length in File Meta element {_fmt(tag)}")
        meta[tag] = r.read(length)
    if not meta:
        raise StructureError("the File Meta Information is empty")
    return meta


def _guess_transfer_syntax(head: bytes) -> str:
    """Infer the encoding of a data set without File Meta (as PS3.10 readers commonly do)."""
    if len(head) < 8:
        raise Truncated("fewer than 8 bytes: not a DICOM data set")
    explicit = head[4:6].decode("latin-1") in VALID_VRS
    little = struct.unpack("<H", head[:2])[0] <= struct.unpack(">H", head[:2])[0]
    group = struct.unpack("<H" if little else ">H", head[:2])[0]
    if group > 0x0008:
        # A data set without File Meta starts with the Identifying group (0008) or below;
        # anything else (text, JSON, an image file) is not a DICOM data set.
        raise StructureError(f"not a DICOM data set: it starts with group {group:04X}")
    if not explicit:
        if not little:
            raise StructureError("not a DICOM data set (no File Meta, unknown encoding)")
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _inflate(r: _Reader, *, complete: bool) -> BinaryIO:
    """Inflate a Deflated Explicit VR Little Endian data set (PS3.5 A.5) into a spool file."""
    import tempfile

    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 - returned to caller
    decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        while r.pos < r.size:
            chunk = r.read(min(1 << 20, r.size - r.pos))
            out.write(decompressor.decompress(chunk))
        out.write(decompressor.flush())
    except zlib.error as exc:
        raise StructureError(f"the deflated data set is corrupt: {exc}") from exc
    if complete and not decompressor.eof:
        raise Truncated("the deflated data set ends before its final block")
    out.seek(0)
    return out  # type: ignore[return-value]


def _element_header(r: _Reader, implicit: bool, little: bool) -> tuple[int, str | None, int]:
    tag = _tag(r.read(4), little)
    if tag >> 16 == 0xFFFE or implicit:
        length = _u32(r.read(4), little)
        vr = None if tag >> 16 == 0xFFFE else dictionary_vr(tag)
        return tag, vr, length
    raw_vr = r.read(2)
    vr = raw_vr.decode("latin-1")
    if vr not in VALID_VRS:
        raise StructureError(f"invalid VR {raw_vr!r} in element {_fmt(tag)} at {r.pos - 6}")
    if vr in _LONG_VRS:
        r.read(2)
        return tag, vr, _u32(r.read(4), little)
    return tag, vr, struct.unpack("<H" if little else ">H", r.read(2))[0]


def _tag(raw: bytes, little: bool) -> int:
    group, element = struct.unpack("<HH" if little else ">HH", raw)
    return int(group) << 16 | int(element)


def _u32(raw: bytes, little: bool) -> int:
    return int(struct.unpack("<I" if little else ">I", raw)[0])


def _fmt(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
