from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlive.mix.layout import (
    MAX_REGIONS,
    CustomLayout,
    CustomRegion,
    Fit,
    GridLayout,
    LayoutError,
    PipLayout,
    Placement,
    Rect,
    Region,
    SpeakerLayout,
    compute_layout,
    fit_rect,
    grid_shape,
    layout_to_json,
    parse_layout,
)

HD = (1280, 720)
IDS = [chr(ord("a") + k) for k in range(26)]


def cells(regions: tuple[Region, ...]) -> list[tuple[str, int, int, int, int]]:
    return [(r.input_id, r.cell.x, r.cell.y, r.cell.w, r.cell.h) for r in regions]


# -- grid -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "shape"),
    [
        (1, (1, 1)),
        (2, (2, 1)),
        (3, (2, 2)),
        (4, (2, 2)),
        (5, (3, 2)),
        (6, (3, 2)),
        (7, (3, 3)),
        (9, (3, 3)),
        (10, (4, 3)),
        (12, (4, 3)),
        (13, (4, 4)),
        (16, (4, 4)),
        (17, (5, 4)),
        (20, (5, 4)),
        (21, (5, 5)),
        (25, (5, 5)),
    ],
)
def test_grid_shape(n: int, shape: tuple[int, int]) -> None:
    assert grid_shape(n) == shape


def test_grid_shape_needs_an_input() -> None:
    with pytest.raises(ValueError):
        grid_shape(0)


def test_grid_one_is_full_canvas_with_label() -> None:
    (region,) = compute_layout(GridLayout(), HD, ["a"])
    assert region == Region(Rect(0, 0, 1280, 720), 0, "a", Rect(8, 676, 1264, 36))


def test_grid_two_side_by_side() -> None:
    regions = compute_layout(GridLayout(), HD, ["a", "b"])
    assert cells(regions) == [("a", 0, 0, 640, 720), ("b", 640, 0, 640, 720)]
    assert [r.label for r in regions] == [Rect(8, 676, 624, 36), Rect(648, 676, 624, 36)]


def test_grid_three_centres_the_last_row() -> None:
    assert cells(compute_layout(GridLayout(), HD, ["a", "b", "c"])) == [
        ("a", 0, 0, 640, 360),
        ("b", 640, 0, 640, 360),
        ("c", 320, 360, 640, 360),
    ]


def test_grid_four() -> None:
    regions = compute_layout(GridLayout(), HD, ["a", "b", "c", "d"])
    assert cells(regions) == [
        ("a", 0, 0, 640, 360),
        ("b", 640, 0, 640, 360),
        ("c", 0, 360, 640, 360),
        ("d", 640, 360, 640, 360),
    ]
    assert regions[3].label == Rect(648, 676, 624, 36)


def test_grid_five_equal_even_cells() -> None:
    # 1280 / 3 = 426.67: every cell is 426 wide (even, all equal), rows centred.
    assert cells(compute_layout(GridLayout(), HD, IDS[:5])) == [
        ("a", 0, 0, 426, 360),
        ("b", 426, 0, 426, 360),
        ("c", 852, 0, 426, 360),
        ("d", 214, 360, 426, 360),
        ("e", 640, 360, 426, 360),
    ]


def test_grid_six() -> None:
    assert cells(compute_layout(GridLayout(), HD, IDS[:6]))[3:] == [
        ("d", 0, 360, 426, 360),
        ("e", 426, 360, 426, 360),
        ("f", 852, 360, 426, 360),
    ]


def test_grid_seven_is_three_by_three() -> None:
    regions = compute_layout(GridLayout(), HD, IDS[:7])
    assert cells(regions) == [
        ("a", 0, 0, 426, 240),
        ("b", 426, 0, 426, 240),
        ("c", 852, 0, 426, 240),
        ("d", 0, 240, 426, 240),
        ("e", 426, 240, 426, 240),
        ("f", 852, 240, 426, 240),
        ("g", 426, 480, 426, 240),
    ]
    assert regions[6].label == Rect(434, 688, 410, 24)


