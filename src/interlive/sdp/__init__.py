"""SDP for a WebRTC SFU that owns its session descriptions.

The server parses the client's offer, checks it, negotiates each media section
against its capabilities and writes the answer itself (aiortc's
RTCPeerConnection is not used server-side):

* :mod:`.model` - the description as plain values (SDP, RFC 8866), with
  :mod:`.parse` (text to model) and :mod:`.write` (model to CRLF text);
* :mod:`.validate` - what an offer must have (JSEP, RFC 8829/9429; BUNDLE,
  RFC 8843; rtcp-mux, RFC 5761; ICE, RFC 8839; DTLS, RFC 5763/8122);
* :mod:`.negotiate` and :mod:`.codec_match` - capabilities and the answerer's
  choice of codecs and header extensions (RFC 8285);
* :mod:`.answer` - the ICE-lite answer;
* :mod:`.offer` - the server's own offer when it renegotiates a peer connection;
* :mod:`.sdpfrag` - trickle-ice-sdpfrag bodies for WHIP/WHEP PATCH (RFC 8840,
  RFC 9725 §4.3).

Typical use::

    offer = SessionDescription.parse(text)
    validate_offer(offer)
    answers = [MediaAnswer(negotiate_media(m, caps, want="recv")) for m in offer.media]
    answer = build_answer(offer, answers, ice_ufrag=..., ice_pwd=..., fingerprint=...,
                          candidates=[...], session_id=...)
    body = str(answer)

Every malformed or unacceptable input raises :class:`SdpError` (a ``ValueError``).
"""

from interlive.sdp.answer import MediaAnswer, SendStream, answer_setup, build_answer
from interlive.sdp.codec_match import FmtpMatch, default_fmtp_match
from interlive.sdp.errors import SdpError
from interlive.sdp.model import (
    Attribute,
    Candidate,
    Codec,
    Direction,
    EffectiveIce,
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
    is_rtx,
    rtx_apt,
)
from interlive.sdp.negotiate import (
    Capabilities,
    CodecCapability,
    NegotiatedCodec,
    NegotiatedMedia,
    Want,
    answer_direction,
    default_capabilities,
    negotiate_media,
    negotiate_offer,
)
from interlive.sdp.offer import OfferSection, build_offer
from interlive.sdp.sdpfrag import FragMedia, SdpFrag, build_sdpfrag, parse_sdpfrag
from interlive.sdp.validate import validate_offer

__all__ = [
    "Attribute",
    "Candidate",
    "Capabilities",
    "Codec",
    "CodecCapability",
    "Direction",
    "EffectiveIce",
    "Extmap",
    "Fingerprint",
    "FmtpMatch",
    "FragMedia",
    "Group",
    "MediaAnswer",
    "MediaSection",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "OfferSection",
    "Origin",
    "Rid",
    "SdpError",
    "SdpFrag",
    "SendStream",
    "SessionDescription",
    "Simulcast",
    "SsrcGroup",
    "Want",
    "answer_direction",
    "answer_setup",
    "build_answer",
    "build_offer",
    "build_sdpfrag",
    "default_capabilities",
    "default_fmtp_match",
    "effective_ice",
    "is_rtx",
    "negotiate_media",
    "negotiate_offer",
    "parse_sdpfrag",
    "rtx_apt",
    "validate_offer",
]
