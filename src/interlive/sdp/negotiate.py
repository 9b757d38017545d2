"""Server capabilities and the answerer's choice for one offered media section.

JSEP (RFC 8829/9429 §5.3.1) answers an offer section by keeping the codecs both
sides support, in the offerer's preference order and with the offerer's payload
type numbers, and the header extensions (RFC 8285 §6) both support, with the
offerer's ids.  :func:`negotiate_media` does exactly that and returns a plain
value, :class:`NegotiatedMedia`; :func:`interlive.sdp.answer.build_answer`
writes it out.  Nothing here touches I/O.

Theory of operation, per offered section:

1. Sections that are rejected (port 0), not audio/video or not
   ``UDP/TLS/RTP/SAVPF`` give ``None``.
2. Each offered codec that is not rtx, passes the caller's ``allowed`` filter
   and fits a :class:`CodecCapability` (same media type and clock rate, same
   channel count for audio, and ``fmtp_match``) is kept.  RED is kept only if
   every payload type its fmtp names was kept too.  If no codec other than
   RED/FEC is left, the section is rejected.
3. The answer's fmtp is the capability's, with the parameters named in
   ``CodecCapability.echo_fmtp`` taken from the offer (H.264 profile-level-id,
   VP9 profile-id; ``"*"`` echoes the offer's whole fmtp).  rtcp-fb is the
   intersection, in the offer's order.  A capability with ``rtx=True`` gets the
   offer's rtx payload type whose apt points at the kept codec.
4. The answer direction is the offer's reversed, limited by ``want``.

Adding RED, ULPFEC or FlexFEC later is a :class:`Capabilities` change only:
list a :class:`CodecCapability` for them (``echo_fmtp=("*",)`` for RED and
FlexFEC, ``rtx=True`` for video RED).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from interlive.rtp import extensions as ext
from interlive.rtp.types import PayloadType, Ssrc
from interlive.sdp.codec_match import FmtpMatch, default_fmtp_match
from interlive.sdp.model import (
    Codec,
    Direction,
    MediaSection,
    Rid,
    SessionDescription,
    Simulcast,
    SsrcGroup,
    is_rtx,
    rtx_apt,
)
from interlive.sdp.validate import RTP_PROTO, is_negotiable

__all__ = [
    "Capabilities",
    "CodecCapability",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "Want",
    "answer_direction",
    "default_capabilities",
    "negotiate_media",
    "negotiate_offer",
]

Want = Literal["recv", "send", "both"]

#: Codecs that repair or protect others; a section needs at least one other codec.
_REPAIR_CODECS = frozenset({"red", "ulpfec", "flexfec", "flexfec-03", "rtx"})

_VIDEO_FEEDBACK = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
# f4001f: Debian's Chromium offers High 4:4:4 Predictive but not High; its decoder
# takes the High streams of RTMP publishers (see h264_decodable)
_H264_PROFILE_LEVEL_IDS = ("42e01f", "42001f", "4d001f", "640c1f", "64001f", "f4001f")


@dataclass(slots=True)
class CodecCapability:
    """A codec the server accepts.

    ``mime`` is ``kind/name`` (``"video/VP8"``), compared case-insensitively;
    ``channels`` ``None`` means one.  ``fmtp`` goes into the answer, with the
    keys in ``echo_fmtp`` replaced by the offer's values (``"*"``: the offer's
    fmtp as is).  ``rtcp_fb`` lists the feedback the server supports; ``rtx``
    says whether it accepts an rtx stream (RFC 4588) for this codec.
    """

    mime: str
    clock_rate: int
    channels: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)
    rtcp_fb: list[str] = field(default_factory=list)
    rtx: bool = False
    echo_fmtp: tuple[str, ...] = ()


@dataclass(slots=True)
class Capabilities:
    """What the server accepts: codecs per kind, header extension URIs per kind."""

    audio_codecs: list[CodecCapability] = field(default_factory=list)
    video_codecs: list[CodecCapability] = field(default_factory=list)
    header_extensions: dict[str, list[str]] = field(default_factory=dict)

    def codecs_for(self, kind: str) -> list[CodecCapability]:
        """The codec capabilities for ``kind`` (none for kinds other than audio/video)."""
        if kind == "audio":
            return self.audio_codecs
        if kind == "video":
            return self.video_codecs
        return []


def default_capabilities() -> Capabilities:
    """Opus; VP8, VP9 profiles 0 and 2, H.264 (packetization-mode 1); rtx for video.

    AV1, RED, ULPFEC and FlexFEC are not offered yet.
    """
    feedback = list(_VIDEO_FEEDBACK)
    video = [
        CodecCapability("video/VP8", 90000, rtcp_fb=list(feedback), rtx=True),
        *(
            CodecCapability(
                "video/VP9",
                90000,
                fmtp={"profile-id": profile},
                rtcp_fb=list(feedback),
                rtx=True,
                echo_fmtp=("profile-id",),
            )
            for profile in ("0", "2")
        ),
        *(
            CodecCapability(
                "video/H264",
                90000,
                fmtp={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": profile_level_id,
                },
                rtcp_fb=list(feedback),
                rtx=True,
                echo_fmtp=("profile-level-id",),
            )
            for profile_level_id in _H264_PROFILE_LEVEL_IDS
        ),
    ]
    audio = [
        CodecCapability(
            "audio/opus",
            48000,
            2,
            fmtp={"minptime": "10", "useinbandfec": "1"},
            # nack: lost audio is resent while the receiver's jitter buffer still
            # waits (Chromium asks only when its offer lists it: web/audio-nack.js)
            rtcp_fb=["transport-cc", "nack"],
        )
    ]
    return Capabilities(
        audio_codecs=audio,
        video_codecs=video,
        header_extensions={
            "audio": [ext.AUDIO_LEVEL, ext.ABS_SEND_TIME, ext.TRANSPORT_CC, ext.MID],
            "video": [
                ext.ABS_SEND_TIME,
                ext.TRANSPORT_CC,
                ext.MID,
                ext.RID,
                ext.REPAIRED_RID,
                ext.TOFFSET,
                ext.VIDEO_ORIENTATION,
                ext.PLAYOUT_DELAY,
                ext.ABS_CAPTURE_TIME,
            ],
        },
    )


@dataclass(frozen=True, slots=True)
class NegotiatedCodec:
    """One accepted codec: the offer's payload type, the answer's fmtp and rtcp-fb."""

    payload_type: PayloadType
    mime: str
    clock_rate: int
    channels: int | None
    fmtp: dict[str, str]
    rtcp_fb: tuple[str, ...]
    rtx_payload_type: PayloadType | None = None

    @property
    def name(self) -> str:
        """The encoding name, e.g. ``"VP8"``."""
        return self.mime.partition("/")[2]


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The answerer's decision for one media section.

    ``codecs`` in the offer's order; ``extmaps`` maps URI to the offer's id;
    ``direction`` is the answer's; the offer's SSRCs, SSRC groups, rids,
    simulcast and msid are passed through so the SFU knows what will arrive.
    """

    mid: str | None
    kind: str
    direction: Direction
    codecs: tuple[NegotiatedCodec, ...]
    extmaps: dict[str, int]
    offer_direction: Direction = "sendrecv"
    ssrcs: dict[Ssrc, dict[str, str]] = field(default_factory=dict)
    ssrc_groups: tuple[SsrcGroup, ...] = ()
    rids: tuple[Rid, ...] = ()
    simulcast: Simulcast | None = None
    msid: tuple[str, str] | None = None
    rtcp_rsize: bool = False

    @property
    def payload_types(self) -> list[PayloadType]:
        """Every accepted payload type, each codec followed by its rtx."""
        out: list[PayloadType] = []
        for codec in self.codecs:
            out.append(codec.payload_type)
            if codec.rtx_payload_type is not None:
                out.append(codec.rtx_payload_type)
        return out

    def codec(self, payload_type: int) -> NegotiatedCodec | None:
        """The accepted codec with this payload type (not rtx), or ``None``."""
        for codec in self.codecs:
            if codec.payload_type == payload_type:
                return codec
        return None


