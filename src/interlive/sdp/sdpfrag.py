"""Trickle ICE SDP fragments (RFC 8840 §9), as WHIP and WHEP use them in PATCH.

A WHIP/WHEP client trickles candidates, or restarts ICE with new credentials,
by PATCHing an ``application/trickle-ice-sdpfrag`` body to the session
(RFC 9725 §4.3); for a restart the server answers with a fragment of its own
new credentials and candidates.  A fragment holds session-level
``a=ice-ufrag``/``a=ice-pwd``/``a=ice-options``/``a=group`` lines, then
``m=`` lines (their values are placeholders, RFC 8840 §9.1) each followed by
``a=mid``, optionally credentials, ``a=candidate`` lines and
``a=end-of-candidates``.

Theory of operation: :func:`parse_sdpfrag` reads the lines with the SDP
parser's line splitter, allows only ``a=`` and ``m=`` lines (``c=``, ``i=``,
``b=`` and ``k=`` inside a media block are ignored), checks every candidate's
syntax, and merges the credentials: they may appear at session or media
level, but must agree, since with BUNDLE there is one ICE agent per session.
Unknown attributes are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from interlive.sdp.errors import SdpError
from interlive.sdp.model import Candidate, Group
from interlive.sdp.parse import parse_m_line, split_lines

__all__ = ["FragMedia", "SdpFrag", "build_sdpfrag", "parse_sdpfrag"]

_IGNORED_IN_MEDIA = frozenset("cibk")
_NEED_VALUE = frozenset({"ice-ufrag", "ice-pwd", "mid", "candidate", "group", "ice-options"})


@dataclass(frozen=True, slots=True)
class FragMedia:
    """One ``m=`` block of a fragment (or the session level, ``mid`` ``None``)."""

    mid: str | None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SdpFrag:
    """A parsed trickle-ice-sdpfrag.

    ``media`` lists the blocks in order; candidates outside any ``m=`` block go
    into a first block with ``mid`` ``None``.  ``candidates`` are the values
    after ``a=candidate:``, syntax-checked.  ``end_of_candidates`` is set when
    any block (or the session level) says so.
    """

    ice_ufrag: str | None
    ice_pwd: str | None
    ice_options: tuple[str, ...]
    media: tuple[FragMedia, ...]
    end_of_candidates: bool
    ice_lite: bool = False
    groups: tuple[Group, ...] = ()

    @property
    def candidates(self) -> list[tuple[str | None, str]]:
        """Every candidate as ``(mid, candidate value)``, in order."""
        return [(block.mid, cand) for block in self.media for cand in block.candidates]


@dataclass
class _Block:
    mid: str | None
    candidates: list[str]


def parse_sdpfrag(text: str) -> SdpFrag:
    """Parse an ``application/trickle-ice-sdpfrag`` body; raise :class:`SdpError` if malformed."""
    lines = split_lines(text)
    if not lines:
        raise SdpError("empty sdpfrag")
    ufrag: str | None = None
    pwd: str | None = None
    options: tuple[str, ...] = ()
    groups: list[Group] = []
    ice_lite = False
    end = False
    session = _Block(None, [])
    blocks: list[_Block] = []
    current = session

    for lineno, kind, value in lines:
        if kind == "m":
            parse_m_line(lineno, value)
            current = _Block(None, [])
            blocks.append(current)
            continue
        if kind in _IGNORED_IN_MEDIA and current is not session:
            continue
        if kind != "a":
            raise SdpError(
                f"line {lineno}: {kind}= is not allowed in a trickle-ice-sdpfrag (RFC 8840 §9)"
            )
        name, colon, attr = value.partition(":")
        attr = attr.strip()
        if name in _NEED_VALUE and not (colon and attr):
            raise SdpError(f"line {lineno}: a={name} needs a value")
        if name == "ice-ufrag":
            if ufrag is not None and ufrag != attr:
                raise SdpError(f"line {lineno}: ice-ufrag {attr!r} differs from {ufrag!r}")
            ufrag = attr
        elif name == "ice-pwd":
            if pwd is not None and pwd != attr:
                raise SdpError(f"line {lineno}: ice-pwd differs from an earlier one")
            pwd = attr
        elif name == "ice-options":
            options = tuple(attr.split())
        elif name == "ice-lite" and not colon:
            ice_lite = True
        elif name == "group":
            parts = attr.split()
            groups.append(Group(parts[0], tuple(parts[1:])))
        elif name == "mid":
            if current is session:
                raise SdpError(f"line {lineno}: a=mid outside an m= block")
            if current.mid is not None:
                raise SdpError(f"line {lineno}: duplicate a=mid")
            current.mid = attr
        elif name == "candidate":
            try:
                Candidate.parse(attr)
            except SdpError as exc:
                raise SdpError(f"line {lineno}: {exc}") from None
            current.candidates.append(attr)
        elif name == "end-of-candidates":
            end = True
    if session.candidates:
        blocks.insert(0, session)
    return SdpFrag(
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        ice_options=options,
        media=tuple(FragMedia(block.mid, tuple(block.candidates)) for block in blocks),
        end_of_candidates=end,
        ice_lite=ice_lite,
        groups=tuple(groups),
    )


def build_sdpfrag(
    *,
    ice_ufrag: str,
    ice_pwd: str,
    candidates: Sequence[Candidate],
    mid: str,
    kind: str = "audio",
    fmt: str = "0",
    bundle_mids: Sequence[str] = (),
    ice_lite: bool = True,
    ice_options: Sequence[str] = (),
    end_of_candidates: bool = True,
) -> str:
    """The server's fragment for an ICE restart answer (RFC 9725 §4.3.2).

    One ``m=`` block for ``mid`` (with BUNDLE, the tagged section: the first
    of ``bundle_mids``) carries the new credentials and candidates.
    """
    out: list[str] = []
    if ice_lite:
        out.append("a=ice-lite")
    if ice_options:
        out.append("a=ice-options:" + " ".join(ice_options))
    if bundle_mids:
        out.append("a=group:BUNDLE " + " ".join(bundle_mids))
    out += [
        f"m={kind} 9 UDP/TLS/RTP/SAVPF {fmt}",
        f"a=mid:{mid}",
        f"a=ice-ufrag:{ice_ufrag}",
        f"a=ice-pwd:{ice_pwd}",
    ]
    out += [f"a=candidate:{candidate}" for candidate in candidates]
    if end_of_candidates:
        out.append("a=end-of-candidates")
    return "\r\n".join(out) + "\r\n"
