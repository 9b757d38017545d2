"""RTP retransmission (RFC 4588): answering a subscriber's NACKs, unwrapping a publisher's RTX.

RFC 4588 §4 defines the retransmission packet sent in its own stream
("session multiplexing" is not used by WebRTC; SSRC multiplexing, §5.2, is):

* marker bit, timestamp, CSRC list and header extensions as in the original;
* payload type: the RTX payload type whose ``apt`` names the original's
  (RFC 4588 §8.6); SSRC: the RTX stream's; sequence number: the RTX stream's
  own, contiguous and independent of the original's;
* payload: the 2-byte original sequence number (OSN) followed by the original
  payload.  The original's padding is not part of its payload and is not
  copied; an RTX packet may carry its own.

Theory of operation
-------------------
:class:`RtxSender` sits on a down-track.  A subscriber's Generic NACK
(RFC 4585 §6.2.1) names sequence numbers of that down-track; each is looked
up in the down-track's :class:`~interlive.sfu.history.PacketHistory` (the
plaintext packets as forwarded) and wrapped in RTX format.  If the subscriber
did not negotiate RTX the stored packet goes out again unchanged on the media
SSRC, which RFC 4585 §3.1 permits (receivers then see a duplicate sequence
number, which their jitter buffer handles).  A subscriber that repeats its
NACK before our answer could have reached it would make us send the packet
twice, so each sequence number is resent at most once per round trip (at
least 10 ms; 100 ms while the RTT is unknown).  The round trip is the
smallest RTT sample of the last :data:`RTT_FLOOR_WINDOW` seconds, not the
latest: a sample adds queueing and the viewer's report scheduling to the
path, and a repeat NACK that arrives one path round trip after our resend
was sent after the resend should have reached the viewer, so the resend was
lost.  Suppressing it on an inflated sample costs the viewer a whole NACK
cycle (Chromium as a receive-only peer knows no RTT and repeats its NACKs
every 100 ms; with samples of 101-130 ms on a 100 ms path, one repeat in
nine was dropped).  Retransmissions go to the pacer or
transport as returned; they are not stored back into the history.

:class:`RtxReceiver` sits on an up-track: a publisher's RTX packet is turned
back into the original media packet (OSN as sequence number, the ``apt``
payload type, the media SSRC) so the rest of the pipeline treats it like any
late packet.  RTX packets whose payload is empty or only an OSN are bandwidth
probes (padding); :meth:`RtxReceiver.unwrap` returns None for them so the
caller drops them quietly.  Anything else it cannot unwrap raises
:class:`RtxError`, a :class:`~interlive.rtp.errors.RtpError`.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping, Sequence

from interlive.rtp.errors import RtpError
from interlive.rtp.packet import RtpPacket
from interlive.sfu.history import PacketHistory

__all__ = [
    "DEFAULT_RTT",
    "MIN_INTERVAL",
    "RTT_FLOOR_WINDOW",
    "RtxError",
    "RtxReceiver",
    "RtxSender",
]

#: Resend suppression interval while the subscriber's RTT is unknown (seconds).
DEFAULT_RTT = 0.1
#: Lower bound of the resend suppression interval (seconds).
MIN_INTERVAL = 0.01
#: How long the smallest RTT sample stands for the path's round trip (seconds).
RTT_FLOOR_WINDOW = 10.0

_HEAD = struct.Struct("!BBHII")
_OSN = struct.Struct("!H")


class RtxError(RtpError):
    """An RTX packet that cannot be turned back into its original (RFC 4588 §4)."""


class RtxSender:
    """Answers one subscriber's NACKs from a down-track's packet history (see module doc).

    ``rtx_payload_type`` is the subscriber's RTX payload type, or a mapping
    from each media payload type to its RTX payload type (one ``apt`` per
    codec, RFC 4588 §8.6), or None when RTX was not negotiated: then the
    original bytes are resent.  A packet whose payload type has no RTX
    mapping is also resent unchanged.  ``rtx_ssrc`` is required with RTX.
    ``first_sequence`` starts the RTX sequence numbers (random by default,
    RFC 3550 §5.1).
    """

    def __init__(
        self,
        *,
        history: PacketHistory,
        rtx_ssrc: int | None = None,
        rtx_payload_type: int | Mapping[int, int] | None = None,
        first_sequence: int | None = None,
    ) -> None:
        self.history = history
        self._rtx_pts: dict[int, int] | None
        self._rtx_pt_all: int | None = None
        if rtx_payload_type is None:
            self._rtx_pts = None
        elif isinstance(rtx_payload_type, int):
            self._rtx_pts = {}
            self._rtx_pt_all = _check_pt(rtx_payload_type)
        else:
            self._rtx_pts = {pt: _check_pt(rtx) for pt, rtx in rtx_payload_type.items()}
        if self._rtx_pts is not None:
            if rtx_ssrc is None:
                raise ValueError("rtx_ssrc is required when an RTX payload type is given")
            if not 0 <= rtx_ssrc <= 0xFFFFFFFF:
                raise ValueError(f"rtx_ssrc must be 0..2**32-1, got {rtx_ssrc}")
        self.rtx_ssrc = rtx_ssrc
        if first_sequence is None:
            first_sequence = random.randrange(0x10000)
        self._next_seq = first_sequence & 0xFFFF
        # 16-bit original seq -> time last resent, oldest first
        self._resent: dict[int, float] = {}
        # (smallest recent RTT sample, when it was last seen)
        self._rtt_floor: tuple[float, float] | None = None
        #: sequence numbers asked for
        self.requested = 0
        #: packets returned for sending
        self.sent = 0
        #: asked for but no longer (or never) in the history
        self.not_in_history = 0
        #: asked for again within an RTT of the last resend
        self.suppressed = 0

    @property
    def uses_rtx(self) -> bool:
        """Whether retransmissions go out in RTX format (RTX was negotiated)."""
        return self._rtx_pts is not None

    def on_nack(self, lost: Sequence[int], now: float, rtt: float | None) -> list[bytes]:
        """The packets to send for a NACK of the 16-bit sequence numbers ``lost``.

        ``rtt`` is the subscriber's latest round-trip time sample in seconds,
        None if unknown.
        """
        interval = self.resend_interval(rtt, now)
        resent = self._resent
        self._forget(now, max(interval, self.history.max_age))
        self.requested += len(lost)
        out: list[bytes] = []
        for seq in lost:
            seq &= 0xFFFF
            last = resent.get(seq)
            if last is not None and now - last < interval:
                self.suppressed += 1
                continue
            data = self.history.get(seq, now)
            if data is None:
                self.not_in_history += 1
                continue
            if last is not None:
                del resent[seq]  # re-insert to keep time order
            resent[seq] = now
            out.append(self._wrap(data))
        self.sent += len(out)
        return out

    def resend_interval(self, rtt: float | None, now: float) -> float:
        """How long after a resend a repeat request is taken as a duplicate (see module doc)."""
        if rtt is None:
            return DEFAULT_RTT
        floor = self._rtt_floor
        if floor is None or rtt <= floor[0] or now - floor[1] > RTT_FLOOR_WINDOW:
            self._rtt_floor = floor = (rtt, now)
        return max(floor[0], MIN_INTERVAL)

    def _forget(self, now: float, keep: float) -> None:
        resent = self._resent
        while resent:
            seq, when = next(iter(resent.items()))
            if now - when < keep and len(resent) <= 0x8000:
                break
            del resent[seq]

    def _wrap(self, data: bytes) -> bytes:
        pts = self._rtx_pts
        if pts is None:
            return data
        packet = RtpPacket.parse(data)
        rtx_pt = pts.get(packet.payload_type, self._rtx_pt_all)
        if rtx_pt is None:
            return data
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        assert self.rtx_ssrc is not None
        header = _HEAD.pack(
            data[0] & 0xDF,  # no padding: the original's is not copied
            (data[1] & 0x80) | rtx_pt,
            seq,
            packet.timestamp,
            self.rtx_ssrc,
        )
        return b"".join(
            (
                header,
                data[12 : packet.payload_offset],
                _OSN.pack(packet.sequence_number),
                data[packet.payload_offset : packet.payload_end],
            )
        )


class RtxReceiver:
    """Turns a publisher's RTX packets back into the original media packets (see module doc)."""

    def __init__(self) -> None:
        #: RTX packets turned back into media packets
        self.unwrapped = 0
        #: padding-only RTX packets (probes) reported as None
        self.padding = 0

    def unwrap(self, packet: RtpPacket, media_ssrc: int, apt: Mapping[int, int]) -> bytes | None:
        """The original packet carried by RTX ``packet``, or None for a padding-only probe.

        ``apt`` maps RTX payload types to the media payload types they repair
        (the ``a=fmtp:<rtx> apt=<media>`` lines); ``media_ssrc`` is the stream
        repaired.  Header extensions and CSRCs are kept as received; the RTX
        packet's own padding is dropped.  Raises :class:`RtxError`.
        """
        media_pt = apt.get(packet.payload_type)
        if media_pt is None:
            raise RtxError(
                f"RTX payload type {packet.payload_type} has no apt mapping (known: {sorted(apt)})"
            )
        if not 0 <= media_pt <= 127:
            raise RtxError(f"apt maps RTX payload type {packet.payload_type} to {media_pt}")
        if not 0 <= media_ssrc <= 0xFFFFFFFF:
            raise RtxError(f"media SSRC must be 0..2**32-1, got {media_ssrc}")
        data = packet.data
        start = packet.payload_offset
        size = packet.payload_end - start
        if size == 1:
            raise RtxError("RTX payload is 1 byte, the original sequence number needs 2")
        if size <= 2:  # no OSN, or an OSN and nothing else: a probe
            self.padding += 1
            return None
        original = RtpPacket(
            payload_type=media_pt,
            marker=packet.marker,
            sequence_number=(data[start] << 8) | data[start + 1],
            timestamp=packet.timestamp,
            ssrc=media_ssrc,
            csrcs=packet.csrcs,
            extension_profile=packet.extension_profile,
            extensions=packet.extensions,
            extension_raw=packet.extension_raw,
            payload=data[start + 2 : packet.payload_end],
        )
        try:
            out = bytes(original)
        except RtpError as exc:
            raise RtxError(f"cannot rebuild the original packet: {exc}") from exc
        self.unwrapped += 1
        return out


def _check_pt(pt: int) -> int:
    if not 0 <= pt <= 127:
        raise ValueError(f"RTX payload type must be 0..127, got {pt}")
    return pt