def answer_direction(offered: Direction, want: Want) -> Direction:
    """The answer's direction: we receive what the offerer sends, send what it receives.

    ``want`` limits it: ``"recv"`` (a publisher), ``"send"`` (a viewer), ``"both"``.
    """
    receive = offered in ("sendrecv", "sendonly") and want in ("recv", "both")
    send = offered in ("sendrecv", "recvonly") and want in ("send", "both")
    if receive and send:
        return "sendrecv"
    if receive:
        return "recvonly"
    if send:
        return "sendonly"
    return "inactive"


def negotiate_media(
    media: MediaSection,
    caps: Capabilities,
    *,
    want: Want = "both",
    allowed: Callable[[Codec], bool] | None = None,
    fmtp_match: FmtpMatch = default_fmtp_match,
) -> NegotiatedMedia | None:
    """Accept what ``media`` offers and ``caps`` supports; ``None`` rejects the section.

    ``allowed`` restricts the offered codecs further (it sees every codec but
    rtx), e.g. a WHEP viewer limited to the publisher's exact codec.
    """
    if not is_negotiable(media) or media.proto != RTP_PROTO:
        return None
    kept: list[tuple[Codec, CodecCapability]] = []
    for codec in media.codecs:
        if is_rtx(codec) or (allowed is not None and not allowed(codec)):
            continue
        cap = _find_capability(codec, caps.codecs_for(media.kind), fmtp_match)
        if cap is not None:
            kept.append((codec, cap))
    kept_pts = {codec.payload_type for codec, _ in kept}
    kept = [(codec, cap) for codec, cap in kept if _red_complete(codec, kept_pts)]
    if all(codec.name.lower() in _REPAIR_CODECS for codec, _ in kept):
        return None
    codecs = tuple(_negotiated_codec(media, codec, cap) for codec, cap in kept)
    supported = caps.header_extensions.get(media.kind, [])
    extmaps: dict[str, int] = {}
    for extmap in media.extmaps:
        if extmap.uri in supported and extmap.uri not in extmaps:
            extmaps[extmap.uri] = extmap.id
    return NegotiatedMedia(
        mid=media.mid,
        kind=media.kind,
        direction=answer_direction(media.effective_direction, want),
        codecs=codecs,
        extmaps=extmaps,
        offer_direction=media.effective_direction,
        ssrcs={ssrc: dict(attrs) for ssrc, attrs in media.ssrcs.items()},
        ssrc_groups=tuple(media.ssrc_groups),
        rids=tuple(media.rids),
        simulcast=media.simulcast,
        msid=media.msid,
        rtcp_rsize=media.rtcp_rsize,
    )


