"""H.264 RTP payloads, RFC 6184 §5.2-5.8, and profile-level-id negotiation, §8.1-8.2.

Packets (packetization-mode 0 and 1).  The first octet is a NAL unit header
``|F|NRI| Type |``; its type selects the structure (§5.2):

* 1-23 single NAL unit packet (§5.6): the packet is one NAL unit;
* 24 STAP-A (§5.7.1): after the header, repeated ``NALU size (16 bits) | NAL unit``;
* 28 FU-A (§5.8): FU indicator, FU header ``|S|E|R| Type |`` (Type is the
  fragmented NAL unit's), then a fragment of the NAL unit without its header;
* 25 STAP-B, 26 MTAP16, 27 MTAP24 and 29 FU-B exist only in interleaved mode
  (packetization-mode 2), which WebRTC does not negotiate: they raise
  :class:`~interlive.codecs.descriptor.UnsupportedPayloadError`, as do the
  reserved types 0, 30 and 31.

Keyframe: the packet carries an IDR slice (type 5) or an SPS (7) in a single NAL
unit packet or a STAP-A, or is the first fragment (S=1) of one in an FU-A.

Start of frame (of the access unit, H.264 §7.4.1.2.3): the first NAL unit the
packet begins is an AUD, SEI, SPS, PPS, prefix NAL or subset SPS (6-9, 14, 15),
which may only open an access unit, or a slice (1, 2, 5) whose
``first_mb_in_slice`` is 0.  That field is the first ue(v) of the slice header,
so it is 0 exactly when the first bit after the NAL header is 1.  A frame cut
into several slices (OpenH264 size-limited slices) therefore has one start
packet, not one per slice.  FU-A middle/end fragments are never a start.

Profile-level-id (§8.1; H.264 Annex A and §7.4.2.1.1): three octets
profile_idc, profile-iop (constraint_set0..5 flags, two reserved bits) and
level_idc.  The profile is read from profile_idc and the constraint flags: e.g.
Baseline with constraint_set1 (conforms to Main) is Constrained Baseline, High
with constraint_set4 and 5 is Constrained High.  Level 1b is level_idc 11 with
constraint_set3 for Baseline/Main/Extended, level_idc 9 for the High family.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from interlive.codecs.descriptor import (
    FrameInfo,
    MalformedPayloadError,
    TruncatedPayloadError,
    UnsupportedPayloadError,
)

__all__ = [
    "DEFAULT_PROFILE_LEVEL_ID",
    "H264Level",
    "H264Packet",
    "H264PacketKind",
    "H264Profile",
    "H264ProfileLevelId",
    "ProfileLevelIdError",
    "h264_answer_level",
    "h264_answer_profile_level_id",
    "h264_decodable",
    "h264_fmtp_match",
    "parse_h264",
]

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
STAP_A = 24
STAP_B = 25
MTAP16 = 26
MTAP24 = 27
FU_A = 28
FU_B = 29

_TYPE = 0x1F
# NAL unit types that can only open an access unit (H.264 §7.4.1.2.3).
_AU_OPENERS = frozenset((6, 7, 8, 9, 14, 15))
# Slices whose header (first_mb_in_slice first) follows the NAL header.
_SLICES = frozenset((1, 2, 5))
_NAMES = {STAP_B: "STAP-B", MTAP16: "MTAP16", MTAP24: "MTAP24", FU_B: "FU-B"}


def _opens_picture(nal_type: int, payload: bytes, pos: int, end: int) -> bool:
    """Whether a NAL unit of ``nal_type`` whose body starts at ``pos`` opens an access unit."""
    if nal_type in _SLICES:
        return pos < end and payload[pos] >= 0x80
    return nal_type in _AU_OPENERS


class H264PacketKind(Enum):
    """The RTP packet structure (RFC 6184 §5.2) used by one payload."""

    SINGLE = "single"
    STAP_A = "stap-a"
    FU_A = "fu-a"


_KIND_BY_TYPE = {STAP_A: H264PacketKind.STAP_A, FU_A: H264PacketKind.FU_A}


def _scan(payload: bytes) -> tuple[int, tuple[int, ...], int, bool]:
    """Walk one payload: (packet type, NAL unit types, FU header or 0, starts picture).

    The NAL unit types are the packet's own for a single NAL unit packet, the
    aggregated ones for a STAP-A, and the fragmented one for an FU-A.
    """
    n = len(payload)
    if n == 0:
        raise TruncatedPayloadError("empty H.264 payload")
    t = payload[0] & _TYPE
    if 0 < t < STAP_A:
        return t, (t,), 0, _opens_picture(t, payload, 1, n)
    if t == FU_A:
        if n < 3:
            raise TruncatedPayloadError("FU-A without FU header or fragment")
        fu = payload[1]
        inner = fu & _TYPE
        if not 0 < inner < STAP_A:
            raise MalformedPayloadError(f"FU-A fragments NAL unit type {inner}")
        start = bool(fu & 0x80) and _opens_picture(inner, payload, 2, n)
        return t, (inner,), fu, start
    if t == STAP_A:
        types: list[int] = []
        pos = 1
        start = False
        while pos < n:
            if pos + 2 > n:
                raise TruncatedPayloadError("STAP-A: truncated NALU size")
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0:
                raise MalformedPayloadError("STAP-A: NALU size 0")
            end = pos + size
            if end > n:
                raise TruncatedPayloadError(f"STAP-A: NALU size {size} exceeds packet")
            inner = payload[pos] & _TYPE
            if not 0 < inner < STAP_A:
                raise MalformedPayloadError(f"STAP-A aggregates NAL unit type {inner}")
            if not types:
                start = _opens_picture(inner, payload, pos + 1, end)
            types.append(inner)
            pos = end
        if not types:
            raise TruncatedPayloadError("STAP-A without NAL units")
        return t, tuple(types), 0, start
    if t in _NAMES:
        raise UnsupportedPayloadError(f"{_NAMES[t]} (packetization-mode 2) is not supported")
    raise UnsupportedPayloadError(f"reserved NAL unit type {t}")


def _is_key(t: int, types: tuple[int, ...], fu: int) -> bool:
    if t == FU_A:
        return bool(fu & 0x80) and types[0] in (NAL_IDR, NAL_SPS)
    return NAL_IDR in types or NAL_SPS in types


# H.264 packets vary only in (is_keyframe, start_of_frame): share four frozen
# FrameInfo objects instead of building one per packet.  Indexed [key][start].
_INFOS = tuple(
    tuple(
        FrameInfo(bool(key), bool(start), None, None, None, None, False, None) for start in (0, 1)
    )
    for key in (0, 1)
)


def parse_h264(payload: bytes) -> FrameInfo:
    """Summarise one H.264 RTP payload for the forwarder.

    H.264 has no layer fields or picture ids here; ``end_of_frame`` is None (use
    the RTP marker bit).  The returned FrameInfo objects are shared (they are
    immutable).
    """
    n = len(payload)
    if n:  # fast path: the common single NAL unit packet
        t = payload[0] & _TYPE
        if 0 < t < STAP_A:
            return _INFOS[t in (NAL_IDR, NAL_SPS)][_opens_picture(t, payload, 1, n)]
    t, types, fu, start = _scan(payload)
    return _INFOS[_is_key(t, types, fu)][start]


@dataclass(frozen=True, slots=True)
class H264Packet:
    """The structure of one H.264 RTP payload (RFC 6184 §5.6-5.8).

    ``nal_types`` are the packet's NAL unit type (single), the aggregated types
    in order (STAP-A) or the fragmented NAL unit's type (FU-A).  ``fu_start`` and
    ``fu_end`` are the FU header S and E bits (False otherwise).
    """

    kind: H264PacketKind
    nal_types: tuple[int, ...]
    fu_start: bool
    fu_end: bool
    is_keyframe: bool
    start_of_frame: bool

    @classmethod
    def parse(cls, payload: bytes) -> H264Packet:
        """Parse a payload; raises a PayloadError subclass like :func:`parse_h264`."""
        t, types, fu, start = _scan(payload)
        return cls(
            kind=_KIND_BY_TYPE.get(t, H264PacketKind.SINGLE),
            nal_types=types,
            fu_start=bool(fu & 0x80),
            fu_end=bool(fu & 0x40),
            is_keyframe=_is_key(t, types, fu),
            start_of_frame=start,
        )


# -- profile-level-id (RFC 6184 §8.1) -------------------------------------------------

DEFAULT_PROFILE_LEVEL_ID = "42000a"
"""Inferred when an fmtp line has no profile-level-id (RFC 6184 §8.1): Baseline, level 1."""


class ProfileLevelIdError(ValueError):
    """A profile-level-id that is not 6 hex digits or names no supported profile/level."""


class H264Profile(Enum):
    """The H.264 profiles WebRTC endpoints negotiate."""

    CONSTRAINED_BASELINE = "constrained-baseline"
    BASELINE = "baseline"
    MAIN = "main"
    CONSTRAINED_HIGH = "constrained-high"
    HIGH = "high"
    PREDICTIVE_HIGH_444 = "predictive-high-444"


# (profile_idc, mask, value, profile): profile-iop & mask == value.  Bits, most
# significant first: constraint_set0..5, two reserved bits (which must be 0).
# constraint_set3 (0x10) is left out of the Baseline/Main masks: with level_idc 11
# it marks level 1b.  The first match wins.
_PROFILE_TABLE: tuple[tuple[int, int, int, H264Profile], ...] = (
    (0x42, 0x4F, 0x40, H264Profile.CONSTRAINED_BASELINE),  # set1: also Main
    (0x4D, 0x8F, 0x80, H264Profile.CONSTRAINED_BASELINE),  # set0: also Baseline
    (0x58, 0xCF, 0xC0, H264Profile.CONSTRAINED_BASELINE),  # Extended with set0+set1
    (0x42, 0x4F, 0x00, H264Profile.BASELINE),
    (0x58, 0xCF, 0x80, H264Profile.BASELINE),  # Extended with set0: also Baseline
    (0x4D, 0xAF, 0x00, H264Profile.MAIN),
    (0x64, 0xFF, 0x00, H264Profile.HIGH),
    (0x64, 0xFF, 0x0C, H264Profile.CONSTRAINED_HIGH),  # set4+set5
    (0xF4, 0xFF, 0x00, H264Profile.PREDICTIVE_HIGH_444),
)
_CANONICAL: dict[H264Profile, tuple[int, int]] = {
    H264Profile.CONSTRAINED_BASELINE: (0x42, 0xE0),
    H264Profile.BASELINE: (0x42, 0x00),
    H264Profile.MAIN: (0x4D, 0x00),
    H264Profile.CONSTRAINED_HIGH: (0x64, 0x0C),
    H264Profile.HIGH: (0x64, 0x00),
    H264Profile.PREDICTIVE_HIGH_444: (0xF4, 0x00),
}
_HIGH_FAMILY = frozenset(
    (H264Profile.CONSTRAINED_HIGH, H264Profile.HIGH, H264Profile.PREDICTIVE_HIGH_444)
)
_CONSTRAINT_SET3 = 0x10


@functools.total_ordering
class H264Level(Enum):
    """H.264 levels (Annex A, Table A-1), ordered by capability (1 < 1b < 1.1)."""

    L1 = "1"
    L1B = "1b"
    L1_1 = "1.1"
    L1_2 = "1.2"
    L1_3 = "1.3"
    L2 = "2"
    L2_1 = "2.1"
    L2_2 = "2.2"
    L3 = "3"
    L3_1 = "3.1"
    L3_2 = "3.2"
    L4 = "4"
    L4_1 = "4.1"
    L4_2 = "4.2"
    L5 = "5"
    L5_1 = "5.1"
    L5_2 = "5.2"
    L6 = "6"
    L6_1 = "6.1"
    L6_2 = "6.2"

    @property
    def level_idc(self) -> int:
        """level_idc for this level; for 1b, the Baseline/Main value 11 (see §7.4.2.1.1)."""
        return 11 if self is H264Level.L1B else round(float(self.value) * 10)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, H264Level):
            return NotImplemented
        return _LEVEL_RANK[self] < _LEVEL_RANK[other]


_LEVEL_RANK = {level: rank for rank, level in enumerate(H264Level)}
_LEVEL_BY_IDC = {level.level_idc: level for level in H264Level if level is not H264Level.L1B}


def _is_hex6(text: str) -> bool:
    return len(text) == 6 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass(frozen=True, slots=True)
class H264ProfileLevelId:
    """A parsed profile-level-id: the profile class and the level."""

    profile: H264Profile
    level: H264Level

    @classmethod
    def parse(cls, hex6: str) -> H264ProfileLevelId:
        """Parse the 6-hex-digit fmtp value, e.g. ``"42e01f"`` (Constrained Baseline 3.1).

        Raises :class:`ProfileLevelIdError` for malformed text, a profile_idc and
        constraint flags matching none of :class:`H264Profile`, or an unknown level.
        """
        if not _is_hex6(hex6):
            raise ProfileLevelIdError(f"profile-level-id must be 6 hex digits: {hex6!r}")
        value = int(hex6, 16)
        profile_idc = value >> 16
        iop = (value >> 8) & 0xFF
        level_idc = value & 0xFF
        for idc, mask, bits, candidate in _PROFILE_TABLE:
            if idc == profile_idc and iop & mask == bits:
                profile = candidate
                break
        else:
            raise ProfileLevelIdError(f"unsupported H.264 profile in {hex6!r}")
        if profile in _HIGH_FAMILY:
            level = H264Level.L1B if level_idc == 9 else _LEVEL_BY_IDC.get(level_idc)
        elif level_idc == 11 and iop & _CONSTRAINT_SET3:
            level = H264Level.L1B
        else:
            level = _LEVEL_BY_IDC.get(level_idc)
        if level is None:
            raise ProfileLevelIdError(f"unsupported H.264 level_idc {level_idc} in {hex6!r}")
        return cls(profile, level)

    @classmethod
    def from_fmtp(cls, fmtp: Mapping[str, str]) -> H264ProfileLevelId:
        """Parse the profile-level-id of an fmtp map, inferring 42000a when absent."""
        return cls.parse(_fmtp_get(fmtp, "profile-level-id", DEFAULT_PROFILE_LEVEL_ID))

    def __str__(self) -> str:
        """The canonical lower-case hex6 (Constrained Baseline as 42e0xx)."""
        profile_idc, iop = _CANONICAL[self.profile]
        level_idc = self.level.level_idc
        if self.level is H264Level.L1B:
            if self.profile in _HIGH_FAMILY:
                level_idc = 9
            else:
                iop |= _CONSTRAINT_SET3
        return f"{profile_idc:02x}{iop:02x}{level_idc:02x}"


def _fmtp_get(fmtp: Mapping[str, str], name: str, default: str) -> str:
    """Case-insensitive fmtp lookup (SDP parameter names are case-insensitive)."""
    value = fmtp.get(name)
    if value is None:
        for key, candidate in fmtp.items():
            if key.lower() == name:
                value = candidate
                break
        else:
            return default
    return value.strip()


def _packetization_mode(fmtp: Mapping[str, str]) -> str:
    return _fmtp_get(fmtp, "packetization-mode", "0")


def h264_fmtp_match(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether two H.264 fmtp parameter sets describe the same codec configuration.

    They match when packetization-mode (default 0) and the profile of
    profile-level-id (default 42000a) are equal; levels may differ (the answer
    then picks one, see :func:`h264_answer_level`).  An unparseable
    profile-level-id matches nothing.
    """
    if _packetization_mode(a) != _packetization_mode(b):
        return False
    try:
        return H264ProfileLevelId.from_fmtp(a).profile is H264ProfileLevelId.from_fmtp(b).profile
    except ProfileLevelIdError:
        return False


