"""VP8 RTP payload descriptor, RFC 7741 §4.2, and payload header key bit, §4.3.

Layout of the descriptor (RFC 7741 §4.2), most significant bit first::

         0 1 2 3 4 5 6 7
        +-+-+-+-+-+-+-+-+
        |X|R|N|S|R| PID | (REQUIRED)
        +-+-+-+-+-+-+-+-+
   X:   |I|L|T|K| RSV   | (OPTIONAL)
        +-+-+-+-+-+-+-+-+
   I:   |M| PictureID   | (OPTIONAL; M=1 adds a second octet: 15-bit PictureID)
        +-+-+-+-+-+-+-+-+
   L:   |   TL0PICIDX   | (OPTIONAL)
        +-+-+-+-+-+-+-+-+
   T/K: |TID|Y| KEYIDX  | (OPTIONAL; present if T or K is set)
        +-+-+-+-+-+-+-+-+

TID and Y are meaningful only when T=1, KEYIDX only when K=1.  The VP8 payload
follows; when S=1 and PID=0 it begins with the payload header (§4.3) whose first
octet is ``|Size0|H| VER |P|``: P, the least significant bit, is the inverse key
frame flag (0 = key frame), i.e. bit 0 of the VP8 frame tag (RFC 6386 §9.1).

Theory of operation: the hot path is :func:`parse_vp8`, one bounds-checked walk
over at most six octets that builds only the :class:`FrameInfo`.
:class:`Vp8Descriptor` is the full wire object (``parse``/``__bytes__``) for tests,
tools and diagnostics.  :func:`rewrite_vp8_descriptor` patches PictureID and
TL0PICIDX in a copy of the packet, for simulcast switching, keeping the
original field widths so the payload never moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlive.codecs.descriptor import FrameInfo, TruncatedPayloadError

__all__ = ["Vp8Descriptor", "parse_vp8", "rewrite_vp8_descriptor"]

_X = 0x80
_N = 0x20
_S = 0x10
_PID = 0x07
_I = 0x80
_L = 0x40
_T = 0x20
_K = 0x10
_M = 0x80


def _scan(payload: bytes) -> tuple[int, int, int, int, int, int, int]:
    """Walk the descriptor: (first, ext, picture_id, pid_bits, tl0, tk, size).

    ``ext`` is 0 when X=0; ``picture_id``/``tl0``/``tk`` are -1 when absent and
    ``pid_bits`` is 0, 7 or 15.  Raises unless at least one payload octet follows.
    """
    n = len(payload)
    if n == 0:
        raise TruncatedPayloadError("empty VP8 payload")
    first = payload[0]
    ext = 0
    picture_id = -1
    bits = 0
    tl0 = -1
    tk = -1
    pos = 1
    if first & _X:
        if n < 2:
            raise TruncatedPayloadError("VP8 descriptor: X=1 but no extension octet")
        ext = payload[1]
        pos = 2
        if ext & _I:
            if pos >= n:
                raise TruncatedPayloadError("VP8 descriptor: I=1 but no PictureID")
            b = payload[pos]
            if b & _M:
                if pos + 1 >= n:
                    raise TruncatedPayloadError("VP8 descriptor: 15-bit PictureID truncated")
                picture_id = ((b & 0x7F) << 8) | payload[pos + 1]
                bits = 15
                pos += 2
            else:
                picture_id = b
                bits = 7
                pos += 1
        if ext & _L:
            if pos >= n:
                raise TruncatedPayloadError("VP8 descriptor: L=1 but no TL0PICIDX")
            tl0 = payload[pos]
            pos += 1
        if ext & (_T | _K):
            if pos >= n:
                raise TruncatedPayloadError("VP8 descriptor: T/K set but no TID/Y/KEYIDX octet")
            tk = payload[pos]
            pos += 1
    if pos >= n:
        raise TruncatedPayloadError("VP8 descriptor not followed by any payload")
    return first, ext, picture_id, bits, tl0, tk, pos


def parse_vp8(payload: bytes) -> FrameInfo:
    """Summarise one VP8 RTP payload for the forwarder.

    ``start_of_frame`` is S=1 with PID=0; ``is_keyframe`` additionally needs P=0 in
    the payload header.  ``end_of_frame`` is None: VP8 signals it with the RTP
    marker bit.
    """
    first, ext, picture_id, _bits, tl0, tk, pos = _scan(payload)
    start = (first & (_S | _PID)) == _S
    has_tid = tk >= 0 and bool(ext & _T)
    return FrameInfo(
        start and not payload[pos] & 0x01,
        start,
        tk >> 6 if has_tid else None,
        None,
        tl0 if tl0 >= 0 else None,
        picture_id if picture_id >= 0 else None,
        has_tid and bool(tk & 0x20),
        None,
    )


@dataclass(frozen=True, slots=True)
class Vp8Descriptor:
    """The VP8 payload descriptor (RFC 7741 §4.2) of one RTP packet.

    ``picture_id_bits`` is 7 or 15 as sent (0 when I=0).  ``temporal_id`` and
    ``layer_sync`` reflect TID/Y only when T=1 (else None/False); ``key_idx`` is
    None unless K=1.  ``extended`` is the X bit, which a sender may set with all of
    I/L/T/K clear.  ``header_size`` is the descriptor length in octets;
    ``is_keyframe`` is S=1, PID=0 and P=0 in the payload header that follows.
    """

    extended: bool
    non_reference: bool
    start_of_partition: bool
    partition_index: int
    picture_id: int | None
    picture_id_bits: int
    tl0_pic_idx: int | None
    temporal_id: int | None
    layer_sync: bool
    key_idx: int | None
    header_size: int
    is_keyframe: bool

    @classmethod
    def parse(cls, payload: bytes) -> Vp8Descriptor:
        """Parse the descriptor at the start of an RTP payload.

        Raises :class:`~interlive.codecs.descriptor.TruncatedPayloadError` when a
        flagged field is missing or no VP8 payload follows the descriptor.
        """
        first, ext, picture_id, bits, tl0, tk, pos = _scan(payload)
        start = (first & (_S | _PID)) == _S
        has_t = tk >= 0 and bool(ext & _T)
        has_k = tk >= 0 and bool(ext & _K)
        return cls(
            extended=bool(first & _X),
            non_reference=bool(first & _N),
            start_of_partition=bool(first & _S),
            partition_index=first & _PID,
            picture_id=picture_id if picture_id >= 0 else None,
            picture_id_bits=bits,
            tl0_pic_idx=tl0 if tl0 >= 0 else None,
            temporal_id=tk >> 6 if has_t else None,
            layer_sync=has_t and bool(tk & 0x20),
            key_idx=tk & 0x1F if has_k else None,
            header_size=pos,
            is_keyframe=start and not payload[pos] & 0x01,
        )

    def __bytes__(self) -> bytes:
        """Serialise the descriptor alone (reserved bits and ignored fields as 0).

        Raises ValueError when a field does not fit its width.
        """
        if not 0 <= self.partition_index <= 7:
            raise ValueError(f"PID out of range: {self.partition_index}")
        ext = 0
        tail = bytearray()
        if self.picture_id is not None:
            ext |= _I
            if self.picture_id_bits == 15 and 0 <= self.picture_id < 0x8000:
                tail += bytes((_M | self.picture_id >> 8, self.picture_id & 0xFF))
            elif self.picture_id_bits == 7 and 0 <= self.picture_id < 0x80:
                tail.append(self.picture_id)
            else:
                raise ValueError(
                    f"PictureID {self.picture_id} does not fit {self.picture_id_bits} bits"
                )
        if self.tl0_pic_idx is not None:
            if not 0 <= self.tl0_pic_idx <= 0xFF:
                raise ValueError(f"TL0PICIDX out of range: {self.tl0_pic_idx}")
            ext |= _L
            tail.append(self.tl0_pic_idx)
        if self.temporal_id is not None or self.key_idx is not None:
            tk = 0
            if self.temporal_id is not None:
                if not 0 <= self.temporal_id <= 3:
                    raise ValueError(f"TID out of range: {self.temporal_id}")
                ext |= _T
                tk |= self.temporal_id << 6 | (0x20 if self.layer_sync else 0)
            if self.key_idx is not None:
                if not 0 <= self.key_idx <= 0x1F:
                    raise ValueError(f"KEYIDX out of range: {self.key_idx}")
                ext |= _K
                tk |= self.key_idx
            tail.append(tk)
        first = (
            (_N if self.non_reference else 0)
            | (_S if self.start_of_partition else 0)
            | self.partition_index
        )
        if ext or self.extended:
            return bytes((first | _X, ext)) + bytes(tail)
        return bytes((first,))


def rewrite_vp8_descriptor(
    payload: bytes, *, picture_id: int | None = None, tl0_pic_idx: int | None = None
) -> bytes:
    """Return ``payload`` with PictureID and/or TL0PICIDX replaced.

    A field is rewritten only when the packet carries it and a new value is
    given; the value is masked to the field's width (7 or 15 bits for PictureID,
    8 for TL0PICIDX), so callers may pass unwrapped counters.  Fields absent from
    the packet are never added: the payload does not move.  Raises
    :class:`~interlive.codecs.descriptor.TruncatedPayloadError` like
    :func:`parse_vp8`.
    """
    _first, _ext, _pid, bits, tl0, _tk, _size = _scan(payload)
    if (picture_id is None or bits == 0) and (tl0_pic_idx is None or tl0 < 0):
        return bytes(payload)
    out = bytearray(payload)
    if picture_id is not None and bits == 15:
        out[2] = _M | (picture_id >> 8) & 0x7F
        out[3] = picture_id & 0xFF
    elif picture_id is not None and bits == 7:
        out[2] = picture_id & 0x7F
    if tl0_pic_idx is not None and tl0 >= 0:
        # TL0PICIDX follows the X octet (offset 2) and the 0, 1 or 2 PictureID octets.
        out[2 + (bits + 7) // 8] = tl0_pic_idx & 0xFF
    return bytes(out)
