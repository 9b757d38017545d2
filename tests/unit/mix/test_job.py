"""The live request body (POST/PATCH /api/rooms/{room}/live) and the reconnect backoff."""

from __future__ import annotations

import pytest

from interlive.mix.job import (
    Backoff,
    Encoding,
    LiveRequestError,
    OutputSpec,
    parse_live_patch,
    parse_live_request,
)
from interlive.mix.layout import GridLayout, SpeakerLayout


def test_only_outputs_is_required_and_defaults_fill_the_rest() -> None:
    spec = parse_live_request({"outputs": [{"url": "rtmp://cdn.example/app/key"}]})
    assert spec.outputs == (OutputSpec("rtmp://cdn.example/app/key"),)
    assert spec.encoding == Encoding()
    assert (spec.encoding.width, spec.encoding.height, spec.encoding.fps) == (1280, 720, 30)
    assert spec.encoding.keyframe_interval == 2.0
    assert isinstance(spec.layout, GridLayout)
    assert spec.hls and spec.record


def test_encoding_and_layout_are_taken() -> None:
    spec = parse_live_request(
        {
            "outputs": [{"url": "rtmps://live.example/app/k?x=1"}],
            "layout": {"type": "speaker", "strip": "left"},
            "encoding": {"width": 640, "height": 360, "fps": 25, "video_bitrate": 800_000},
        }
    )
    assert isinstance(spec.layout, SpeakerLayout)
    assert spec.encoding == Encoding(width=640, height=360, fps=25, video_bitrate=800_000)
    assert spec.outputs[0].redacted() == "rtmps://live.example/app/k"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the body must be a JSON object"),
        ({}, "outputs: required"),
        ({"outputs": "rtmp://x"}, "outputs: must be a list"),
        ({"outputs": [{"url": "http://x/y"}]}, "outputs[0].url: must be an rtmp:// or rtmps://"),
        ({"outputs": [{"url": "rtmp://a"}, {"url": "rtmp://a"}]}, "outputs[1].url: the same URL"),
        ({"outputs": [{"url": "rtmp://a", "key": 1}]}, "outputs[0]: unknown field 'key'"),
        ({"outputs": [], "layout": "mosaic"}, "layout"),
        ({"outputs": [], "layout": {"type": "grid", "gapp": 2}}, "unknown field 'gapp'"),
        ({"outputs": [], "encoding": {"width": 641}}, "encoding.width: must be even"),
        ({"outputs": [], "encoding": {"fps": 0}}, "encoding.fps: must be an integer 1..60"),
        ({"outputs": [], "encoding": {"keyframe_interval": 20}}, "encoding.keyframe_interval"),
        ({"outputs": [], "encoding": {"depth": 10}}, "encoding: unknown field 'depth'"),
        ({"outputs": [], "encoding": {"preset": "placebo"}}, "encoding.preset: must be one of"),
        ({"outputs": [], "extra": 1}, "body: unknown field 'extra'"),
        ({"outputs": [], "hls": "yes"}, "hls: must be true or false"),
    ],
)
def test_invalid_bodies_name_the_field(body: object, message: str) -> None:
    with pytest.raises(LiveRequestError) as info:
        parse_live_request(body)
    assert message in str(info.value)


def test_custom_regions_are_checked_against_the_job_canvas() -> None:
    layout = {"type": "custom", "regions": [{"x": 0, "y": 0, "w": 1280, "h": 720}]}
    with pytest.raises(LiveRequestError, match="canvas"):
        parse_live_request(
            {"outputs": [], "layout": layout, "encoding": {"width": 640, "height": 360}}
        )
    parse_live_request({"outputs": [], "layout": layout})


def test_patch_changes_only_what_it_names() -> None:
    spec = parse_live_request({"outputs": [{"url": "rtmp://a/b"}], "encoding": {"fps": 25}})
    patched = parse_live_patch({"layout": "pip"}, spec)
    assert patched.outputs == spec.outputs and patched.encoding == spec.encoding
    assert patched.layout_json == "pip"
    patched = parse_live_patch({"outputs": []}, spec)
    assert patched.outputs == () and patched.layout == spec.layout
    with pytest.raises(LiveRequestError, match="nothing to change"):
        parse_live_patch({}, spec)
    with pytest.raises(LiveRequestError, match="unknown field 'encoding'"):
        parse_live_patch({"encoding": {"fps": 30}}, spec)


def test_backoff_doubles_to_the_cap_and_resets_after_a_healthy_run() -> None:
    b = Backoff(first=1.0, cap=8.0, healthy_after=10.0)
    assert [b.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.connected_for(3.0)
    assert b.next_delay() == 8.0
    b.connected_for(10.0)
    assert b.next_delay() == 1.0