# Which bitstream profiles a decoder of each profile must decode: the decoder
# conformance clauses of H.264 Annex A (A.3): a Main decoder also takes Constrained
# Baseline; a High decoder Main, Constrained High and Constrained Baseline; a High
# 4:4:4 Predictive decoder everything below it (High 10 and 4:2:2 have no entry here).
_DECODES: dict[H264Profile, frozenset[H264Profile]] = {
    H264Profile.CONSTRAINED_BASELINE: frozenset({H264Profile.CONSTRAINED_BASELINE}),
    H264Profile.BASELINE: frozenset({H264Profile.CONSTRAINED_BASELINE, H264Profile.BASELINE}),
    H264Profile.MAIN: frozenset({H264Profile.CONSTRAINED_BASELINE, H264Profile.MAIN}),
    H264Profile.CONSTRAINED_HIGH: frozenset(
        {H264Profile.CONSTRAINED_BASELINE, H264Profile.CONSTRAINED_HIGH}
    ),
    H264Profile.HIGH: frozenset(
        {
            H264Profile.CONSTRAINED_BASELINE,
            H264Profile.MAIN,
            H264Profile.CONSTRAINED_HIGH,
            H264Profile.HIGH,
        }
    ),
    H264Profile.PREDICTIVE_HIGH_444: frozenset(H264Profile),
}


