"""Accept negotiation (RFC 9110 12.5.1, PS3.18 8.7): pacsflow.accept."""

from __future__ import annotations

import pytest

from pacsflow.errors import NotAcceptable
from pacsflow.media.accept import MetadataMedia, choose, parse_accept

OFFERS = list(MetadataMedia)
JSON, BARE, XML = MetadataMedia.DICOM_JSON, MetadataMedia.JSON, MetadataMedia.DICOM_XML


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/dicom+json", JSON),
        ("application/json", BARE),
        ('multipart/related; type="application/dicom+xml"', XML),
        ("multipart/related; type=application/dicom+xml", XML),
        ("multipart/related", XML),
        ('application/dicom+json;q=0.5, multipart/related; type="application/dicom+xml"', XML),
        (
            'multipart/related; type="application/dicom+xml";q=0.2, application/json;q=0.9',
            BARE,
        ),
        ("text/html, */*;q=0.1", JSON),
    ],
)
def test_the_best_offer_is_chosen(header: str, chosen: MetadataMedia) -> None:
    assert choose(header, OFFERS) is chosen


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
