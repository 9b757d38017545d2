"""Build the server's SDP answer from the negotiated media sections.

The answer follows JSEP's rules for an answer (RFC 8829/9429 §5.3.1) as an
ICE-lite (RFC 8445 §2.5) DTLS-SRTP endpoint:

* session level: ``a=ice-lite``; ``a=group:BUNDLE`` of the accepted mids that
  the offer bundled (RFC 8843 §7.3: an answer never adds a group);
  ``a=extmap-allow-mixed`` if offered (RFC 8285 §6); ``a=msid-semantic: WMS``
  with the stream ids sent (RFC 8830);
* each section in the offer's order.  Accepted: ``m=<kind> 9
  UDP/TLS/RTP/SAVPF <payload types, each followed by its rtx>``, ``c=`` from the
  first candidate, ``a=rtcp:9 IN IP4 0.0.0.0`` (RFC 3605), the ICE credentials
  and DTLS fingerprint, ``a=setup:passive`` for an actpass or active offer and
  ``a=setup:active`` for a passive one (RFC 5763 §5), mid, extmaps with the
  offer's ids, direction, ``a=rtcp-mux`` (RFC 5761), ``a=rtcp-rsize`` if
  offered (RFC 5506), rtpmap/fmtp/rtcp-fb per codec and ``apt=`` for rtx
  (RFC 4588), the rids and ``a=simulcast:recv`` mirroring a simulcast offer
  (RFC 8853 §5.3), ``a=msid``/``a=ssrc``/``a=ssrc-group:FID`` for the streams
  the server sends (RFC 5576), the candidates and ``a=end-of-candidates``
  (RFC 8840).  Rejected: port 0, the offer's proto and first format, and only
  ``a=mid`` (RFC 8829/9429 §5.3.1, RFC 8843 §7.3.3).

It returns a :class:`SessionDescription`; ``str()`` of it is the answer text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from interlive.rtp.types import Ssrc
from interlive.sdp.model import (
    Candidate,
    Codec,
    Extmap,
    Fingerprint,
    Group,
    MediaSection,
    Origin,
    Rid,
    SessionDescription,
    Simulcast,
    SsrcGroup,
    effective_ice,
)
from interlive.sdp.negotiate import NegotiatedCodec, NegotiatedMedia
from interlive.sdp.validate import RTP_PROTO

__all__ = ["MediaAnswer", "SendStream", "answer_setup", "build_answer"]


@dataclass(frozen=True, slots=True)
class SendStream:
    """A stream the server sends in a section: its SSRC, RTX SSRC and identity (RFC 8830)."""

    ssrc: Ssrc
    rtx_ssrc: Ssrc | None
    cname: str
    stream_id: str
    track_id: str


@dataclass(frozen=True, slots=True)
class MediaAnswer:
    """The answer for one offered section: ``negotiated`` ``None`` rejects it."""

    negotiated: NegotiatedMedia | None
    send: Sequence[SendStream] = ()


def answer_setup(offered: str | None) -> str:
    """The DTLS role to answer with: ``active`` if the offer is passive, else ``passive``."""
    return "active" if offered == "passive" else "passive"


def build_answer(
    offer: SessionDescription,
    answers: Sequence[MediaAnswer],
    *,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprint: Fingerprint,
    candidates: Sequence[Candidate],
    session_id: int,
    session_version: int = 2,
) -> SessionDescription:
    """The answer to ``offer``; ``answers`` has one entry per offered section, in order.

    Raises :class:`ValueError` when ``answers`` does not line up with the offer
    (count or mid) or asks to send in a section whose direction does not send.
    """
    if len(answers) != len(offer.media):
        raise ValueError(f"{len(answers)} media answers for {len(offer.media)} offered sections")
    connection = _connection(candidates)
    offered_bundle = offer.bundle_group()
    bundle: list[str] = []
    stream_ids: list[str] = []
    sections: list[MediaSection] = []
    for index, (media, answer) in enumerate(zip(offer.media, answers, strict=True)):
        negotiated = answer.negotiated
        if negotiated is None:
            sections.append(_rejected(media))
            continue
        if negotiated.mid != media.mid:
            raise ValueError(
                f"media answer {index} is for mid {negotiated.mid!r}, offer has {media.mid!r}"
            )
        section = _accepted(media, negotiated, answer.send, connection)
        section.ice_ufrag = ice_ufrag
        section.ice_pwd = ice_pwd
        section.fingerprints = [fingerprint]
        section.setup = answer_setup(effective_ice(offer, media).setup)
        section.candidates = [str(candidate) for candidate in candidates]
        section.end_of_candidates = True
        sections.append(section)
        if (
            offered_bundle is not None
            and media.mid is not None
            and media.mid in offered_bundle.mids
        ):
            bundle.append(media.mid)
        for stream in answer.send:
            if stream.stream_id not in stream_ids:
                stream_ids.append(stream.stream_id)
    return SessionDescription(
        origin=Origin("-", session_id, session_version, "IN", "IP4", "127.0.0.1"),
        session_name="-",
        timing="0 0",
        ice_lite=True,
        groups=[Group("BUNDLE", tuple(bundle))] if bundle else [],
        extmap_allow_mixed=offer.extmap_allow_mixed,
        msid_semantic=" ".join(("WMS", *stream_ids)),
        media=sections,
    )


def _connection(candidates: Sequence[Candidate]) -> str:
    if not candidates:
        return "IN IP4 0.0.0.0"
    ip = candidates[0].ip
    return f"IN IP6 {ip}" if ":" in ip else f"IN IP4 {ip}"


def _rejected(media: MediaSection) -> MediaSection:
    return MediaSection(
        kind=media.kind,
        port=0,
        proto=media.proto,
        formats=media.formats[:1],
        connection="IN IP4 0.0.0.0",
        mid=media.mid,
    )


def _accepted(
    media: MediaSection,
    negotiated: NegotiatedMedia,
    send: Sequence[SendStream],
    connection: str,
) -> MediaSection:
    if send and negotiated.direction not in ("sendrecv", "sendonly"):
        raise ValueError(
            f"send streams for mid {negotiated.mid!r}, whose answer is {negotiated.direction}"
        )
    codecs = codec_lines(negotiated.codecs, media.kind)
    section = MediaSection(
        kind=media.kind,
        port=9,
        proto=RTP_PROTO,
        formats=[str(codec.payload_type) for codec in codecs],
        connection=connection,
        mid=media.mid,
        direction=negotiated.direction,
        codecs=codecs,
        extmaps=[Extmap(ext_id, uri) for uri, ext_id in negotiated.extmaps.items()],
        extmap_allow_mixed=media.extmap_allow_mixed,
        rtcp="9 IN IP4 0.0.0.0",
        rtcp_mux=True,
        rtcp_rsize=negotiated.rtcp_rsize,
    )
    _add_simulcast(section, negotiated)
    _add_send_streams(section, send)
    return section


def codec_lines(codecs: Iterable[NegotiatedCodec], kind: str) -> list[Codec]:
    """The ``a=rtpmap``/``fmtp``/``rtcp-fb`` lines of negotiated codecs, each with its RTX."""
    out: list[Codec] = []
    for codec in codecs:
        out.append(
            Codec(
                codec.payload_type,
                codec.name,
                codec.clock_rate,
                codec.channels,
                dict(codec.fmtp),
                list(codec.rtcp_fb),
                kind=kind,
            )
        )
        if codec.rtx_payload_type is not None:
            apt = {"apt": str(codec.payload_type)}
            out.append(
                Codec(codec.rtx_payload_type, "rtx", codec.clock_rate, None, apt, [], kind=kind)
            )
    return out


def _add_simulcast(section: MediaSection, negotiated: NegotiatedMedia) -> None:
    """Mirror a send simulcast offer as recv (RFC 8853 §5.3); recv simulcast is not offered back."""
    simulcast = negotiated.simulcast
    if (
        simulcast is None
        or not simulcast.send
        or negotiated.direction not in ("recvonly", "sendrecv")
    ):
        return
    offered = set(simulcast.rids("send"))
    section.rids = [
        Rid(rid.id, "recv")
        for rid in negotiated.rids
        if rid.direction == "send" and rid.id in offered
    ]
    section.simulcast = Simulcast(recv=simulcast.send)


def _add_send_streams(section: MediaSection, send: Sequence[SendStream]) -> None:
    if not send:
        return
    section.msid = (send[0].stream_id, send[0].track_id)
    for stream in send:
        msid = f"{stream.stream_id} {stream.track_id}"
        if stream.rtx_ssrc is not None:
            section.ssrc_groups.append(SsrcGroup("FID", (stream.ssrc, stream.rtx_ssrc)))
        for ssrc in (stream.ssrc, stream.rtx_ssrc):
            if ssrc is not None:
                section.ssrcs[ssrc] = {"cname": stream.cname, "msid": msid}
