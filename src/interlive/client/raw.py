"""Raw RTP packet taps on aiortc receivers: the client's one use of aiortc internals.

aiortc's ``RTCRtpReceiver`` decodes media and has no public API for the packets
themselves. Every decrypted RTP packet routed to a receiver goes through the
private coroutine ``RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms=...)``
(called by ``RTCDtlsTransport._handle_rtp_data``). :func:`attach_packet_tap`
shadows that method on one receiver instance with a wrapper that shows the packet
to the taps, then calls the original, so decoding is unaffected.

PINNED: this relies on aiortc 1.16 (pyproject pins ``aiortc>=1.16,<1.17``). Re-check
the name and signature of ``_handle_rtp_packet`` before moving the pin. Nothing
else in :mod:`interlive.client` touches aiortc's private members.

What a tap sees: aiortc's parsed ``RtpPacket`` after SRTP, before the receiver's
own checks; RTX retransmissions arrive with the RTX payload type and SSRC, not
unwrapped; header extensions are only those aiortc parses (mid, abs-send-time,
audio level...), others are dropped by aiortc's parser. ``arrival_ms`` is
aiortc's arrival clock (``aiortc.clock.current_ms()``, milliseconds). Taps run
synchronously on the event loop: keep them short. An exception in a tap is
logged and does not reach aiortc.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCRtpReceiver

__all__ = ["PacketTap", "RtpPacketView", "attach_packet_tap"]

logger = logging.getLogger(__name__)

_HOOK = "_handle_rtp_packet"


class RtpPacketView(Protocol):
    """The fields of aiortc's ``RtpPacket`` that a tap may read."""

    @property
    def marker(self) -> int: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def sequence_number(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def ssrc(self) -> int: ...
    @property
    def csrc(self) -> list[int]: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def padding_size(self) -> int: ...


PacketTap = Callable[[RtpPacketView, int], None]

_taps: weakref.WeakKeyDictionary[RTCRtpReceiver, list[PacketTap]] = weakref.WeakKeyDictionary()


def attach_packet_tap(receiver: RTCRtpReceiver, callback: PacketTap) -> Callable[[], None]:
    """Call ``callback(packet, arrival_ms)`` for every RTP packet ``receiver`` gets.

    Several taps may share a receiver; they run in attachment order. Returns a
    function that detaches this tap (the original method is restored when the
    last tap goes).
    """
    taps = _taps.get(receiver)
    if taps is None:
        original = getattr(receiver, _HOOK, None)
        if original is None or not callable(original):
            raise RuntimeError(
                f"RTCRtpReceiver.{_HOOK} not found: this aiortc is not the 1.16 line "
                "interlive.client.raw was written for"
            )
        taps = []
        _taps[receiver] = taps
        setattr(receiver, _HOOK, _make_wrapper(taps, original))
    taps.append(callback)

    def detach() -> None:
        current = _taps.get(receiver)
        if current is None or callback not in current:
            return
        current.remove(callback)
        if not current:
            del _taps[receiver]
            delattr(receiver, _HOOK)  # uncovers the class's method again

    return detach


def _make_wrapper(taps: list[PacketTap], original: Callable[..., Any]) -> Callable[..., Any]:
    async def tapped(packet: Any, arrival_time_ms: int) -> None:
        for tap in tuple(taps):
            try:
                tap(packet, arrival_time_ms)
            except Exception:
                logger.exception("RTP packet tap %r failed", tap)
        await original(packet, arrival_time_ms=arrival_time_ms)

    return tapped
