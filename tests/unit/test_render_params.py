"""Rendering query parameters: PS3.18 8.3.5.1 (RESTful) and PS3.18 9 (WADO-URI)."""

from __future__ import annotations

import pytest

from pacsflow.errors import BadRequest
from pacsflow.render.params import (
    MAX_VIEWPORT_SIDE,
    Region,
    RenderParams,
    Viewport,
    WadoUriRender,
    Window,
    parse_rendered_params,
    parse_wado_uri_params,
)


def test_no_parameters_is_the_default_rendering() -> None:
    assert parse_rendered_params([]) == RenderParams()


def test_every_rendered_parameter() -> None:
    params = parse_rendered_params(
        [
            ("window", "40,400,SIGMOID"),
            ("viewport", "256,128,10,20.5,-100,50"),
            ("quality", "75"),
            ("annotation", "patient,technique"),
            ("charset", "UTF-8"),
            ("iccprofile", "srgb"),
        ]
    )
    assert params == RenderParams(
        window=Window(40.0, 400.0, "sigmoid"),
        viewport=Viewport(256, 128, 10.0, 20.5, -100.0, 50.0),
        quality=75,
        annotation=frozenset({"patient", "technique"}),
        charset="UTF-8",
        iccprofile="srgb",
    )


@pytest.mark.parametrize(
    ("value", "window"),
    [
        ("40,400", Window(40, 400, "linear")),
        ("-600.5,1500,linear", Window(-600.5, 1500, "linear")),
        ("0,1,Linear-Exact", Window(0, 1, "linear-exact")),
        ("1e3,2E2,sigmoid", Window(1000, 200, "sigmoid")),
        ("0,0.5,linear-exact", Window(0, 0.5, "linear-exact")),
    ],
)
def test_window(value: str, window: Window) -> None:
    assert parse_rendered_params([("window", value)]).window == window


@pytest.mark.parametrize(
    ("value", "window"),
    [
        ("2,3", Viewport(2, 3)),
        ("512,512,,,,", Viewport(512, 512)),
        ("9,9,1,,,-4", Viewport(9, 9, 1, None, None, -4)),
    ],
)
def test_viewport(value: str, window: Viewport) -> None:
    assert parse_rendered_params([("viewport", value)]).viewport == window


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("window", "40"),
        ("window", "40,400,cubic"),
        ("window", "40,0.5,linear"),  # PS3.3 C.11.2.1.2.1: LINEAR width >= 1
        ("window", "40,0,sigmoid"),
        ("window", "40,-3,linear-exact"),
        ("window", "abc,400"),
        ("window", "nan,400"),
        ("window", "1,inf"),
        ("window", "40,400,linear,extra"),
        ("viewport", "512"),
        ("viewport", "512,512,0"),
        ("viewport", "0,512"),
        ("viewport", "-5,512"),
        ("viewport", "5.5,512"),
        ("viewport", f"{MAX_VIEWPORT_SIDE + 1},512"),
        ("viewport", "512,512,-1,0,10,10"),
        ("viewport", "512,512,0,0,0,10"),
        ("viewport", "512,512,a,0,10,10"),
        ("quality", "0"),
        ("quality", "101"),
        ("quality", "high"),
        ("quality", "50.5"),
        ("annotation", "patient,billing"),
        ("annotation", ""),
        ("charset", "no-such-charset"),
        ("charset", "utf 8"),
        ("iccprofile", "adobergb"),
        ("iccprofile", "maybe"),
    ],
)
def test_malformed_rendered_parameter_names_it(name: str, value: str) -> None:
    with pytest.raises(BadRequest, match=f"'{name}'"):
        parse_rendered_params([(name, value)])


def test_unknown_parameter_is_a_bad_request_unless_ignored() -> None:
    with pytest.raises(BadRequest, match="'rows'"):
        parse_rendered_params([("rows", "5")])
    pairs = [("accept", "image/png"), ("quality", "5")]
    assert parse_rendered_params(pairs, ignore=frozenset({"accept"})).quality == 5


def test_repeated_parameter_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="'quality'"):
        parse_rendered_params([("quality", "5"), ("quality", "6")])


def test_iccprofile_no_is_the_default() -> None:
    assert parse_rendered_params([("iccprofile", "no")]).iccprofile is None
    assert parse_rendered_params([("iccprofile", "YES")]).iccprofile == "yes"


def test_wado_uri_parameters() -> None:
    parsed = parse_wado_uri_params(
        [
            ("requestType", "WADO"),
            ("studyUID", "1.2"),
            ("seriesUID", "1.2.3"),
            ("objectUID", "1.2.3.4"),
            ("contentType", "image/jpeg"),
            ("rows", "256"),
            ("columns", "128"),
            ("region", "0.25,0,1,0.5"),
            ("windowCenter", "40"),
            ("windowWidth", "400"),
            ("frameNumber", "3"),
            ("imageQuality", "80"),
            ("annotation", "technique"),
        ]
    )
    assert parsed == WadoUriRender(
        RenderParams(
            window=Window(40, 400, "linear"),
            viewport=Viewport(128, 256),
            quality=80,
            annotation=frozenset({"technique"}),
            region=Region(0.25, 0, 1, 0.5),
        ),
        frame_number=3,
    )


def test_wado_uri_rows_or_columns_alone_leave_the_other_side_free() -> None:
    assert parse_wado_uri_params([("rows", "64")]).params.viewport == Viewport(None, 64)
    assert parse_wado_uri_params([("columns", "64")]).params.viewport == Viewport(64, None)
    assert parse_wado_uri_params([]).params.viewport is None


@pytest.mark.parametrize(
    ("pairs", "name"),
    [
        ([("windowCenter", "40")], "windowCenter"),
        ([("windowWidth", "40")], "windowWidth"),
        ([("windowCenter", "40"), ("windowWidth", "0")], "windowWidth"),
        ([("windowCenter", "x"), ("windowWidth", "10")], "windowCenter"),
        ([("rows", "0")], "rows"),
        ([("columns", "-3")], "columns"),
        ([("region", "0,0,0,0")], "region"),  # x2 = 0.0 is forbidden
        ([("region", "0.5,0,0.4,1")], "region"),
        ([("region", "0,0,1.5,1")], "region"),
        ([("region", "0,0,1")], "region"),
        ([("frameNumber", "0")], "frameNumber"),
        ([("imageQuality", "101")], "imageQuality"),
        ([("presentationUID", "1.2.3")], "presentationUID"),
        ([("anonymize", "yes")], "anonymize"),
    ],
)
def test_malformed_wado_uri_parameter_names_it(pairs: list[tuple[str, str]], name: str) -> None:
    with pytest.raises(BadRequest, match=name):
        parse_wado_uri_params(pairs)


def test_wado_uri_ignore_set_is_the_callers() -> None:
    parsed = parse_wado_uri_params([("anonymize", "yes")], ignore=frozenset({"anonymize"}))
    assert parsed == WadoUriRender(RenderParams())