def test_grid_ten_is_four_by_three() -> None:
    got = cells(compute_layout(GridLayout(), HD, IDS[:10]))
    assert got[0] == ("a", 0, 0, 320, 240)
    assert got[7] == ("h", 960, 240, 320, 240)
    assert got[8:] == [("i", 320, 480, 320, 240), ("j", 640, 480, 320, 240)]


def test_grid_sixteen() -> None:
    got = cells(compute_layout(GridLayout(), HD, IDS[:16]))
    assert got[5] == ("f", 320, 180, 320, 180)
    assert got[15] == ("p", 960, 540, 320, 180)


def test_grid_twenty_five_and_more_shows_twenty_five() -> None:
    regions = compute_layout(GridLayout(), HD, IDS[:26])
    assert len(regions) == MAX_REGIONS
    assert cells(regions)[24] == ("y", 1024, 576, 256, 144)
    assert regions[24].label == Rect(1032, 698, 240, 14)
    assert "z" not in {r.input_id for r in regions}


def test_grid_gap() -> None:
    assert cells(compute_layout(GridLayout(gap=8), HD, IDS[:4])) == [
        ("a", 0, 0, 636, 356),
        ("b", 644, 0, 636, 356),
        ("c", 0, 364, 636, 356),
        ("d", 644, 364, 636, 356),
    ]


def test_grid_without_labels_and_without_inputs() -> None:
    assert compute_layout(GridLayout(labels=False), HD, ["a"])[0].label is None
    assert compute_layout(GridLayout(), HD, []) == ()


def test_label_left_out_when_the_cell_is_too_small() -> None:
    (region,) = compute_layout(GridLayout(), (40, 24), ["a"])
    assert region.label is None


def test_bad_canvas_and_duplicate_inputs() -> None:
    with pytest.raises(ValueError, match="even"):
        compute_layout(GridLayout(), (1279, 720), ["a"])
    with pytest.raises(ValueError, match="unique"):
        compute_layout(GridLayout(), HD, ["a", "a"])


# -- speaker --------------------------------------------------------------------------


def test_speaker_active_speaker_large_others_in_bottom_strip() -> None:
    regions = compute_layout(SpeakerLayout(), HD, ["a", "b", "c", "d"], active_speaker="c")
    assert cells(regions) == [
        ("c", 0, 0, 1280, 576),
        ("a", 256, 576, 256, 144),
        ("b", 512, 576, 256, 144),
        ("d", 768, 576, 256, 144),
    ]
    assert regions[0].label == Rect(8, 532, 1264, 36)
    assert regions[1].label == Rect(264, 698, 240, 14)


def test_speaker_without_speaker_uses_first_input() -> None:
    for active in (None, "nobody"):
        regions = compute_layout(SpeakerLayout(), HD, ["a", "b"], active_speaker=active)
        assert cells(regions) == [("a", 0, 0, 1280, 576), ("b", 512, 576, 256, 144)]


def test_speaker_pinned_main_beats_active_speaker() -> None:
    regions = compute_layout(SpeakerLayout(main="b"), HD, ["a", "b", "c"], active_speaker="c")
    assert regions[0].input_id == "b"
    assert [r.input_id for r in regions[1:]] == ["a", "c"]


def test_speaker_single_input_is_full_canvas() -> None:
    assert cells(compute_layout(SpeakerLayout(), HD, ["a"])) == [("a", 0, 0, 1280, 720)]


def test_speaker_right_strip() -> None:
    regions = compute_layout(SpeakerLayout(strip="right"), HD, ["a", "b", "c", "d"])
    assert cells(regions) == [
        ("a", 0, 0, 1024, 720),
        ("b", 1024, 144, 256, 144),
        ("c", 1024, 288, 256, 144),
        ("d", 1024, 432, 256, 144),
    ]


def test_speaker_top_and_left_strips() -> None:
    top = compute_layout(SpeakerLayout(strip="top"), HD, ["a", "b"])
    assert cells(top) == [("a", 0, 144, 1280, 576), ("b", 512, 0, 256, 144)]
    left = compute_layout(SpeakerLayout(strip="left"), HD, ["a", "b"])
    assert cells(left) == [("a", 256, 0, 1024, 720), ("b", 0, 288, 256, 144)]


