"""What interlive requires of an SDP offer before negotiating it.

The parser checks syntax; this checks that the offer describes something the
server can connect to, with one clear reason when it does not:

* at least one media section, and unique mids (RFC 8843 §7.2);
* for every audio/video section not rejected: proto ``UDP/TLS/RTP/SAVPF``
  (JSEP, RFC 8829/9429 §5.1.2), ICE credentials of legal length and characters
  (RFC 8839 §5.4), a DTLS fingerprint (RFC 8122 §5) and ``a=setup`` of actpass,
  active or passive (RFC 5763 §5), each at media or session level (or from the
  BUNDLE-tagged section, see :func:`~interlive.sdp.model.effective_ice`);
  and ``a=rtcp-mux`` (RFC 5761 §5.1.3), since the server multiplexes RTP and
  RTCP on one port;
* a BUNDLE group (RFC 8843) holding every such section, unless there is only one:
  the server runs one ICE/DTLS transport per peer.

Sections of other kinds (``m=application`` data channels) are not checked: the
answer rejects them.
"""

from __future__ import annotations

import re

from interlive.sdp.errors import SdpError
from interlive.sdp.model import MediaSection, SessionDescription, effective_ice

__all__ = ["MEDIA_KINDS", "RTP_PROTO", "is_negotiable", "validate_offer"]

RTP_PROTO = "UDP/TLS/RTP/SAVPF"
MEDIA_KINDS = frozenset({"audio", "video"})
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")
_SETUP_IN_OFFER = ("actpass", "active", "passive")


def is_negotiable(media: MediaSection) -> bool:
    """Whether interlive may accept this section: audio or video, not rejected."""
    return media.kind in MEDIA_KINDS and not media.rejected


def validate_offer(session: SessionDescription) -> None:
    """Raise :class:`SdpError` saying what is wrong if interlive cannot answer ``session``."""
    if not session.media:
        raise SdpError("no media sections")
    mids: dict[str, int] = {}
    for index, media in enumerate(session.media):
        if media.mid is None:
            continue
        if media.mid in mids:
            raise SdpError(f"duplicate mid {media.mid!r} (media {mids[media.mid]} and {index})")
        mids[media.mid] = index

    usable = [(i, m) for i, m in enumerate(session.media) if is_negotiable(m)]
    if not usable:
        raise SdpError("no audio or video media section to accept")
    for index, media in usable:
        _validate_media(session, media, index)

    bundle = session.bundle_group()
    if bundle is not None:
        for mid in bundle.mids:
            if mid not in mids:
                raise SdpError(f"the BUNDLE group names mid {mid!r}, which no media section has")
    if len(usable) == 1:
        return
    if bundle is None:
        raise SdpError(
            "no BUNDLE group: an offer with several media sections must bundle them "
            "(a=group:BUNDLE, RFC 8843); interlive uses one transport per peer"
        )
    for index, media in usable:
        if media.mid is None:
            raise SdpError(f"media {index} has no a=mid, needed for BUNDLE")
        if media.mid not in bundle.mids:
            raise SdpError(f"{media.describe(index)} is not in the BUNDLE group")


def _validate_media(session: SessionDescription, media: MediaSection, index: int) -> None:
    where = media.describe(index)
    if media.proto != RTP_PROTO:
        raise SdpError(
            f"{where}: unsupported proto {media.proto!r}; {RTP_PROTO} required for {media.kind}"
        )
    ice = effective_ice(session, media)
    if ice.ice_ufrag is None:
        raise SdpError(f"{where}: missing ice-ufrag")
    if ice.ice_pwd is None:
        raise SdpError(f"{where}: missing ice-pwd")
    for name, value, low in (("ice-ufrag", ice.ice_ufrag, 4), ("ice-pwd", ice.ice_pwd, 22)):
        if not low <= len(value) <= 256 or not _ICE_CHARS.fullmatch(value):
            raise SdpError(
                f"{where}: {name} {value!r} must be {low}-256 characters of "
                "A-Z a-z 0-9 + / (RFC 8839 §5.4)"
            )
    if not ice.fingerprints:
        raise SdpError(f"{where}: fingerprint missing (DTLS-SRTP needs a=fingerprint)")
    if ice.setup is None:
        raise SdpError(f"{where}: missing a=setup")
    if ice.setup not in _SETUP_IN_OFFER:
        raise SdpError(
            f"{where}: a=setup:{ice.setup} in an offer (need actpass, active or passive)"
        )
    if not media.rtcp_mux:
        raise SdpError(
            f"{where}: a=rtcp-mux required: interlive sends RTP and RTCP on one port (RFC 5761)"
        )
