"""PNG and GIF Pixel Data transformed into native pixels (PS3.18 10.5.2, Table 10.5.2-1).

No DICOM transfer syntax holds PNG or GIF ("Transform"), so Pillow decodes them and the pixels
are stored uncompressed in Explicit VR Little Endian, losslessly: indexed colour becomes RGB
(note 1), transparency and an alpha channel are dropped (notes 4 and 5), an animated GIF
becomes a multi-frame image of fully decoded frames (note 3), one grey channel is MONOCHROME2
(note 6). A PNG with 16 bits per colour channel is refused (note 2: 8-bit RGB would lose bits).
"""

from __future__ import annotations

import warnings
from typing import Any, BinaryIO, Final

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydicom.uid import ExplicitVRLittleEndian

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.stow.codestreams import PixelMedia

__all__ = ["transform_raster"]

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_FRAME_TIME: Final = 0x00181063  # Frame Time, the Frame Increment Pointer of a GIF animation
_EXPLICIT_VR_LITTLE_ENDIAN: Final = ExplicitVRLittleEndian
_MAX_PIXEL_BYTES: Final = 1 << 30  # decoded in memory: at most 1 GiB of pixels


def transform_raster(fp: BinaryIO, media: str, max_bytes: int) -> PixelMedia:
    """Decode an ``image/png`` or ``image/gif`` part into native pixels of at most
    ``max_bytes`` (and 1 GiB, held in memory)."""
    head = fp.read(32)
    fp.seek(0)
    if (
        media == "image/png"
        and head[:8] == _PNG_SIGNATURE
        and head[24] == 16
        and head[25] in (2, 6)
    ):
        raise PartRejected(
            FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
            "a PNG with 16 bits per colour channel cannot be transformed losslessly"
            " (PS3.18 Table 10.5.2-1 note 2)",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=["PNG" if media == "image/png" else "GIF"])
            frames = getattr(image, "n_frames", 1)
            columns, rows = image.size
            samples = 1 if _grey(image.mode) else 3
            depth = 2 if image.mode.startswith("I") else 1
            needed = rows * columns * samples * depth * frames
            if needed > min(max_bytes, _MAX_PIXEL_BYTES):
                raise PartRejected(
                    FailureReason.OUT_OF_RESOURCES,
                    f"the {media} part decodes to {needed} bytes of pixels, more than the"
                    f" {min(max_bytes, _MAX_PIXEL_BYTES)} a PNG or GIF may decode to",
                )
            pixels = [_frame(image, index, samples) for index in range(frames)]
            duration = image.info.get("duration")
    except PartRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PartRejected(FailureReason.OUT_OF_RESOURCES, f"the {media} part: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"the {media} part cannot be decoded: {exc}"
        ) from exc
    return PixelMedia(
        _EXPLICIT_VR_LITTLE_ENDIAN,
        _attributes(rows, columns, samples, 8 * depth, frames, duration),
        native=b"".join(pixels),
    )


def _grey(mode: str) -> bool:
    return mode in ("1", "L", "LA", "La") or mode.startswith("I")


def _frame(image: Image.Image, index: int, samples: int) -> bytes:
    image.seek(index)
    if samples == 3:
        return image.convert("RGB").tobytes()
    if image.mode.startswith("I"):  # 16-bit grey: PNG holds 16-bit samples, Pillow may widen
        array = np.asarray(image)
        if array.min(initial=0) < 0 or array.max(initial=0) > 0xFFFF:
            raise PartRejected(FailureReason.CANNOT_UNDERSTAND, "grey samples beyond 16 bits")
        return array.astype("<u2").tobytes()
    return image.convert("L").tobytes()


def _attributes(
    rows: int, columns: int, samples: int, bits: int, frames: int, duration: Any
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "Rows": rows,
        "Columns": columns,
        "SamplesPerPixel": samples,
        "PhotometricInterpretation": "RGB" if samples == 3 else "MONOCHROME2",
        "BitsAllocated": bits,
        "BitsStored": bits,
        "HighBit": bits - 1,
        "PixelRepresentation": 0,
    }
    if samples == 3:
        attributes["PlanarConfiguration"] = 0
    if frames > 1:
        attributes["NumberOfFrames"] = frames
        attributes["FrameIncrementPointer"] = _FRAME_TIME
        if isinstance(duration, int | float) and duration > 0:
            attributes["FrameTime"] = float(duration)
    return attributes