def test_speaker_strip_shrinks_to_fit_everyone() -> None:
    regions = compute_layout(SpeakerLayout(), HD, IDS[:9])
    assert regions[0].cell == Rect(0, 0, 1280, 576)
    strip = cells(regions)[1:]
    assert strip == [(IDS[k + 1], 160 * k, 602, 160, 90) for k in range(8)]


# -- picture in picture ---------------------------------------------------------------


def test_pip_main_full_inset_bottom_right() -> None:
    regions = compute_layout(PipLayout(), HD, ["a", "b"])
    assert regions == (
        Region(Rect(0, 0, 1280, 720), 0, "a", Rect(8, 676, 1264, 36)),
        Region(Rect(944, 524, 320, 180), 1, "b", Rect(952, 678, 304, 18)),
    )


def test_pip_inset_follows_the_active_speaker_but_not_onto_main() -> None:
    assert compute_layout(PipLayout(), HD, ["a", "b", "c"], "c")[1].input_id == "c"
    assert compute_layout(PipLayout(), HD, ["a", "b", "c"], "a")[1].input_id == "b"
    assert len(compute_layout(PipLayout(), HD, ["a", "b", "c"])) == 2


@pytest.mark.parametrize(
    ("corner", "x", "y"),
    [("top-left", 16, 16), ("top-right", 944, 16), ("bottom-left", 16, 524)],
)
def test_pip_corners(corner: Any, x: int, y: int) -> None:
    inset = compute_layout(PipLayout(corner=corner), HD, ["a", "b"])[1]
    assert inset.cell == Rect(x, y, 320, 180)


def test_pip_explicit_main_inset_size_margin() -> None:
    spec = PipLayout(main="c", inset_size=0.5, margin=0)
    regions = compute_layout(spec, HD, ["a", "b", "c"])
    assert cells(regions) == [("c", 0, 0, 1280, 720), ("a", 640, 360, 640, 360)]
    assert cells(compute_layout(PipLayout(), HD, ["a"])) == [("a", 0, 0, 1280, 720)]


# -- custom ---------------------------------------------------------------------------


def test_custom_slots_pins_snapping_and_z_order() -> None:
    spec = parse_layout(
        {
            "type": "custom",
            "regions": [
                {"x": 961, "y": 41, "w": 280, "h": 160, "z": 5, "input": "b"},
                {"x": 0, "y": 0, "w": 1280, "h": 720, "z": 0},
                {"x": 0, "y": 0, "w": 320, "h": 180, "z": 9, "label": False},
            ],
        },
        canvas=HD,
        inputs=["a", "b", "c"],
    )
    regions = compute_layout(spec, HD, ["a", "b", "c"])
    # Painted by z: the free slots take a then c (b is pinned); x 961 -> 960, right 1241 -> 1240.
    assert cells(regions) == [
        ("a", 0, 0, 1280, 720),
        ("b", 960, 40, 280, 160),
        ("c", 0, 0, 320, 180),
    ]
    assert regions[0].label is not None
    assert regions[2].label is None


def test_custom_absent_pinned_or_reserved_regions_are_left_out() -> None:
    spec = parse_layout(
        {
            "type": "custom",
            "regions": [
                {"x": 0, "y": 0, "w": 640, "h": 360, "input": "guest", "slot": True},
                {"x": 640, "y": 0, "w": 640, "h": 360},
                {"x": 0, "y": 360, "w": 640, "h": 360},
            ],
        },
        canvas=HD,
        inputs=["a"],
    )
    assert cells(compute_layout(spec, HD, ["a"])) == [("a", 640, 0, 640, 360)]
    joined = compute_layout(spec, HD, ["a", "guest"])
    assert cells(joined) == [("guest", 0, 0, 640, 360), ("a", 640, 0, 640, 360)]


