"""attach_packet_tap: the one adapter over aiortc's private receiver hook."""

from __future__ import annotations

import inspect
import logging
from typing import Any, cast

import pytest
from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from interlive.client import attach_packet_tap
from interlive.client.raw import RtpPacketView


class StandInReceiver:
    """Has the private hook with aiortc 1.16's signature; records what reaches it."""

    def __init__(self) -> None:
        self.handled: list[tuple[int, int]] = []

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.handled.append((packet.sequence_number, arrival_time_ms))


def _receiver() -> tuple[StandInReceiver, RTCRtpReceiver]:
    stand_in = StandInReceiver()
    return stand_in, cast(RTCRtpReceiver, stand_in)


async def _deliver(receiver: Any, seq: int, arrival_ms: int) -> None:
    # the call exactly as RTCDtlsTransport._handle_rtp_data makes it
    await receiver._handle_rtp_packet(
        RtpPacket(payload_type=96, sequence_number=seq), arrival_time_ms=arrival_ms
    )


def test_aiortc_still_has_the_hook_with_this_signature() -> None:
    hook = RTCRtpReceiver._handle_rtp_packet
    assert inspect.iscoroutinefunction(hook)
    assert list(inspect.signature(hook).parameters) == ["self", "packet", "arrival_time_ms"]


async def test_taps_see_packets_in_order_and_the_original_still_runs() -> None:
    stand_in, receiver = _receiver()
    seen: list[tuple[str, int, int]] = []

    def first(packet: RtpPacketView, arrival_ms: int) -> None:
        seen.append(("first", packet.sequence_number, arrival_ms))

    def second(packet: RtpPacketView, arrival_ms: int) -> None:
        seen.append(("second", packet.sequence_number, arrival_ms))

    attach_packet_tap(receiver, first)
    attach_packet_tap(receiver, second)
    await _deliver(receiver, 7, 1000)
    assert seen == [("first", 7, 1000), ("second", 7, 1000)]
    assert stand_in.handled == [(7, 1000)]


async def test_detach_removes_one_tap_then_restores_the_method() -> None:
    stand_in, receiver = _receiver()
    seen: list[int] = []
    detach_a = attach_packet_tap(receiver, lambda p, t: seen.append(1))
    detach_b = attach_packet_tap(receiver, lambda p, t: seen.append(2))
    detach_a()
    await _deliver(receiver, 1, 0)
    assert seen == [2]
    detach_b()
    assert "_handle_rtp_packet" not in vars(stand_in)
    await _deliver(receiver, 2, 0)
    assert seen == [2]
    assert stand_in.handled == [(1, 0), (2, 0)]
    detach_b()  # detaching twice is harmless


async def test_a_failing_tap_is_logged_and_does_not_reach_aiortc(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stand_in, receiver = _receiver()

    def broken(packet: RtpPacketView, arrival_ms: int) -> None:
        raise RuntimeError("tap bug")

    attach_packet_tap(receiver, broken)
    with caplog.at_level(logging.ERROR, logger="interlive.client.raw"):
        await _deliver(receiver, 3, 5)
    assert stand_in.handled == [(3, 5)]
    assert "tap bug" in caplog.text


def test_an_object_without_the_hook_is_refused() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(RuntimeError, match=r"1\.16"):
        attach_packet_tap(cast(RTCRtpReceiver, NotAReceiver()), lambda p, t: None)
