"""Build the server's SDP offer for an existing peer connection (server-initiated renegotiation).

A participant's one peer connection (unified plan) starts with the client's offer;
afterwards the server renegotiates it when tracks appear and go.  Its offer is a
JSEP *subsequent offer* (RFC 8829/9429 §5.2.2) from an ICE-lite DTLS-SRTP
endpoint that already shares a transport with the client:

* every section negotiated before stays in its place with its mid; new sections
  are appended (JSEP §5.2.2: m= sections are never removed or reordered);
* session level: ``a=ice-lite``, ``a=group:BUNDLE`` of every section not
  rejected, in order, the first being the tagged section of the transport in use
  (RFC 8843 §7.2), ``a=extmap-allow-mixed`` if asked, ``a=msid-semantic: WMS``
  with the stream ids sent (RFC 8830);
* an active section: ``m=<kind> 9 UDP/TLS/RTP/SAVPF <payload types>``, ``c=``
  from the first candidate, ``a=rtcp:9 IN IP4 0.0.0.0``, the candidates and
  ``a=end-of-candidates`` (RFC 8840), the *current* ICE credentials (unchanged
  credentials keep the ICE session: RFC 8839 §4.4.1.1.2) and DTLS fingerprint,
  ``a=setup:actpass`` (what browsers offer: the established DTLS association is
  kept, its roles unchanged, RFC 8842 §5.5), mid, extmaps, the direction,
  ``a=msid`` and ``a=ssrc``/``a=ssrc-group:FID`` for the stream the server sends
  (RFC 5576, RFC 8830), ``a=rtcp-mux``, ``a=rtcp-rsize`` and rtpmap/rtcp-fb/fmtp
  per codec, each followed by its rtx (RFC 4588);
* a section the server no longer sends on is ``a=inactive`` (JSEP §5.2.2 keeps it
  for later reuse); a section that was rejected keeps port 0 (it is not in the
  BUNDLE group) but still lists its codecs and transport lines, which strict
  parsers (aiortc) require of every section.

:func:`build_offer` is pure: plain values in, a
:class:`~interlive.sdp.model.SessionDescription` out; ``str()`` of it is the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from interlive.sdp.answer import SendStream, codec_lines
from interlive.sdp.model import (
    Candidate,
    Direction,
    Extmap,
    Fingerprint,
    Group,
    MediaSection,
    Origin,
    SessionDescription,
    SsrcGroup,
)
from interlive.sdp.negotiate import NegotiatedCodec
from interlive.sdp.validate import RTP_PROTO

__all__ = ["OfferSection", "build_offer"]


@dataclass(frozen=True, slots=True)
class OfferSection:
    """One m= section of the server's offer.

    ``direction`` is the server's (the offerer's): ``sendonly`` when it sends a
    track, ``recvonly`` when it receives the client's, ``inactive`` for neither.
    ``codecs`` carry the payload types agreed with the client (its numbers),
    each followed by its rtx in the ``m=`` line.  ``send`` is the stream the
    server sends in it (at most one with unified plan).  ``rejected`` sections
    are written with port 0 and left out of BUNDLE; one without codecs (a
    section that was never RTP, e.g. a data channel) keeps the ``proto`` and
    ``formats`` it was offered with.
    """

    mid: str
    kind: str
    direction: Direction
    codecs: Sequence[NegotiatedCodec]
    extmaps: Mapping[str, int] = field(default_factory=dict)
    send: SendStream | None = None
    rtcp_rsize: bool = True
    rejected: bool = False
    proto: str = RTP_PROTO
    formats: Sequence[str] = ()


def build_offer(
    sections: Sequence[OfferSection],
    *,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprint: Fingerprint,
    candidates: Sequence[Candidate],
    session_id: int,
    session_version: int,
    extmap_allow_mixed: bool = False,
) -> SessionDescription:
    """The server's offer with ``sections`` in order.

    Raises :class:`ValueError` if no section is active (there must be a
    transport to offer on), a mid repeats, an active section has no codec, or a stream
    is sent in a section whose direction does not send.
    """
    mids = [s.mid for s in sections]
    if len(set(mids)) != len(mids):
        raise ValueError(f"repeated mid in {mids}")
    if all(s.rejected for s in sections):
        raise ValueError("an offer needs at least one section that is not rejected")
    connection = _connection(candidates)
    bundle: list[str] = []
    stream_ids: list[str] = []
    media: list[MediaSection] = []
    for section in sections:
        if not section.codecs and not (section.rejected and section.formats):
            raise ValueError(f"section {section.mid!r} has no codec")
        if section.send is not None and section.direction not in ("sendonly", "sendrecv"):
            raise ValueError(f"a stream is sent in section {section.mid!r} ({section.direction})")
        m = MediaSection(
            kind=section.kind,
            port=0 if section.rejected else 9,
            proto=section.proto if section.rejected else RTP_PROTO,
            formats=list(section.formats),
            connection=connection,
            mid=section.mid,
            direction="inactive" if section.rejected else section.direction,
            codecs=codec_lines(section.codecs, section.kind),
            extmaps=[Extmap(ext_id, uri) for uri, ext_id in section.extmaps.items()],
            extmap_allow_mixed=extmap_allow_mixed,
            rtcp="9 IN IP4 0.0.0.0",
            rtcp_mux=True,
            rtcp_rsize=section.rtcp_rsize,
            ice_ufrag=ice_ufrag,
            ice_pwd=ice_pwd,
            fingerprints=[fingerprint],
            setup="actpass",
        )
        if m.codecs:
            m.formats = [str(codec.payload_type) for codec in m.codecs]
        if not section.rejected:
            m.candidates = [str(candidate) for candidate in candidates]
            m.end_of_candidates = True
            bundle.append(section.mid)
        stream = section.send
        if stream is not None and not section.rejected:
            _add_stream(m, stream)
            if stream.stream_id not in stream_ids:
                stream_ids.append(stream.stream_id)
        media.append(m)
    return SessionDescription(
        origin=Origin("-", session_id, session_version, "IN", "IP4", "127.0.0.1"),
        session_name="-",
        timing="0 0",
        ice_lite=True,
        groups=[Group("BUNDLE", tuple(bundle))],
        extmap_allow_mixed=extmap_allow_mixed,
        msid_semantic=" ".join(("WMS", *stream_ids)),
        media=media,
    )


def _connection(candidates: Sequence[Candidate]) -> str:
    if not candidates:
        return "IN IP4 0.0.0.0"
    ip = candidates[0].ip
    return f"IN IP6 {ip}" if ":" in ip else f"IN IP4 {ip}"


def _add_stream(section: MediaSection, stream: SendStream) -> None:
    section.msid = (stream.stream_id, stream.track_id)
    msid = f"{stream.stream_id} {stream.track_id}"
    if stream.rtx_ssrc is not None:
        section.ssrc_groups.append(SsrcGroup("FID", (stream.ssrc, stream.rtx_ssrc)))
    for ssrc in (stream.ssrc, stream.rtx_ssrc):
        if ssrc is not None:
            section.ssrcs[ssrc] = {"cname": stream.cname, "msid": msid}