def test_custom_out_of_canvas_at_compute_time() -> None:
    spec = CustomLayout((CustomRegion(1200, 0, 100, 100, 0),))
    with pytest.raises(LayoutError, match=r"beyond the 1280x720 canvas \(x \+ w = 1300"):
        compute_layout(spec, HD, ["a"])


# -- fit ------------------------------------------------------------------------------


def test_fit_contain_letterbox_and_pillarbox() -> None:
    assert fit_rect(Rect(640, 0, 640, 720), 1280, 720) == Placement(
        640, 360, 0, 0, Rect(640, 180, 640, 360)
    )
    # Portrait 9:16 into 640x360: 360 * 9 / 16 = 202.5 -> 202, centred at x = 218.
    assert fit_rect(Rect(0, 0, 640, 360), 720, 1280) == Placement(
        202, 360, 0, 0, Rect(218, 0, 202, 360)
    )
    assert fit_rect(Rect(0, 0, 1280, 720), 640, 480) == Placement(
        960, 720, 0, 0, Rect(160, 0, 960, 720)
    )


def test_fit_exact_shape_fills_the_cell() -> None:
    cell = Rect(426, 240, 426, 240)
    assert fit_rect(cell, 1280, 720) == Placement(426, 240, 0, 0, cell)


def test_fit_cover_crops_the_overflow() -> None:
    cell = Rect(640, 0, 640, 720)
    assert fit_rect(cell, 1280, 720, Fit.COVER) == Placement(1280, 720, 320, 0, cell)
    portrait = Rect(0, 0, 640, 360)
    # 1280 * 640 / 720 = 1137.8 -> 1138; crop (1138 - 360) / 2 = 389 -> 388.
    assert fit_rect(portrait, 720, 1280, Fit.COVER) == Placement(640, 1138, 0, 388, portrait)


def test_fit_rejects_empty_source() -> None:
    with pytest.raises(ValueError):
        fit_rect(Rect(0, 0, 2, 2), 0, 10)


@given(
    st.integers(1, 640),
    st.integers(1, 360),
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.sampled_from(list(Fit)),
)
def test_fit_is_even_and_inside(cw: int, ch: int, sw: int, sh: int, fit: Fit) -> None:
    cell = Rect(2, 4, 2 * cw, 2 * ch)
    p = fit_rect(cell, sw, sh, fit)
    for value in (p.scale_w, p.scale_h, p.crop_x, p.crop_y, *vars_of(p.dest)):
        assert value % 2 == 0
    d = p.dest
    assert cell.x <= d.x and cell.y <= d.y and d.right <= cell.right and d.bottom <= cell.bottom
    assert p.crop_x + d.w <= p.scale_w and p.crop_y + d.h <= p.scale_h
    if fit is Fit.COVER:
        assert d == cell
    else:
        assert p.crop_x == p.crop_y == 0 and (d.w, d.h) == (p.scale_w, p.scale_h)
        assert d.w == cell.w or d.h == cell.h


def vars_of(r: Rect) -> tuple[int, int, int, int]:
    return (r.x, r.y, r.w, r.h)


@given(
    st.integers(0, 30),
    st.sampled_from(["grid", "speaker", "pip"]),
    st.sampled_from([(1280, 720), (1920, 1080), (640, 360), (720, 1280), (854, 480)]),
    st.integers(0, 30),
)
def test_every_layout_is_even_inside_and_unique(
    n: int, kind: str, canvas: tuple[int, int], speaker: int
) -> None:
    inputs = [f"p{k}" for k in range(n)]
    regions = compute_layout(parse_layout(kind), canvas, inputs, f"p{speaker}")
    assert len(regions) == min(n, MAX_REGIONS if kind != "pip" else 2)
    assert len({r.input_id for r in regions}) == len(regions)
    for r in regions:
        c = r.cell
        assert all(v % 2 == 0 for v in vars_of(c))
        assert c.w >= 2 and c.h >= 2
        assert c.x >= 0 and c.y >= 0 and c.right <= canvas[0] and c.bottom <= canvas[1]
        if r.label is not None:
            lb = r.label
            assert c.x <= lb.x and lb.right <= c.right and c.y <= lb.y and lb.bottom <= c.bottom
    if kind != "pip":  # tiles never overlap
        for i, a in enumerate(regions):
            for b in regions[i + 1 :]:
                ac, bc = a.cell, b.cell
                assert (
                    ac.right <= bc.x or bc.right <= ac.x or ac.bottom <= bc.y or bc.bottom <= ac.y
                )


