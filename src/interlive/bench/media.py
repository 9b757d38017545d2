"""Synthetic media for the benchmarks: VP8-like and Opus-like RTP, stamped with send times.

Nothing here encodes or decodes; the payloads only have to look right to an SFU
that forwards without decoding:

* video follows RFC 7741: every packet starts with a 4-octet VP8 payload
  descriptor (§4.2: X=1, I=1 with a 15-bit PictureID, S=1 and PID=0 on the first
  packet of a frame); the first packet of a frame continues with the VP8 payload
  header (§4.3, RFC 6386 §9.1), a 3-octet frame tag whose P bit is 0 on keyframes,
  plus the 7-octet keyframe start code and size on keyframes. The marker bit ends
  a frame (RFC 7741 §4.1).
* audio is one Opus TOC octet (RFC 6716 §3.1, config 15: CELT fullband 20 ms)
  followed by filler, 20 ms per packet at 48 kHz (RFC 7587).

Right after those codec octets every packet carries the sender's
``time.monotonic_ns()`` as a big-endian 64-bit integer. CLOCK_MONOTONIC is one
clock for every process on the machine, so a receiver in another process
subtracts it from its own reading to get the one-way delay.

Theory of operation: :class:`VideoSource` and :class:`AudioSource` are sans-IO.
The caller decides when a frame is due and passes the time in; the sources
return finished RTP packets (plain, not yet SRTP-protected).
:func:`stamp_offset` and :class:`StreamCounter` are the receive side, kept to a
few struct reads and integer operations per packet because a load generator
runs them hundreds of thousands of times a second.
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass

__all__ = [
    "AUDIO_CLOCK",
    "AUDIO_PT",
    "MAX_PAYLOAD",
    "STAMP",
    "VIDEO_CLOCK",
    "VIDEO_PT",
    "AudioSource",
    "StampedPacket",
    "StreamCounter",
    "StreamSnapshot",
    "VideoSource",
    "is_vp8_keyframe_start",
    "stamp_offset",
]

VIDEO_PT = 96
RTX_PT = 97
AUDIO_PT = 111
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
#: payload bytes per packet, so that header, extensions and the SRTP tag stay under 1200
MAX_PAYLOAD = 1100

#: one-byte header extension ids the offers announce (RFC 8285 §4.2)
EXT_AUDIO_LEVEL = 1
EXT_ABS_SEND_TIME = 2

STAMP = struct.Struct("!q")
_HEADER = struct.Struct("!BBHII")
_U16 = struct.Struct("!H")
_OPUS_TOC = 0x78  # config 15 (CELT FB 20 ms), mono, one frame
_FILLER = os.urandom(2 * MAX_PAYLOAD)

# VP8 payload descriptor bits, RFC 7741 §4.2
_X = 0x80
_S = 0x10
_I = 0x80
_M = 0x80


def _abs_send_time(now_ns: int) -> bytes:
    """abs-send-time: 6.18 fixed-point seconds, 24 bits (webrtc.org's header extension)."""
    value = ((now_ns << 18) // 1_000_000_000) & 0xFFFFFF
    return value.to_bytes(3, "big")


def _extension_block(ext_id: int, value: bytes) -> bytes:
    """An RFC 8285 one-byte-header block holding one element, padded to 32 bits."""
    element = bytes(((ext_id << 4) | (len(value) - 1),)) + value
    element += b"\x00" * (-len(element) % 4)
    return b"\xbe\xde" + _U16.pack(len(element) // 4) + element


def _rtp_header(pt: int, marker: bool, seq: int, ts: int, ssrc: int, extension: bytes) -> bytes:
    b0 = 0x90 if extension else 0x80
    return _HEADER.pack(b0, pt | (0x80 if marker else 0), seq, ts, ssrc) + extension


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """Frame sizes that average ``bitrate`` with a keyframe every ``keyframe_interval`` s."""

    bitrate: int = 600_000
    fps: int = 30
    keyframe_interval: float = 2.0
    #: a keyframe is this many times the size of a delta frame
    keyframe_ratio: float = 6.0

    def frame_sizes(self) -> tuple[int, int]:
        """(keyframe bytes, delta frame bytes)."""
        frames = max(1, round(self.fps * self.keyframe_interval))
        per_period = self.bitrate / 8 * self.keyframe_interval
        delta = per_period / (frames - 1 + self.keyframe_ratio)
        return round(delta * self.keyframe_ratio), round(delta)


class StampedPacket:
    """A plain RTP packet and where its send time sits, to restamp just before sending."""

    __slots__ = ("data", "stamp_at")

    def __init__(self, data: bytearray, stamp_at: int) -> None:
        self.data = data
        self.stamp_at = stamp_at

    def restamp(self, now_ns: int) -> bytes:
        STAMP.pack_into(self.data, self.stamp_at, now_ns)
        return bytes(self.data)


class VideoSource:
    """VP8-like frames, packetised per RFC 7741; keyframes on a period or on request."""

    def __init__(self, ssrc: int, settings: VideoSettings | None = None) -> None:
        self.ssrc = ssrc
        self.settings = settings or VideoSettings()
        self.keyframe_size, self.delta_size = self.settings.frame_sizes()
        self._seq = int.from_bytes(os.urandom(2), "big")
        self._ts = int.from_bytes(os.urandom(4), "big")
        self._picture_id = int.from_bytes(os.urandom(2), "big") & 0x7FFF
        self._frames = itertools.count()
        self._period = max(1, round(self.settings.fps * self.settings.keyframe_interval))
        self._keyframe_requested = True
        self.frames_sent = 0
        self.keyframes_sent = 0
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_timestamp = self._ts

    def request_keyframe(self) -> None:
        """The next frame will be a keyframe (PLI or FIR received)."""
        self._keyframe_requested = True

    def next_frame(self, now_ns: int) -> list[StampedPacket]:
        """The RTP packets of the next frame, each stamped with ``now_ns``."""
        index = next(self._frames)
        keyframe = self._keyframe_requested or index % self._period == 0
        self._keyframe_requested = False
        size = self.keyframe_size if keyframe else self.delta_size
        count = max(1, -(-size // MAX_PAYLOAD))
        chunk = -(-size // count)
        stamp = STAMP.pack(now_ns)
        extension = _extension_block(EXT_ABS_SEND_TIME, _abs_send_time(now_ns))
        pid = self._picture_id
        packets: list[StampedPacket] = []
        for i in range(count):
            first = i == 0
            descriptor = bytes((_X | (_S if first else 0), _I, _M | (pid >> 8), pid & 0xFF))
            if first and keyframe:
                # frame tag: P=0, version 0, show_frame=1; start code; 640x360
                codec = b"\x10\x00\x00\x9d\x01\x2a\x80\x02\x68\x01"
            elif first:
                codec = b"\x11\x00\x00"  # frame tag: P=1 (interframe), show_frame=1
            else:
                codec = b""
            head = descriptor + codec + stamp
            payload = head + _FILLER[: max(0, chunk - len(head))]
            header = _rtp_header(
                VIDEO_PT, i == count - 1, self._seq, self._ts, self.ssrc, extension
            )
            packets.append(
                StampedPacket(bytearray(header + payload), len(header) + len(head) - STAMP.size)
            )
            self._seq = (self._seq + 1) & 0xFFFF
            self.octets_sent += len(payload)
        self.last_timestamp = self._ts
        self._ts = (self._ts + VIDEO_CLOCK // self.settings.fps) & 0xFFFFFFFF
        self._picture_id = (pid + 1) & 0x7FFF
        self.frames_sent += 1
        self.keyframes_sent += keyframe
        self.packets_sent += count
        return packets


class AudioSource:
    """Opus-like 20 ms packets of ``size`` payload bytes with an audio-level extension."""

    PTIME = 0.02

    def __init__(self, ssrc: int, size: int = 100) -> None:
        self.ssrc = ssrc
        self.size = max(1 + STAMP.size, size)
        self._seq = int.from_bytes(os.urandom(2), "big")
        self._ts = int.from_bytes(os.urandom(4), "big")
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_timestamp = self._ts

    def next_packet(self, now_ns: int) -> StampedPacket:
        head = bytes((_OPUS_TOC,)) + STAMP.pack(now_ns)
        payload = head + _FILLER[: self.size - len(head)]
        extension = _extension_block(EXT_AUDIO_LEVEL, b"\x1e")  # V=0, level -30 dBov
        header = _rtp_header(AUDIO_PT, False, self._seq, self._ts, self.ssrc, extension)
        self.last_timestamp = self._ts
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + int(AUDIO_CLOCK * self.PTIME)) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return StampedPacket(bytearray(header + payload), len(header) + 1)


# --- receive side -------------------------------------------------------------------


def payload_offset(packet: bytes) -> int:
    """Where the payload of a plain RTP packet starts (after CSRCs and extensions)."""
    b0 = packet[0]
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        offset += 4 + 4 * _U16.unpack_from(packet, offset + 2)[0]
    return offset


def _vp8_descriptor_size(packet: bytes, offset: int) -> int:
    if not packet[offset] & _X:
        return 1
    ext = packet[offset + 1]
    size = 2
    if ext & 0x80:  # I: PictureID, 1 or 2 octets
        size += 2 if packet[offset + 2] & _M else 1
    if ext & 0x40:  # L: TL0PICIDX
        size += 1
    if ext & 0x30:  # T or K: TID/Y/KEYIDX
        size += 1
    return size


def is_vp8_keyframe_start(packet: bytes, offset: int) -> bool:
    """First packet of a VP8 keyframe: S=1, PID=0 and P=0 (RFC 7741 §4.3)."""
    if packet[offset] & 0x17 != _S:
        return False
    return not packet[offset + _vp8_descriptor_size(packet, offset)] & 0x01


def stamp_offset(packet: bytes, offset: int, video: bool) -> int:
    """Where the send time sits in a packet from these sources, given its payload offset."""
    if not video:
        return offset + 1  # after the Opus TOC octet
    pos = offset + _vp8_descriptor_size(packet, offset)
    if packet[offset] & 0x17 == _S:  # S=1, PID=0: the VP8 payload header follows
        pos += 3 if packet[pos] & 0x01 else 10
    return pos


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    highest: int  # extended highest sequence number seen
    received: int


class StreamCounter:
    """Received packets and extended highest sequence number of one SSRC (RFC 3550 A.1)."""

    __slots__ = ("duplicates_or_late", "first", "highest", "last", "received", "video")

    def __init__(self, seq: int, video: bool) -> None:
        self.video = video
        self.first = seq
        self.highest = seq
        self.last = seq
        self.received = 1
        self.duplicates_or_late = 0

    def on_packet(self, seq: int) -> None:
        self.received += 1
        delta = (seq - self.last) & 0xFFFF
        if 0 < delta < 0x8000:
            self.highest += delta
            self.last = seq
        else:
            self.duplicates_or_late += 1

    def snapshot(self) -> StreamSnapshot:
        return StreamSnapshot(self.highest, self.received)

    def before_first(self) -> StreamSnapshot:
        """The state just before this stream's first packet (for streams that start late)."""
        return StreamSnapshot(self.first - 1, 0)


def expected_and_received(start: StreamSnapshot, end: StreamSnapshot) -> tuple[int, int]:
    """Packets expected and received between two snapshots of one stream."""
    return max(0, end.highest - start.highest), max(0, end.received - start.received)
