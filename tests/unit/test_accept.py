"""Accept negotiation (RFC 9110 12.5.1, PS3.18 8.7): pacsflow.accept."""

from __future__ import annotations

import pytest

from pacsflow.errors import NotAcceptable
from pacsflow.media.accept import choose, parse_accept

OFFERS = [
    ("application/dicom+json", None),
    ("application/json", None),
    ("multipart/related", "application/dicom+xml"),
]


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("", 0),
        ("*/*", 0),
        ("application/*", 0),
        ("application/dicom+json", 0),
        ("application/json", 1),
        ('multipart/related; type="application/dicom+xml"', 2),
        ("multipart/related; type=application/dicom+xml", 2),
        ("multipart/related", 2),
        ('application/dicom+json;q=0.5, multipart/related; type="application/dicom+xml"', 2),
        ('multipart/related; type="application/dicom+xml";q=0.2, application/json;q=0.9', 1),
        ("text/html, */*;q=0.1", 0),
    ],
)
def test_the_best_offer_is_chosen(header: str, chosen: int) -> None:
    assert choose(header, OFFERS) == chosen


@pytest.mark.parametrize(
    "header",
    ["text/html", "application/dicom+json;q=0", 'multipart/related; type="application/dicom"'],
)
def test_nothing_acceptable_is_406(header: str) -> None:
    with pytest.raises(NotAcceptable, match="application/dicom\\+json"):
        choose(header, OFFERS)


def test_parameters_and_quality_are_parsed() -> None:
    [first, second] = parse_accept('a/b;q=0.3, multipart/related; type="x/y, z"; q=0.8')
    assert (first.media_type, first.parameter("type"), first.quality) == (
        "multipart/related",
        "x/y, z",
        0.8,
    )
    assert (second.media_type, second.quality) == ("a/b", 0.3)