# -- parse_layout ---------------------------------------------------------------------


def test_parse_names() -> None:
    assert parse_layout("grid") == GridLayout()
    assert parse_layout("speaker") == SpeakerLayout()
    assert parse_layout("pip") == PipLayout()


def test_parse_objects_with_options() -> None:
    assert parse_layout(
        {"type": "grid", "fit": "cover", "labels": False, "background": "#102030", "gap": 4}
    ) == GridLayout(Fit.COVER, False, (16, 32, 48), 4)
    assert parse_layout(
        {"type": "speaker", "strip": "right", "strip_size": 0.25, "main": "a"}, inputs=["a"]
    ) == SpeakerLayout(strip="right", strip_size=0.25, main="a")
    assert parse_layout(
        {"type": "pip", "main": "a", "inset": "b", "corner": "top-left", "inset_size": 0.3}
    ) == PipLayout(main="a", inset="b", corner="top-left", inset_size=0.3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("grd", "layout: expected one of 'grid', 'speaker', 'pip', got the string 'grd'"),
        ("custom", "layout: a custom layout is an object with 'regions', not a name"),
        (5, "layout: expected a layout name ('grid', 'speaker', 'pip') or an object, got the"),
        ([], "layout: expected a layout name ('grid', 'speaker', 'pip') or an object, got a list"),
        ({}, "layout.type: required ('grid', 'speaker', 'pip' or 'custom')"),
        ({"type": "mosaic"}, "layout.type: expected one of 'grid', 'speaker', 'pip', 'custom'"),
        (
            {"type": "grid", "gapp": 2},
            "layout: unknown field 'gapp' for a grid layout "
            "(allowed: background, background_image, fit, gap, labels, type)",
        ),
        ({"type": "grid", "fit": "fill"}, "layout.fit: expected one of 'contain', 'cover'"),
        ({"type": "grid", "labels": 1}, "layout.labels: expected true or false, got the number 1"),
        ({"type": "grid", "background": "red"}, "layout.background: expected a colour '#rrggbb'"),
        ({"type": "grid", "gap": 3}, "layout.gap: must be even, got 3"),
        ({"type": "grid", "gap": 100}, "layout.gap: must be at most 64, got 100"),
        ({"type": "grid", "gap": 2.0}, "layout.gap: expected an integer, got the number 2.0"),
        ({"type": "speaker", "strip_size": 0.9}, "layout.strip_size: must be between 0.05 and 0.5"),
        ({"type": "speaker", "strip": "middle"}, "layout.strip: expected one of 'bottom'"),
        ({"type": "pip", "corner": "centre"}, "layout.corner: expected one of 'top-left'"),
        ({"type": "pip", "main": "a", "inset": "a"}, "layout.inset: must differ from layout.main"),
        ({"type": "pip", "main": ""}, "layout.main: expected a participant identity"),
        ({"type": "pip", "margin": -2}, "layout.margin: must be at least 0, got -2"),
        ({"type": "custom"}, "layout.regions: expected a non-empty list of regions, got null"),
        ({"type": "custom", "regions": []}, "layout.regions: expected a non-empty list"),
        ({"type": "custom", "regions": [7]}, "layout.regions[0]: expected an object"),
        (
            {"type": "custom", "regions": [{"x": 0, "y": 0, "w": 10}]},
            "layout.regions[0].h: required",
        ),
        (
            {"type": "custom", "regions": [{"x": -2, "y": 0, "w": 10, "h": 10}]},
            "layout.regions[0].x: must be at least 0, got -2",
        ),
        (
            {"type": "custom", "regions": [{"x": 0, "y": 0, "w": 0, "h": 10}]},
            "layout.regions[0].w: must be at least 2, got 0",
        ),
        (
            {"type": "custom", "regions": [{"x": 0.5, "y": 0, "w": 10, "h": 10}]},
            "layout.regions[0].x: expected an integer, got the number 0.5",
        ),
        (
            {"type": "custom", "regions": [{"x": 0, "y": 0, "w": 10, "h": 10, "colour": 1}]},
            "layout.regions[0]: unknown field 'colour'",
        ),
        (
            {"type": "custom", "regions": [{"x": 0, "y": 0, "w": 10, "h": 10, "slot": True}]},
            "layout.regions[0].slot: a reserved slot needs the 'input' it is reserved for",
        ),
        (
            {
                "type": "custom",
                "regions": [
                    {"x": 0, "y": 0, "w": 10, "h": 10, "input": "a"},
                    {"x": 20, "y": 0, "w": 10, "h": 10, "input": "a"},
                ],
            },
            "layout.regions[1].input: 'a' is already shown by layout.regions[0]",
        ),
    ],
)
def test_parse_errors_are_precise(body: object, message: str) -> None:
    with pytest.raises(LayoutError) as err:
        parse_layout(body)
    assert str(err.value).startswith(message), str(err.value)


