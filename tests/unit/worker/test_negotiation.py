"""The worker's offer/answer seam: what Chrome's offers get, as the SFU's tracks see it."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlive.sdp import SessionDescription
from interlive.worker.negotiation import Endpoint, answer_offer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sdp"
ENDPOINT = Endpoint("ufrag", "p" * 22, ":".join(["AB"] * 32), "127.0.0.1", 40000)


@pytest.mark.parametrize(
    ("fixture", "mode"),
    [("chrome156_sendonly.sdp", "publish"), ("chrome156_recvonly.sdp", "subscribe")],
)
def test_video_red_and_ulpfec_are_answered_both_ways(fixture: str, mode: str) -> None:
    offer = (FIXTURES / fixture).read_text()
    answer_text, plan, _ = answer_offer(offer, mode=mode, endpoint=ENDPOINT)
    video = next(m for m in SessionDescription.parse(answer_text).media if m.kind == "video")
    names = {c.payload_type: c.name.lower() for c in video.codecs}
    assert names[118] == "red" and names[120] == "ulpfec"
    # RED keeps its RTX (apt=118), so a retransmitted RED packet stays RED
    assert any(c.fmtp.get("apt") == "118" for c in video.codecs if c.name.lower() == "rtx")
    media = (plan.recv if mode == "publish" else plan.send)[1]
    codecs = {c.mime.lower(): c for c in media.codecs}
    assert codecs["video/red"].payload_type == 118
    assert codecs["video/red"].rtx_payload_type is not None
    assert codecs["video/ulpfec"].payload_type == 120
