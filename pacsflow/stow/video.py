"""Image Pixel Description of a ``video/mp4`` or ``video/mpeg`` bulk part (PS3.18 10.5.2).

Video is encapsulated unchanged (Table 10.5.2-1), in the MPEG transfer syntax its stream
conforms to (PS3.5 8.2.5-8.2.8, A.4.5-A.4.9): MPEG-2 Main Profile at Main or High Level,
MPEG-4 AVC/H.264 High Profile up to Level 4.1 (or 4.2 for 2D), HEVC/H.265 Main Profile up to
Level 5.1 (Main 10, whose Bits Stored differ, is refused for now). The container is probed with
PyAV (FFmpeg's demuxers): no frame is decoded, the packets are only counted when the container
does not say how many frames it holds. The Image Pixel attributes are the ones PS3.5 8.2.5
fixes for these syntaxes (YBR_PARTIAL_420, 8 bits).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, BinaryIO, Final

import av
from pydicom.uid import HEVCMP51, MPEG2MPHL, MPEG2MPML, MPEG4HP41, MPEG4HP422D

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.stow.codestreams import PixelMedia

__all__ = ["probe_video"]

_FRAME_TIME: Final = 0x00181063
_CONTAINERS: Final = {
    "video/mp4": ("mp4", "mov"),
    "video/mpeg": ("mpeg", "mpegts"),
    "video/mpeg2": ("mpeg", "mpegts"),  # the name PS3.18 Table 8.7.3-5 gives MPEG-2
}
_H264_PROFILES: Final = frozenset({"Baseline", "Constrained Baseline", "Main", "High"})
_METHOD: Final = {"h264": "ISO_14496_10", "hevc": "ISO_23008_2", "mpeg2video": "ISO_13818_2"}


def _unsupported(why: str) -> PartRejected:
    return PartRejected(
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
        f"the video cannot be stored unchanged: {why} (PS3.5 8.2.5-8.2.8)",
    )


def probe_video(fp: BinaryIO, media: str, size: int) -> PixelMedia:
    """The MPEG transfer syntax and Image Pixel attributes of a video part."""
    try:
        with av.open(fp, mode="r") as container:
            formats = set(container.format.name.split(","))
            if not formats & set(_CONTAINERS.get(media, ())):
                raise PartRejected(
                    FailureReason.CANNOT_UNDERSTAND,
                    f"the {media} part holds a {container.format.name} container",
                )
            if not container.streams.video:
                raise PartRejected(
                    FailureReason.CANNOT_UNDERSTAND, f"the {media} part has no video"
                )
            stream = container.streams.video[0]
            context = stream.codec_context
            codec, profile, level = context.name, str(context.profile or ""), int(context.level)
            rows, columns = context.height, context.width
            rate = stream.average_rate or stream.guessed_rate
            frames = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    except PartRejected:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"the {media} part is not a readable video: {exc}"
        ) from exc
    syntax = _transfer_syntax(codec, profile, level, rows, columns)
    return PixelMedia(
        syntax,
        _attributes(rows, columns, frames, Fraction(rate) if rate else None),
        span=(0, size),
        lossy_method=_METHOD[codec],
    )


def _transfer_syntax(codec: str, profile: str, level: int, rows: int, columns: int) -> str:
    if codec == "h264":
        if profile not in _H264_PROFILES:
            raise _unsupported(f"H.264 {profile} profile is not High Profile or below")
        if level <= 41:
            return MPEG4HP41
        if level == 42 and rows <= 1080 and columns <= 1920:
            return MPEG4HP422D
        raise _unsupported(f"H.264 level {level / 10} is above 4.2")
    if codec == "hevc":
        if level > 153:  # HEVC levels are 30 x level: 5.1 is 153
            raise _unsupported(f"HEVC level {level / 30:.1f} is above 5.1")
        if profile == "Main":
            return HEVCMP51
        raise _unsupported(f"HEVC {profile} profile is not the Main profile")
    if codec == "mpeg2video" and profile == "Main":
        if level == 8:  # Main Level (ISO 13818-2 Table 8-3)
            return MPEG2MPML
        if level == 4:  # High Level
            return MPEG2MPHL
        raise _unsupported(f"MPEG-2 Main Profile at level code {level}")
    raise _unsupported(f"{codec} {profile} has no DICOM transfer syntax")


def _attributes(rows: int, columns: int, frames: int, rate: Fraction | None) -> dict[str, Any]:
    if rows <= 0 or columns <= 0 or frames <= 0:
        raise PartRejected(FailureReason.CANNOT_UNDERSTAND, "the video has no frame size or frames")
    attributes: dict[str, Any] = {
        "Rows": rows,
        "Columns": columns,
        "SamplesPerPixel": 3,
        "PhotometricInterpretation": "YBR_PARTIAL_420",
        "PlanarConfiguration": 0,
        "BitsAllocated": 8,
        "BitsStored": 8,
        "HighBit": 7,
        "PixelRepresentation": 0,
        "NumberOfFrames": frames,
        "FrameIncrementPointer": _FRAME_TIME,
    }
    if rate:
        attributes["FrameTime"] = round(1000 / float(rate), 6)
        attributes["CineRate"] = round(float(rate))
    return attributes