def test_parse_custom_checks_the_canvas_when_given() -> None:
    body = {"type": "custom", "regions": [{"x": 1000, "y": 600, "w": 300, "h": 100}]}
    assert isinstance(parse_layout(body), CustomLayout)  # no canvas: not checked yet
    with pytest.raises(LayoutError) as err:
        parse_layout(body, canvas=HD)
    assert str(err.value) == (
        "layout.regions[0]: extends beyond the 1280x720 canvas (x + w = 1300, y + h = 700)"
    )
    # w >= 2 stays >= 2 once snapped (x 1 w 2 -> x 0 w 2); a spec built in code may not.
    snapped = parse_layout(
        {"type": "custom", "regions": [{"x": 1, "y": 0, "w": 2, "h": 10}]}, canvas=HD
    )
    assert cells(compute_layout(snapped, HD, ["a"])) == [("a", 0, 0, 2, 10)]
    with pytest.raises(LayoutError, match=r"regions\[0\]: smaller than 2x2 pixels once snapped"):
        compute_layout(CustomLayout((CustomRegion(0, 0, 1, 10, 0),)), HD, ["a"])


def test_parse_custom_unknown_input_only_as_slot() -> None:
    region = {"x": 0, "y": 0, "w": 10, "h": 10, "input": "zed"}
    with pytest.raises(LayoutError) as err:
        parse_layout({"type": "custom", "regions": [region]}, inputs=["a"])
    assert str(err.value).startswith("layout.regions[0].input: 'zed' is not on stage (add")
    spec = parse_layout({"type": "custom", "regions": [{**region, "slot": True}]}, inputs=["a"])
    assert isinstance(spec, CustomLayout) and spec.regions[0].slot


def test_parse_main_must_be_on_stage_when_inputs_given() -> None:
    with pytest.raises(LayoutError, match=r"layout.main: 'zed' is not on stage"):
        parse_layout({"type": "speaker", "main": "zed"}, inputs=["a"])


def test_parse_too_many_regions() -> None:
    regions = [{"x": 0, "y": 0, "w": 10, "h": 10}] * 26
    with pytest.raises(LayoutError) as err:
        parse_layout({"type": "custom", "regions": regions})
    assert str(err.value) == "layout.regions: at most 25 regions, got 26"


@pytest.mark.parametrize(
    "spec",
    [
        GridLayout(Fit.COVER, False, (1, 2, 255), 6),
        SpeakerLayout(strip="left", strip_size=0.3, main="x", background=(9, 9, 9)),
        PipLayout(main="a", inset="b", corner="top-right", inset_size=0.2, margin=24),
        CustomLayout(
            (CustomRegion(0, 0, 100, 50, 3, "a", True, False), CustomRegion(2, 2, 8, 8, -1)),
            Fit.COVER,
        ),
    ],
)
def test_json_round_trip(spec: Any) -> None:
    assert parse_layout(layout_to_json(spec)) == spec
