"""Property-based fuzzing of the readers of untrusted input (issue 23, item 6): the Accept
parser, the QIDO parameter parser, the multipart parser, the part header reader (DICOM structure
scan) on random bytes and on mutations of the malformed and valid corpus, and the Native DICOM
Model reader. Each either answers or raises its documented client error; nothing else escapes.

A short run in CI (hypothesis's default profile); a long run: ``PACSFLOW_FUZZ_EXAMPLES=20000
pytest tests/unit/test_fuzz_parsers.py`` (examples per test).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsflow.dicom.header import HeaderIncomplete, PartRejected, read_part_header
from pacsflow.dicom.xml import xml_to_dataset
from pacsflow.errors import BadRequest
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_in import parse_parts
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from tests.support.corpus import CORPUS

EXAMPLES = int(os.environ.get("PACSFLOW_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FILES = sorted((CORPUS / "malformed").glob("*")) + sorted((CORPUS / "modality").glob("*.dcm"))
# Text made of what an attacker would type: separators, quotes, controls, digits, wildcards.
HOSTILE = st.text(alphabet=st.sampled_from(list(';,="*?\\/ \t\r\n\x00\x7f-.^09aZq€')), max_size=80)
NAMES = st.sampled_from(
    [
        "PatientName",
        "PatientID",
        "StudyDate",
        "StudyTime",
        "StudyInstanceUID",
        "ModalitiesInStudy",
        "00100010",
        "0040A730.0040A160",
        "includefield",
        "fuzzymatching",
        "limit",
        "offset",
        "NoSuchKeyword",
    ]
)


@FUZZ
@given(st.one_of(HOSTILE, st.text(max_size=200)))
def test_parse_accept_never_fails(header: str) -> None:
    for media in parse_accept(header):
        assert "/" in media.media_type
        assert math.isfinite(media.quality) and 0.0 <= media.quality <= 1.0


@FUZZ
@given(
    st.sampled_from(list(Level)),
    st.lists(st.tuples(NAMES | st.text(max_size=20), HOSTILE | st.text(max_size=60)), max_size=8),
)
def test_parse_query_answers_or_is_400(level: Level, parameters: list[tuple[str, str]]) -> None:
    with contextlib.suppress(BadRequest):
        parse_query(level, parameters)


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _multipart(parts: list[bytes], boundary: str) -> bytes:
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
        for p in parts
    )
    return body + b"--" + boundary.encode() + b"--\r\n"


@FUZZ
@given(
    st.lists(st.binary(max_size=300), max_size=4),
    st.text(alphabet="abcXYZ019'()+_,-./:=? ", min_size=0, max_size=90),
    st.integers(min_value=0, max_value=2000),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=64),
)
def test_parse_parts_yields_or_is_400(
    parts: list[bytes], boundary: str, cut: int, noise: bytes, chunk: int
) -> None:
    """Well-formed, truncated and noisy bodies, any boundary, any chunking."""
    body = _multipart(parts, boundary or "b")
    body = body[:cut] + noise + body[cut:]

    async def consume() -> None:
        async for _ in parse_parts(_chunks(body, chunk), boundary):
            pass

    with contextlib.suppress(BadRequest):
        asyncio.run(consume())


def _read_header(data: bytes) -> None:
    for complete in (True, False):
        with contextlib.suppress(PartRejected, HeaderIncomplete):
            read_part_header(data, complete=complete)


@FUZZ
@given(st.binary(max_size=2000))
def test_the_part_header_reader_on_random_bytes(data: bytes) -> None:
    _read_header(data)


@FUZZ
@given(
    st.sampled_from(FILES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=16),
    st.integers(min_value=0),
)
def test_the_part_header_reader_on_mutated_corpus_files(
    path: Path, flips: list[tuple[int, int]], cut: int
) -> None:
    """Bytes overwritten at random places of a real (or malformed) file, then truncated."""
    data = bytearray(path.read_bytes()[:65536])
    for where, byte in flips if data else ():
        data[where % len(data)] = byte
    _read_header(bytes(data[: cut % (len(data) + 1)]))


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=500),
        st.text(max_size=300).map(
            lambda t: (
                f'<NativeDicomModel><DicomAttribute tag="{t}" vr="PN">'
                f"<PersonName><Alphabetic><FamilyName>{t}</FamilyName></Alphabetic></PersonName>"
                "</DicomAttribute></NativeDicomModel>".encode(errors="replace")
            )
        ),
    )
)
def test_the_native_dicom_model_reader_reads_or_refuses(document: bytes) -> None:
    """What ``_xml_item`` catches (SyntaxError, ValueError, TypeError) and nothing else."""
    with contextlib.suppress(SyntaxError, ValueError, TypeError):
        xml_to_dataset(document)


def test_the_corpus_is_there() -> None:
    """The mutation test above has files to mutate (22 malformed ones among them)."""
    assert len(list((CORPUS / "malformed").glob("*"))) >= 22
