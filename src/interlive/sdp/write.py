"""Serialise a :class:`~interlive.sdp.model.SessionDescription` to SDP text (RFC 8866 §5).

Lines end in CRLF.  Typed lines follow RFC 8866's order (``v o s i u e p c b t
r z k a`` at session level, ``m i c b k a`` per media).  Attributes come in one
canonical order, the one Chrome writes (transport, then identity, then RTP
parameters, then SSRCs), with the attributes the model does not interpret
between ``rtcp-rsize`` and the codecs.  JSEP (RFC 8829/9429 §5.2, §5.3) sets no
attribute order, so any peer accepts it; and Chrome's own offers come back byte
for byte.
"""

from __future__ import annotations

from interlive.sdp.model import Codec, MediaSection, SessionDescription

__all__ = ["write_media", "write_session"]


def write_session(session: SessionDescription) -> str:
    """The whole description as SDP text with CRLF line endings."""
    out = ["v=0", f"o={session.origin}", f"s={session.session_name}"]
    out += [f"{kind}={value}" for kind, value in session.other_lines if kind in "iuep"]
    if session.connection is not None:
        out.append(f"c={session.connection}")
    out += [f"b={value}" for kind, value in session.other_lines if kind == "b"]
    out.append(f"t={session.timing}")
    out += [f"{kind}={value}" for kind, value in session.other_lines if kind in "trzk"]
    if session.ice_lite:
        out.append("a=ice-lite")
    if session.ice_ufrag is not None:
        out.append(f"a=ice-ufrag:{session.ice_ufrag}")
    if session.ice_pwd is not None:
        out.append(f"a=ice-pwd:{session.ice_pwd}")
    if session.ice_options:
        out.append("a=ice-options:" + " ".join(session.ice_options))
    out += [f"a=fingerprint:{fingerprint}" for fingerprint in session.fingerprints]
    if session.setup is not None:
        out.append(f"a=setup:{session.setup}")
    out += [f"a=group:{group}" for group in session.groups]
    if session.extmap_allow_mixed:
        out.append("a=extmap-allow-mixed")
    if session.msid_semantic is not None:
        out.append(f"a=msid-semantic: {session.msid_semantic}")
    out += [f"a={attribute}" for attribute in session.attributes]
    for media in session.media:
        out += write_media(media)
    return "\r\n".join(out) + "\r\n"


def write_media(media: MediaSection) -> list[str]:
    """One media section's lines, without line endings."""
    port = str(media.port) if media.num_ports is None else f"{media.port}/{media.num_ports}"
    out = [f"m={media.kind} {port} {' '.join((media.proto, *media.formats))}"]
    out += [f"i={value}" for kind, value in media.other_lines if kind == "i"]
    if media.connection is not None:
        out.append(f"c={media.connection}")
    out += [f"{kind}={value}" for kind, value in media.other_lines if kind in "bk"]
    if media.rtcp is not None:
        out.append(f"a=rtcp:{media.rtcp}")
    out += [f"a=candidate:{candidate}" for candidate in media.candidates]
    if media.end_of_candidates:
        out.append("a=end-of-candidates")
    if media.ice_ufrag is not None:
        out.append(f"a=ice-ufrag:{media.ice_ufrag}")
    if media.ice_pwd is not None:
        out.append(f"a=ice-pwd:{media.ice_pwd}")
    if media.ice_options:
        out.append("a=ice-options:" + " ".join(media.ice_options))
    out += [f"a=fingerprint:{fingerprint}" for fingerprint in media.fingerprints]
    if media.setup is not None:
        out.append(f"a=setup:{media.setup}")
    if media.mid is not None:
        out.append(f"a=mid:{media.mid}")
    if media.bundle_only:
        out.append("a=bundle-only")
    out += [f"a=extmap:{extmap}" for extmap in media.extmaps]
    if media.extmap_allow_mixed:
        out.append("a=extmap-allow-mixed")
    if media.direction is not None:
        out.append(f"a={media.direction}")
    if media.msid is not None:
        stream, track = media.msid
        out.append(f"a=msid:{stream} {track}" if track else f"a=msid:{stream}")
    if media.rtcp_mux:
        out.append("a=rtcp-mux")
    if media.rtcp_rsize:
        out.append("a=rtcp-rsize")
    out += [f"a={attribute}" for attribute in media.attributes]
    for codec in media.codecs:
        out += _codec_lines(codec)
    out += [f"a=rid:{rid}" for rid in media.rids]
    if media.simulcast is not None:
        out.append(f"a=simulcast:{media.simulcast}")
    out += [f"a=ssrc-group:{group}" for group in media.ssrc_groups]
    for ssrc, attributes in media.ssrcs.items():
        for name, value in attributes.items():
            out.append(f"a=ssrc:{ssrc} {name}:{value}" if value else f"a=ssrc:{ssrc} {name}")
    return out


def _codec_lines(codec: Codec) -> list[str]:
    rtpmap = f"{codec.payload_type} {codec.name}/{codec.clock_rate}"
    if codec.channels is not None:
        rtpmap += f"/{codec.channels}"
    out = [f"a=rtpmap:{rtpmap}"]
    out += [f"a=rtcp-fb:{codec.payload_type} {feedback}" for feedback in codec.rtcp_fb]
    if codec.fmtp:
        params = ";".join(k if v == "" else f"{k}={v}" for k, v in codec.fmtp.items())
        out.append(f"a=fmtp:{codec.payload_type} {params}")
    return out