def negotiate_offer(
    offer: SessionDescription,
    caps: Capabilities,
    *,
    want: Want = "both",
    allowed: Callable[[Codec], bool] | None = None,
    fmtp_match: FmtpMatch = default_fmtp_match,
) -> list[NegotiatedMedia | None]:
    """:func:`negotiate_media` for every section of ``offer``, in order."""
    return [
        negotiate_media(media, caps, want=want, allowed=allowed, fmtp_match=fmtp_match)
        for media in offer.media
    ]


def _find_capability(
    codec: Codec, capabilities: list[CodecCapability], fmtp_match: FmtpMatch
) -> CodecCapability | None:
    for cap in capabilities:
        if cap.mime.lower() != codec.mime.lower() or cap.clock_rate != codec.clock_rate:
            continue
        if codec.kind == "audio" and (cap.channels or 1) != (codec.channels or 1):
            continue
        if fmtp_match(cap.mime, codec.fmtp, cap.fmtp):
            return cap
    return None


def _red_complete(codec: Codec, kept: set[PayloadType]) -> bool:
    """RED (RFC 2198) names its redundant payload types in its fmtp: all must be kept."""
    if codec.name.lower() != "red":
        return True
    for param in codec.fmtp:
        for pt in param.split("/"):
            if not (pt.isascii() and pt.isdigit()) or int(pt) not in kept:
                return False
    return True


def _negotiated_codec(media: MediaSection, codec: Codec, cap: CodecCapability) -> NegotiatedCodec:
    if "*" in cap.echo_fmtp:
        fmtp = dict(codec.fmtp)
    else:
        fmtp = dict(cap.fmtp)
        for key in cap.echo_fmtp:
            if key in codec.fmtp:
                fmtp[key] = codec.fmtp[key]
    rtx_pt: PayloadType | None = None
    if cap.rtx:
        for candidate in media.codecs:
            if (
                rtx_apt(candidate) == codec.payload_type
                and candidate.clock_rate == codec.clock_rate
            ):
                rtx_pt = candidate.payload_type
                break
    offered_fb = [" ".join(fb.split()) for fb in codec.rtcp_fb]
    supported_fb = {" ".join(fb.split()) for fb in cap.rtcp_fb}
    return NegotiatedCodec(
        payload_type=codec.payload_type,
        mime=codec.mime,
        clock_rate=codec.clock_rate,
        channels=codec.channels,
        fmtp=fmtp,
        rtcp_fb=tuple(fb for fb in offered_fb if fb in supported_fb),
        rtx_payload_type=rtx_pt,
    )
