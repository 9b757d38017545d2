"""``interlive bench loss`` end to end on one small cell: Chromium and the SDK viewer.

A smoke test of the harness, not a measurement: the real server with the
per-viewer policy, the SDK publisher, both viewers behind impairment proxies
at 10 % loss and 50 ms RTT, a 3 s window. It checks that each figure the
benchmark reports was really measured (the proxy dropped packets, the
viewers decoded through it, the server answered NACKs); the numbers
themselves belong to docs/benchmarks.md.
"""

from __future__ import annotations

import pytest

from interlive.bench.loss import LossConfig, run_loss
from interlive.bench.loss_cells import Cell, LossSpec
from tests.helpers.browser import require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def test_one_cell_measures_both_viewers_behind_the_proxy() -> None:
    require_chromium()
    cell = Cell(LossSpec(0.10), 50, "policy")
    [result] = run_loss(LossConfig(cells=(cell,), duration=3.0, settle=2.0, verbose=False))
    assert result.errors == []
    chromium, sdk = result.chromium, result.sdk
    assert chromium is not None and sdk is not None
    # the proxy dropped about a tenth of what the server sent to each viewer
    assert 0.02 < (chromium.wire_video_loss or 0) < 0.25
    assert 0.02 < (sdk.wire_loss or 0) < 0.25
    # Chromium decoded through it, asked for the lost packets and got them resent
    assert (chromium.fps or 0) > 10
    assert chromium.video.get("nackCount", 0) > 0
    assert chromium.video.get("retransmittedPacketsReceived", 0) > 0
    assert chromium.audio.get("totalSamplesReceived", 0) > 0
    assert chromium.freeze_fraction is not None and chromium.concealment is not None
    # the SDK viewer read the test pattern's frame indices and logged its packets
    assert sdk.published > 60 and sdk.frame_loss.shown > 30
    assert sdk.video_packets.expected > 0 and sdk.audio_packets.expected > 0
    assert (result.server.get("interlive_retransmissions_sent_total") or 0) > 0
    assert (result.publisher_fps or 0) > 20