def h264_decodable(stream: Mapping[str, str], receiver: Mapping[str, str]) -> bool:
    """Whether a receiver that negotiated ``receiver`` decodes a stream described by ``stream``.

    For forwarding without transcoding: packetization-mode must be equal and the
    receiver's profile must cover the stream's (see ``_DECODES``): a High stream
    may go to a viewer that offered High or High 4:4:4 Predictive, a Constrained
    Baseline one to any viewer.  Levels are not compared (as in
    :func:`h264_fmtp_match`); an unparseable profile-level-id decodes nothing.
    """
    if _packetization_mode(stream) != _packetization_mode(receiver):
        return False
    try:
        sent = H264ProfileLevelId.from_fmtp(stream).profile
        taken = H264ProfileLevelId.from_fmtp(receiver).profile
    except ProfileLevelIdError:
        return False
    return sent in _DECODES[taken]


def _level_asymmetry_allowed(fmtp: Mapping[str, str]) -> bool:
    return _fmtp_get(fmtp, "level-asymmetry-allowed", "0") == "1"


def h264_answer_level(offer: Mapping[str, str], local: Mapping[str, str]) -> H264Level:
    """The level to answer with (RFC 6184 §8.2.2).

    When both sides signal level-asymmetry-allowed=1 each side's level states
    what it can receive, so the answer carries the local level; otherwise the
    level is the lower of the offered and local ones.  Raises
    :class:`ProfileLevelIdError` if either profile-level-id is invalid.
    """
    offered = H264ProfileLevelId.from_fmtp(offer).level
    own = H264ProfileLevelId.from_fmtp(local).level
    if _level_asymmetry_allowed(offer) and _level_asymmetry_allowed(local):
        return own
    return min(offered, own)


def h264_answer_profile_level_id(offer: Mapping[str, str], local: Mapping[str, str]) -> str:
    """The profile-level-id for the answer: the common profile at :func:`h264_answer_level`.

    Raises :class:`ProfileLevelIdError` when the profiles differ or do not parse.
    """
    offered = H264ProfileLevelId.from_fmtp(offer)
    own = H264ProfileLevelId.from_fmtp(local)
    if offered.profile is not own.profile:
        raise ProfileLevelIdError(
            f"profiles differ: offered {offered.profile.value}, local {own.profile.value}"
        )
    return str(H264ProfileLevelId(own.profile, h264_answer_level(offer, local)))
