"""The SDK's publishers keep ~3 s of sent packets for the server's NACKs."""

from __future__ import annotations

import inspect

import aiortc.rtcrtpsender as sender

from interlive.client.whip import SENDER_HISTORY_PACKETS


def test_aiortc_senders_keep_the_longer_history() -> None:
    assert sender.RTP_HISTORY_SIZE == SENDER_HISTORY_PACKETS == 1024
    # the setting works only while aiortc indexes its history by this module-level
    # name at send and lookup time: a new aiortc that stops doing so fails here
    source = inspect.getsource(sender.RTCRtpSender)
    assert source.count("% RTP_HISTORY_SIZE") >= 2
