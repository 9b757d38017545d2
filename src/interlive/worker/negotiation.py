"""Offer/answer for the worker: SDP in, the answer text and a MediaPlan out.

The SDP package knows SDP; the SFU knows tracks. This module is the seam:
it negotiates each m-line against the server's capabilities (publish: the
server receives; subscribe: it sends), allocates the server's SSRCs, writes
the answer, and describes the result as a MediaPlan for the PeerSession.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from interlive.rtp.types import Ssrc
from interlive.sdp import (
    Candidate,
    Capabilities,
    CodecCapability,
    Fingerprint,
    MediaAnswer,
    MediaSection,
    NegotiatedMedia,
    SdpError,
    SendStream,
    SessionDescription,
    Want,
    build_answer,
    build_sdpfrag,
    default_capabilities,
    effective_ice,
    negotiate_media,
    parse_sdpfrag,
    validate_offer,
)
from interlive.sfu.tracks import Codec
from interlive.worker.channel import RequestError
from interlive.worker.peer import MediaPlan, RecvMedia, SendMedia

# transport-cc needs the server to send feedback (publishers) and use it
# (subscribers): the bandwidth-estimation work adds it back to the offer-answer.
_DISABLED_FEEDBACK = {"transport-cc"}
_DISABLED_EXTENSIONS = {"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    ice_ufrag: str
    ice_pwd: str
    fingerprint: str  # sha-256
    candidate_ip: str
    port: int


def server_capabilities() -> Capabilities:
    caps = default_capabilities()
    # RED for Opus (RFC 2198): forwarded to viewers that negotiated it, stripped to
    # the primary for the others (see DownTrack); the block list is the offerer's.
    caps.audio_codecs.append(CodecCapability("audio/red", 48000, 2, echo_fmtp=("*",)))
    # ULPFEC (RFC 5109) for video, carried in RED as browsers do: publishers' FEC is
    # used to recover their losses; viewers get FEC of their own when the policy says.
    caps.video_codecs.append(CodecCapability("video/red", 90000, rtx=True))
    caps.video_codecs.append(CodecCapability("video/ulpfec", 90000))
    for codec in [*caps.audio_codecs, *caps.video_codecs]:
        codec.rtcp_fb[:] = [fb for fb in codec.rtcp_fb if fb not in _DISABLED_FEEDBACK]
    for kind, uris in caps.header_extensions.items():
        caps.header_extensions[kind] = [u for u in uris if u not in _DISABLED_EXTENSIONS]
    return caps


def _codecs(media: NegotiatedMedia) -> list[Codec]:
    return [
        Codec(
            payload_type=c.payload_type,
            mime=c.mime,
            clock_rate=c.clock_rate,
            channels=c.channels,
            fmtp=dict(c.fmtp),
            rtx_payload_type=c.rtx_payload_type,
        )
        for c in media.codecs
    ]


def _random_ssrc(taken: set[int]) -> int:
    while True:
        ssrc = secrets.randbits(32)
        if ssrc and ssrc not in taken:
            taken.add(ssrc)
            return ssrc


def answer_offer(offer_text: str, *, mode: str, endpoint: Endpoint) -> tuple[str, MediaPlan, str]:
    """Negotiate an offer; returns (answer SDP, plan, the offer's ICE ufrag)."""
    try:
        offer = SessionDescription.parse(offer_text)
        validate_offer(offer)
    except SdpError as exc:
        raise RequestError(400, "bad_sdp", str(exc)) from exc
    if mode not in ("publish", "subscribe"):
        raise RequestError(400, "bad_request", f"unknown mode {mode!r}")
    caps = server_capabilities()
    want: Want = "recv" if mode == "publish" else "send"
    answers: list[MediaAnswer] = []
    recv: list[RecvMedia] = []
    send: list[SendMedia] = []
    taken: set[int] = set()
    cname = secrets.token_hex(8)
    stream_id = secrets.token_hex(6)
    for media in offer.media:
        negotiated = (
            negotiate_media(media, caps, want=want)
            if media.kind in ("audio", "video") and not media.rejected
            else None
        )
        if negotiated is None:
            answers.append(MediaAnswer(None, []))
            continue
        codecs = _codecs(negotiated)
        if negotiated.direction == "recvonly":
            ssrcs, rtx = _offer_ssrcs(media)
            recv.append(
                RecvMedia(
                    mid=negotiated.mid or "",
                    kind=negotiated.kind,
                    codecs=codecs,
                    extensions=dict(negotiated.extmaps),
                    ssrcs=ssrcs,
                    rtx_ssrcs=rtx,
                    remb=any("goog-remb" in c.rtcp_fb for c in negotiated.codecs),
                    nack=_nack(negotiated),
                )
            )
            answers.append(MediaAnswer(negotiated, []))
        elif negotiated.direction == "sendonly":
            ssrc = _random_ssrc(taken)
            rtx_ssrc = (
                _random_ssrc(taken)
                if any(c.rtx_payload_type is not None for c in negotiated.codecs)
                else None
            )
            send.append(
                SendMedia(
                    mid=negotiated.mid or "",
                    kind=negotiated.kind,
                    codecs=codecs,
                    extensions=dict(negotiated.extmaps),
                    ssrc=ssrc,
                    rtx_ssrc=rtx_ssrc,
                    nack=_nack(negotiated),
                )
            )
            answers.append(
                MediaAnswer(
                    negotiated,
                    [
                        SendStream(
                            ssrc=Ssrc(ssrc),
                            rtx_ssrc=None if rtx_ssrc is None else Ssrc(rtx_ssrc),
                            cname=cname,
                            stream_id=stream_id,
                            track_id=f"{negotiated.kind}-{negotiated.mid}",
                        )
                    ],
                )
            )
        else:
            answers.append(MediaAnswer(negotiated, []))
    if not recv and not send:
        raise RequestError(
            400,
            "bad_sdp",
            "no usable media section: "
            + ("WHIP offers must send" if mode == "publish" else "WHEP offers must receive")
            + " audio or video in a codec interlive supports (Opus, VP8, VP9, H.264 mode 1)",
        )
    first = next(m for m in offer.media if not m.rejected)
    ice = effective_ice(offer, first)
    answer = build_answer(
        offer,
        answers,
        ice_ufrag=endpoint.ice_ufrag,
        ice_pwd=endpoint.ice_pwd,
        fingerprint=Fingerprint("sha-256", endpoint.fingerprint),
        candidates=[_candidate(endpoint)],
        session_id=secrets.randbits(62),
    )
    plan = MediaPlan(
        recv=recv,
        send=send,
        remote_fingerprints=[(f.algorithm, f.value) for f in ice.fingerprints],
        # We answer passive (DTLS server) unless the offerer insists on being passive.
        dtls_server=ice.setup != "passive",
        cname=cname,
    )
    return str(answer), plan, ice.ice_ufrag or ""


def _offer_ssrcs(media: MediaSection) -> tuple[set[int], dict[int, int]]:
    """The offer's media SSRCs, and its RTX SSRCs mapped to theirs (RFC 5576 FID groups)."""
    rtx: dict[int, int] = {}
    for group in media.ssrc_groups:
        if group.semantics.upper() == "FID" and len(group.ssrcs) == 2:
            rtx[int(group.ssrcs[1])] = int(group.ssrcs[0])
    return {int(s) for s in media.ssrcs} - set(rtx), rtx


def _nack(media: NegotiatedMedia) -> bool:
    """Generic NACK (RFC 4585 §4.2) negotiated for the media's codecs."""
    return any("nack" in c.rtcp_fb for c in media.codecs)


def _candidate(endpoint: Endpoint) -> Candidate:
    return Candidate(
        foundation="1",
        component=1,
        transport="udp",
        priority=2130706431,
        ip=endpoint.candidate_ip,
        port=endpoint.port,
        type="host",
    )


def answer_ice_restart(fragment: str, *, endpoint: Endpoint) -> tuple[str | None, str | None]:
    """Handle a PATCH body (RFC 8840).

    Returns (answer fragment, new remote ufrag) for an ICE restart, else (None, None).
    """
    try:
        frag = parse_sdpfrag(fragment)
    except SdpError as exc:
        raise RequestError(400, "bad_sdpfrag", str(exc)) from exc
    if not frag.ice_ufrag or not frag.ice_pwd:
        return None, None
    first = frag.media[0] if frag.media else None
    answer = build_sdpfrag(
        ice_ufrag=endpoint.ice_ufrag,
        ice_pwd=endpoint.ice_pwd,
        candidates=[_candidate(endpoint)],
        mid=(first.mid if first is not None and first.mid is not None else "0"),
    )
    return answer, frag.ice_ufrag
