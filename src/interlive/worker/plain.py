"""Plain-RTP sessions: the media plan from a codec list instead of an SDP offer.

A plain session (mediasoup's PlainTransport is the model) carries unencrypted
RTP and RTCP, multiplexed on the worker's one UDP port, between the worker and
one fixed address of a trusted local process: the control process's RTMP
ingest publishes through one, and a mixer or an FLV player will subscribe
through one.  There is no offer/answer: the caller lists its media, one entry
per stream, as plain values that travel over the worker channel::

    {"mid": "video", "kind": "video", "mime": "video/H264", "clock_rate": 90000,
     "fmtp": {"packetization-mode": "1", "profile-level-id": "64001f"},
     "payload_type": 102, "ssrc": 1234}

``payload_type`` and ``ssrc`` may be left out: the worker then picks them and
the reply says which (:func:`plain_plan` returns them filled in).  For
``publish`` the caller sends with that SSRC and payload type; for
``subscribe`` the SSRC is the worker's and the caller receives on it.
Codecs are checked against what the server forwards (Opus, VP8, VP9, H.264
packetization-mode 1); NACK, REMB and header extensions are off: loopback
loses nothing and the sender is not a congestion-controlled endpoint.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

from interlive.codecs.h264 import H264ProfileLevelId, ProfileLevelIdError
from interlive.sfu.tracks import Codec
from interlive.worker.channel import RequestError
from interlive.worker.negotiation import server_capabilities
from interlive.worker.peer import MediaPlan, RecvMedia, SendMedia

__all__ = ["DEFAULT_PAYLOAD_TYPES", "plain_plan"]

#: payload types picked when the caller gives none (all in the dynamic range)
DEFAULT_PAYLOAD_TYPES: Final = {
    "audio/opus": 111,
    "video/vp8": 96,
    "video/vp9": 98,
    "video/h264": 102,
}
_MODES: Final = ("publish", "subscribe")


def _bad(message: str) -> RequestError:
    return RequestError(400, "bad_request", message)


def _supported() -> dict[str, int]:
    """mime (lower case) -> clock rate, for the codecs the server forwards."""
    caps = server_capabilities()
    return {
        c.mime.lower(): c.clock_rate
        for c in [*caps.audio_codecs, *caps.video_codecs]
        if c.mime.split("/", 1)[1].lower() not in ("red", "ulpfec", "rtx")
    }


def _int(entry: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"media {entry.get('mid')!r}: {key} {value!r} is not an integer {low}..{high}")
    return value


def _codec(entry: Mapping[str, Any], supported: Mapping[str, int], taken_pts: set[int]) -> Codec:
    mid = entry.get("mid")
    mime = entry.get("mime")
    kind = entry.get("kind")
    if not isinstance(mime, str) or mime.split("/", 1)[0].lower() != kind:
        raise _bad(f"media {mid!r}: mime {mime!r} is not a {kind} codec")
    clock_rate = supported.get(mime.lower())
    if clock_rate is None:
        raise _bad(f"media {mid!r}: codec {mime} is not one the server forwards")
    if entry.get("clock_rate", clock_rate) != clock_rate:
        raise _bad(f"media {mid!r}: {mime} runs at {clock_rate} Hz")
    fmtp = entry.get("fmtp") or {}
    if not isinstance(fmtp, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fmtp.items()
    ):
        raise _bad(f"media {mid!r}: fmtp must map strings to strings")
    if mime.lower() == "video/h264":
        if fmtp.get("packetization-mode") != "1":
            raise _bad(f"media {mid!r}: H.264 needs packetization-mode 1")
        try:
            H264ProfileLevelId.from_fmtp(fmtp)
        except ProfileLevelIdError as exc:
            raise _bad(f"media {mid!r}: {exc}") from exc
    payload_type = _int(entry, "payload_type", 96, 127)
    if payload_type is None:
        payload_type = DEFAULT_PAYLOAD_TYPES[mime.lower()]
        while payload_type in taken_pts:
            payload_type = 96 + (payload_type - 95) % 32
    if payload_type in taken_pts:
        raise _bad(f"media {mid!r}: payload type {payload_type} is used twice")
    taken_pts.add(payload_type)
    channels = _int(entry, "channels", 1, 8)
    if mime.lower() == "audio/opus":
        channels = 2  # RFC 7587 §7: always opus/48000/2
    return Codec(payload_type, mime, clock_rate, channels, dict(fmtp))


def _ssrc(entry: Mapping[str, Any], taken: set[int]) -> int:
    ssrc = _int(entry, "ssrc", 1, 0xFFFFFFFF)
    if ssrc is None:
        while ssrc is None or ssrc in taken:
            ssrc = secrets.randbits(32) or None
    elif ssrc in taken:
        raise _bad(f"media {entry.get('mid')!r}: SSRC {ssrc} is used twice")
    taken.add(ssrc)
    return ssrc


def plain_plan(
    mode: str, media: Sequence[Mapping[str, Any]]
) -> tuple[MediaPlan, list[dict[str, Any]]]:
    """The session's plan, and ``media`` with every payload type and SSRC filled in.

    Raises :class:`~interlive.worker.channel.RequestError` (400) for an unknown
    mode, no media, a codec the server does not forward, or clashing numbers.
    """
    if mode not in _MODES:
        raise _bad(f"unknown mode {mode!r}")
    if not media or len(media) > 8:
        raise _bad("a plain session needs 1..8 media entries")
    supported = _supported()
    recv: list[RecvMedia] = []
    send: list[SendMedia] = []
    described: list[dict[str, Any]] = []
    mids: set[str] = set()
    pts: set[int] = set()
    ssrcs: set[int] = set()
    for entry in media:
        if not isinstance(entry, Mapping):
            raise _bad("each media entry must be a mapping")
        mid, kind = entry.get("mid"), entry.get("kind")
        if not isinstance(mid, str) or not mid or mid in mids:
            raise _bad(f"media mid {mid!r} is missing or repeated")
        if kind not in ("audio", "video"):
            raise _bad(f"media {mid!r}: kind {kind!r} is not audio or video")
        mids.add(mid)
        codec = _codec(entry, supported, pts)
        ssrc = _ssrc(entry, ssrcs)
        if mode == "publish":
            recv.append(RecvMedia(mid=mid, kind=kind, codecs=[codec], extensions={}, ssrcs={ssrc}))
        else:
            send.append(SendMedia(mid=mid, kind=kind, codecs=[codec], extensions={}, ssrc=ssrc))
        described.append(
            {
                "mid": mid,
                "kind": kind,
                "mime": codec.mime,
                "clock_rate": codec.clock_rate,
                "channels": codec.channels,
                "fmtp": dict(codec.fmtp),
                "payload_type": codec.payload_type,
                "ssrc": ssrc,
            }
        )
    plan = MediaPlan(recv=recv, send=send, remote_fingerprints=[], dtls_server=True)
    return plan, described
