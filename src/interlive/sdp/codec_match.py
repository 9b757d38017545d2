"""Whether an offered codec's fmtp parameters fit one of ours: the default strategy.

Negotiation (:mod:`interlive.sdp.negotiate`) takes the strategy as a parameter
of type :data:`FmtpMatch`, called as ``fmtp_match(mime, offered, local)`` once
the media type and clock rate already agree.  ``mime`` is the capability's,
e.g. ``"video/H264"``; the two mappings have lower-case keys.  The default:

* H.264: same packetization-mode and same profile of profile-level-id
  (RFC 6184 §8.1-8.2.2; levels may differ), by
  :func:`interlive.codecs.h264.h264_fmtp_match`;
* VP9: same profile-id, absent meaning 0 (RFC 9628 §6);
* anything else: a match (VP8, Opus, rtx, RED, FEC have no parameter that
  makes two configurations incompatible).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["FmtpMatch", "default_fmtp_match"]

FmtpMatch = Callable[[str, Mapping[str, str], Mapping[str, str]], bool]
"""``(mime, offered fmtp, local fmtp) -> bool``."""


def default_fmtp_match(mime: str, offered: Mapping[str, str], local: Mapping[str, str]) -> bool:
    """Whether ``offered`` and ``local`` describe the same configuration of ``mime``."""
    subtype = mime.partition("/")[2].lower()
    if subtype == "h264":
        from interlive.codecs.h264 import h264_fmtp_match

        return h264_fmtp_match(offered, local)
    if subtype == "vp9":
        return offered.get("profile-id", "0").strip() == local.get("profile-id", "0").strip()
    return True
