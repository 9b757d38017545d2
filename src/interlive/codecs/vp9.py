"""VP9 RTP payload descriptor, RFC 9628 §4.2 (with the scalability structure of §4.2.1).

Layout, most significant bit first.  Flexible mode (F=1)::

         0 1 2 3 4 5 6 7
        +-+-+-+-+-+-+-+-+
        |I|P|L|F|B|E|V|Z| (REQUIRED)
        +-+-+-+-+-+-+-+-+
   I:   |M| PICTURE ID  | (M=1 adds a second octet: 15-bit PICTURE ID)
        +-+-+-+-+-+-+-+-+
   L:   | TID |U| SID |D|
        +-+-+-+-+-+-+-+-+                  -\\
   P,F: | P_DIFF      |N| (up to 3 times)  -/  N=1: another P_DIFF follows
        +-+-+-+-+-+-+-+-+
   V:   | SS            |

Non-flexible mode (F=0) replaces the P_DIFF list by one octet when L=1::

   L:   | TID |U| SID |D|
        |   TL0PICIDX   |

Scalability structure (V=1, §4.2.1)::

        | N_S |Y|G|-|-|-|
   Y:   WIDTH (16 bits), HEIGHT (16 bits), N_S + 1 times
   G:   |      N_G      |
        | TID |U| R |-|-|  then R P_DIFF octets (8 bits each), N_G times

Bits: I picture id present, P inter-picture predicted, L layer indices present,
F flexible mode, B start of a layer frame, E end of a layer frame, V SS present,
Z not a reference for upper spatial layers.  In the layer octet: U switching-up
point, D inter-layer dependency.

Theory of operation: :func:`parse_vp9` is the per-packet path; it walks the
descriptor with direct indexing and builds only a :class:`FrameInfo`.  It skips
the SS without building objects (keyframes only carry it).  :class:`Vp9Descriptor`
is the complete wire object.  A keyframe here is the start (B=1) of a layer frame
that is not inter-picture predicted (P=0) at the base spatial layer (SID=0, also
assumed when L=0): a receiver may start decoding there.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlive.codecs.descriptor import FrameInfo, MalformedPayloadError, TruncatedPayloadError

__all__ = [
    "Vp9Descriptor",
    "Vp9PictureGroupEntry",
    "Vp9ReferenceError",
    "Vp9ScalabilityStructure",
    "parse_vp9",
]

_I = 0x80
_P = 0x40
_L = 0x20
_F = 0x10
_B = 0x08
_E = 0x04
_V = 0x02
_Z = 0x01
_MAX_P_DIFF = 3


class Vp9ReferenceError(MalformedPayloadError):
    """A flexible-mode descriptor chains more than three P_DIFF octets."""


def _skip_ss(payload: bytes, pos: int, n: int) -> int:
    """Return the offset just past the scalability structure starting at ``pos``."""
    if pos >= n:
        raise TruncatedPayloadError("VP9 descriptor: V=1 but no SS")
    b = payload[pos]
    pos += 1
    if b & 0x10:  # Y: WIDTH and HEIGHT for each of N_S + 1 layers
        pos += 4 * ((b >> 5) + 1)
    if b & 0x08:  # G: picture group description
        if pos >= n:
            raise TruncatedPayloadError("VP9 SS: G=1 but no N_G")
        groups = payload[pos]
        pos += 1
        for _ in range(groups):
            if pos >= n:
                raise TruncatedPayloadError("VP9 SS: picture group truncated")
            pos += 1 + ((payload[pos] >> 2) & 0x03)
    if pos > n:
        raise TruncatedPayloadError("VP9 SS truncated")
    return pos


def _scan(payload: bytes) -> tuple[int, int, int, int, int, int]:
    """Walk the descriptor: (first, picture_id, pid_bits, layer, tl0, size).

    ``picture_id``, ``layer`` (the TID/U/SID/D octet) and ``tl0`` are -1 when
    absent; ``pid_bits`` is 0, 7 or 15.  P_DIFFs are checked but not returned.
    """
    n = len(payload)
    if n == 0:
        raise TruncatedPayloadError("empty VP9 payload")
    first = payload[0]
    picture_id = -1
    bits = 0
    layer = -1
    tl0 = -1
    pos = 1
    if first & _I:
        if pos >= n:
            raise TruncatedPayloadError("VP9 descriptor: I=1 but no PICTURE ID")
        b = payload[pos]
        if b & 0x80:
            if pos + 1 >= n:
                raise TruncatedPayloadError("VP9 descriptor: 15-bit PICTURE ID truncated")
            picture_id = ((b & 0x7F) << 8) | payload[pos + 1]
            bits = 15
            pos += 2
        else:
            picture_id = b
            bits = 7
            pos += 1
    if first & _L:
        if pos >= n:
            raise TruncatedPayloadError("VP9 descriptor: L=1 but no layer indices")
        layer = payload[pos]
        pos += 1
        if not first & _F:
            if pos >= n:
                raise TruncatedPayloadError("VP9 descriptor: non-flexible L=1 but no TL0PICIDX")
            tl0 = payload[pos]
            pos += 1
    if first & _F and first & _P:
        for count in range(1, _MAX_P_DIFF + 2):
            if count > _MAX_P_DIFF:
                raise Vp9ReferenceError("VP9 descriptor: more than 3 P_DIFF")
            if pos >= n:
                raise TruncatedPayloadError("VP9 descriptor: P_DIFF truncated")
            b = payload[pos]
            pos += 1
            if not b & 0x01:
                break
    if first & _V:
        pos = _skip_ss(payload, pos, n)
    if pos >= n:
        raise TruncatedPayloadError("VP9 descriptor not followed by any payload")
    return first, picture_id, bits, layer, tl0, pos


def parse_vp9(payload: bytes) -> FrameInfo:
    """Summarise one VP9 RTP payload for the forwarder.

    ``start_of_frame``/``end_of_frame`` are B/E (of the layer frame);
    ``layer_sync`` is U; ``tl0_pic_idx`` is only present in non-flexible mode.
    """
    first, picture_id, _bits, layer, tl0, _pos = _scan(payload)
    if layer >= 0:
        tid: int | None = layer >> 5
        sid: int | None = (layer >> 1) & 0x07
    else:
        tid = sid = None
    return FrameInfo(
        (first & (_P | _B)) == _B and not sid,
        bool(first & _B),
        tid,
        sid,
        tl0 if tl0 >= 0 else None,
        picture_id if picture_id >= 0 else None,
        layer >= 0 and bool(layer & 0x10),
        bool(first & _E),
    )


@dataclass(frozen=True, slots=True)
class Vp9PictureGroupEntry:
    """One picture of the picture group in an SS: its TID, U bit and P_DIFFs."""

    temporal_id: int
    switching_up: bool
    p_diffs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Vp9ScalabilityStructure:
    """The SS of RFC 9628 §4.2.1.

    ``resolutions`` holds (width, height) per spatial layer, lowest first, or is
    None when Y=0.  ``picture_group`` is None when G=0.
    """

    spatial_layers: int
    resolutions: tuple[tuple[int, int], ...] | None
    picture_group: tuple[Vp9PictureGroupEntry, ...] | None

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> tuple[Vp9ScalabilityStructure, int]:
        """Parse an SS at ``offset``; return it with the offset just past it."""
        end = _skip_ss(data, offset, len(data))
        b = data[offset]
        layers = (b >> 5) + 1
        pos = offset + 1
        resolutions: tuple[tuple[int, int], ...] | None = None
        if b & 0x10:
            resolutions = tuple(
                (
                    (data[p] << 8) | data[p + 1],
                    (data[p + 2] << 8) | data[p + 3],
                )
                for p in range(pos, pos + 4 * layers, 4)
            )
            pos += 4 * layers
        group: tuple[Vp9PictureGroupEntry, ...] | None = None
        if b & 0x08:
            entries = []
            count = data[pos]
            pos += 1
            for _ in range(count):
                g = data[pos]
                refs = (g >> 2) & 0x03
                entries.append(
                    Vp9PictureGroupEntry(
                        temporal_id=g >> 5,
                        switching_up=bool(g & 0x10),
                        p_diffs=tuple(data[pos + 1 : pos + 1 + refs]),
                    )
                )
                pos += 1 + refs
            group = tuple(entries)
        return cls(spatial_layers=layers, resolutions=resolutions, picture_group=group), end

    def __bytes__(self) -> bytes:
        """Serialise the SS (reserved bits as 0); ValueError if a field does not fit."""
        if not 1 <= self.spatial_layers <= 8:
            raise ValueError(f"spatial layer count out of range: {self.spatial_layers}")
        out = bytearray(((self.spatial_layers - 1) << 5,))
        if self.resolutions is not None:
            if len(self.resolutions) != self.spatial_layers:
                raise ValueError("one resolution per spatial layer is required")
            out[0] |= 0x10
            for width, height in self.resolutions:
                out += width.to_bytes(2, "big") + height.to_bytes(2, "big")
        if self.picture_group is not None:
            out[0] |= 0x08
            if len(self.picture_group) > 0xFF:
                raise ValueError("more than 255 pictures in the picture group")
            out.append(len(self.picture_group))
            for entry in self.picture_group:
                if not 0 <= entry.temporal_id <= 7 or len(entry.p_diffs) > 3:
                    raise ValueError(f"picture group entry does not fit: {entry}")
                out.append(
                    entry.temporal_id << 5
                    | (0x10 if entry.switching_up else 0)
                    | len(entry.p_diffs) << 2
                )
                out += bytes(entry.p_diffs)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Vp9Descriptor:
    """The VP9 payload descriptor (RFC 9628 §4.2) of one RTP packet.

    Flags are the octet-0 bits under their meaning.  ``picture_id_bits`` is 7 or
    15 as sent (0 when I=0).  The layer fields are None when L=0 (and
    ``switching_up``/``inter_layer_dependency`` False).  ``tl0_pic_idx`` exists
    only in non-flexible mode with L=1, ``p_diffs`` only in flexible mode with P=1.
    """

    inter_predicted: bool
    flexible: bool
    start_of_frame: bool
    end_of_frame: bool
    not_upper_reference: bool
    picture_id: int | None
    picture_id_bits: int
    temporal_id: int | None
    switching_up: bool
    spatial_id: int | None
    inter_layer_dependency: bool
    tl0_pic_idx: int | None
    p_diffs: tuple[int, ...]
    ss: Vp9ScalabilityStructure | None
    header_size: int

    @property
    def is_keyframe(self) -> bool:
        """P=0, B=1 and SID=0: a decoder may start at this packet."""
        return not self.inter_predicted and self.start_of_frame and not self.spatial_id

    @classmethod
    def parse(cls, payload: bytes) -> Vp9Descriptor:
        """Parse the descriptor at the start of an RTP payload.

        Raises a :class:`~interlive.codecs.descriptor.PayloadError` subclass when a
        flagged field is missing, the P_DIFF list is invalid, or no VP9 payload
        follows.
        """
        first, picture_id, bits, layer, tl0, size = _scan(payload)
        pos = 1 + (bits + 7) // 8 + (layer >= 0) + (tl0 >= 0)
        p_diffs: list[int] = []
        if first & _F and first & _P:
            while True:
                b = payload[pos]
                pos += 1
                p_diffs.append(b >> 1)
                if not b & 0x01:
                    break
        ss = Vp9ScalabilityStructure.parse(payload, pos)[0] if first & _V else None
        has_layer = layer >= 0
        return cls(
            inter_predicted=bool(first & _P),
            flexible=bool(first & _F),
            start_of_frame=bool(first & _B),
            end_of_frame=bool(first & _E),
            not_upper_reference=bool(first & _Z),
            picture_id=picture_id if picture_id >= 0 else None,
            picture_id_bits=bits,
            temporal_id=layer >> 5 if has_layer else None,
            switching_up=has_layer and bool(layer & 0x10),
            spatial_id=(layer >> 1) & 0x07 if has_layer else None,
            inter_layer_dependency=has_layer and bool(layer & 0x01),
            tl0_pic_idx=tl0 if tl0 >= 0 else None,
            p_diffs=tuple(p_diffs),
            ss=ss,
            header_size=size,
        )

    def __bytes__(self) -> bytes:
        """Serialise the descriptor alone; ValueError if a field does not fit."""
        first = (
            (_P if self.inter_predicted else 0)
            | (_F if self.flexible else 0)
            | (_B if self.start_of_frame else 0)
            | (_E if self.end_of_frame else 0)
            | (_Z if self.not_upper_reference else 0)
        )
        out = bytearray(1)
        if self.picture_id is not None:
            first |= _I
            if self.picture_id_bits == 15 and 0 <= self.picture_id < 0x8000:
                out += bytes((0x80 | self.picture_id >> 8, self.picture_id & 0xFF))
            elif self.picture_id_bits == 7 and 0 <= self.picture_id < 0x80:
                out.append(self.picture_id)
            else:
                raise ValueError(
                    f"PICTURE ID {self.picture_id} does not fit {self.picture_id_bits} bits"
                )
        if self.temporal_id is not None or self.spatial_id is not None:
            tid = self.temporal_id or 0
            sid = self.spatial_id or 0
            if not (0 <= tid <= 7 and 0 <= sid <= 7):
                raise ValueError(f"layer indices out of range: TID {tid}, SID {sid}")
            first |= _L
            out.append(
                tid << 5
                | (0x10 if self.switching_up else 0)
                | sid << 1
                | (0x01 if self.inter_layer_dependency else 0)
            )
            if not self.flexible:
                tl0 = self.tl0_pic_idx or 0
                if not 0 <= tl0 <= 0xFF:
                    raise ValueError(f"TL0PICIDX out of range: {tl0}")
                out.append(tl0)
        if self.flexible and self.inter_predicted:
            if not 1 <= len(self.p_diffs) <= _MAX_P_DIFF:
                raise ValueError("flexible mode with P=1 needs 1 to 3 P_DIFF")
            for i, diff in enumerate(self.p_diffs):
                if not 0 <= diff <= 0x7F:
                    raise ValueError(f"P_DIFF out of range: {diff}")
                out.append(diff << 1 | (1 if i + 1 < len(self.p_diffs) else 0))
        if self.ss is not None:
            first |= _V
            out += bytes(self.ss)
        out[0] = first
        return bytes(out)
