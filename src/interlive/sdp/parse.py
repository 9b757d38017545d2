"""SDP text to :class:`~interlive.sdp.model.SessionDescription` (RFC 8866 §5, §9 grammar).

Theory of operation: the text is cut into ``<type>=<value>`` lines (CRLF or LF;
blank lines and trailing blanks ignored).  Lines before the first ``m=`` fill
the session; each ``m=`` opens a :class:`MediaSection`.  Attributes with a
meaning for WebRTC are parsed into fields (see the model's docstring), the rest
kept in order.  Per payload type, ``rtpmap``/``fmtp``/``rtcp-fb`` lines may come in
any order, so they are collected while the section is read and turned into
:class:`Codec` objects, in the ``m=`` line's order, when the section ends.
Payload types 0-34 without an rtpmap get their static mapping (RFC 3551 §6).

Only syntax is checked here, and strictly: every malformed line raises
:class:`SdpError` naming the line.  Whether an offer is acceptable (ICE
credentials, fingerprint, rtcp-mux, BUNDLE) is :func:`interlive.sdp.validate.validate_offer`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from interlive.rtp.types import PayloadType, Ssrc
from interlive.sdp.errors import SdpError
from interlive.sdp.model import (
    DIRECTIONS,
    Attribute,
    Codec,
    Direction,
    Extmap,
    Fingerprint,
    Group,
    MediaSection,
    Origin,
    Rid,
    SessionDescription,
    Simulcast,
    SsrcGroup,
)

__all__ = ["STATIC_PAYLOAD_TYPES", "parse_m_line", "parse_params", "parse_session", "split_lines"]

# RFC 3551 §6, the static payload types still met in practice (name, clock rate, channels).
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    13: ("CN", 8000, 1),
    18: ("G729", 8000, 1),
    26: ("JPEG", 90000, None),
    34: ("H263", 90000, None),
}

_HEX_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+")
_RID_ID = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 8866 §9 token
_SESSION_TYPES = frozenset("vosiuepcbtrzkam")
_MEDIA_TYPES = frozenset("icbkam")
# Canonical rank of the other typed lines (RFC 8866 §5 order); a stable sort
# by it makes the parsed order match what the writer emits.
_SESSION_LINE_RANK = {"i": 0, "u": 0, "e": 0, "p": 0, "b": 1, "t": 2, "r": 2, "z": 2, "k": 2}
_MEDIA_LINE_RANK = {"i": 0, "b": 1, "k": 1}
_FLAGS = frozenset(
    {"rtcp-mux", "rtcp-rsize", "end-of-candidates", "bundle-only", "extmap-allow-mixed", "ice-lite"}
)


def parse_session(text: str) -> SessionDescription:
    """Parse SDP text; raise :class:`SdpError` with the line number when malformed."""
    lines = split_lines(text)
    if not lines:
        raise SdpError("empty session description")
    lineno, kind, value = lines[0]
    if kind != "v" or value.strip() != "0":
        raise SdpError(f"line {lineno}: a session description starts with v=0")
    session = SessionDescription()
    session_direction: Direction | None = None
    seen: set[str] = set()
    builder: _MediaBuilder | None = None
    for lineno, kind, value in lines[1:]:
        if kind == "m":
            if builder is not None:
                session.media.append(builder.finish())
            builder = _MediaBuilder(parse_m_line(lineno, value), len(session.media))
            continue
        if builder is not None:
            if kind not in _MEDIA_TYPES:
                raise SdpError(f"line {lineno}: {kind}= is not allowed in a media section")
            builder.line(lineno, kind, value)
            continue
        if kind not in _SESSION_TYPES or kind == "v":
            what = "a second v= line" if kind == "v" else f"unknown line type {kind!r}"
            raise SdpError(f"line {lineno}: {what}")
        if kind in "osc":
            if kind in seen:
                raise SdpError(f"line {lineno}: duplicate {kind}= line")
            seen.add(kind)
        if kind == "o":
            session.origin = _parse_origin(lineno, value)
        elif kind == "s":
            session.session_name = value
        elif kind == "c":
            session.connection = value
        elif kind == "t" and "t" not in seen:
            seen.add("t")
            session.timing = value
        elif kind == "a":
            direction = _session_attribute(session, lineno, value)
            if direction is not None:
                if session_direction is not None:
                    raise SdpError(f"line {lineno}: second direction attribute")
                session_direction = direction
        else:
            session.other_lines.append((kind, value))
    if builder is not None:
        session.media.append(builder.finish())
    for required, name in (("o", "o="), ("s", "s="), ("t", "t=")):
        if required not in seen:
            raise SdpError(f"missing {name} line")
    session.other_lines.sort(key=lambda line: _SESSION_LINE_RANK[line[0]])
    if session_direction is not None:
        for media in session.media:
            if media.direction is None:
                media.direction = session_direction
    return session


def parse_params(text: str, *, what: str, lineno: int) -> dict[str, str]:
    """``a=b;c=d`` parameters as an ordered dict with lower-case names.

    A parameter without ``=`` maps to ``""``; empty items are skipped.
    """
    params: dict[str, str] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, val = item.partition("=")
        key = key.strip().lower()
        if not key:
            raise SdpError(f"line {lineno}: bad {what} parameter {item!r}")
        params[key] = val.strip()
    return params


def split_lines(text: str) -> list[tuple[int, str, str]]:
    """``(line number, type letter, value)`` per non-blank line; CRLF or LF endings."""
    result: list[tuple[int, str, str]] = []
    for index, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip(" \t\r")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise SdpError(f"line {index}: expected <type>=<value>, got {shown!r}")
        result.append((index, line[0], line[2:]))
    return result


def _is_uint(text: str, limit: int) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 20 and int(text) < limit


def _parse_origin(lineno: int, value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6 or not _is_uint(parts[1], 1 << 64) or not _is_uint(parts[2], 1 << 64):
        raise SdpError(f"line {lineno}: bad o= line {value!r}")
    return Origin(parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4], parts[5])


def parse_m_line(lineno: int, value: str) -> MediaSection:
    """An empty :class:`MediaSection` from the value of an ``m=`` line."""
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"line {lineno}: bad m= line {value!r} (need <media> <port> <proto> <fmt>)")
    kind, port_text, proto, *formats = parts
    if not _TOKEN.fullmatch(kind):
        raise SdpError(f"line {lineno}: bad media type {kind!r}")
    port_part, slash, count = port_text.partition("/")
    if not _is_uint(port_part, 65536) or (slash and not _is_uint(count, 65536)):
        raise SdpError(f"line {lineno}: bad port {port_text!r} in m= line")
    media = MediaSection(
        kind=kind,
        port=int(port_part),
        proto=proto,
        formats=formats,
        num_ports=int(count) if slash else None,
    )
    if media.is_rtp:
        seen: set[int] = set()
        for fmt in formats:
            if not _is_uint(fmt, 128):
                raise SdpError(f"line {lineno}: bad payload type {fmt!r} in m= line")
            if int(fmt) in seen:
                raise SdpError(f"line {lineno}: payload type {fmt} listed twice in m= line")
            seen.add(int(fmt))
    return media


def _parse_fingerprint(lineno: int, value: str) -> Fingerprint:
    parts = value.split()
    if (
        len(parts) != 2
        or not _TOKEN.fullmatch(parts[0])
        or not _HEX_FINGERPRINT.fullmatch(parts[1])
    ):
        raise SdpError(f"line {lineno}: bad fingerprint {value!r}")
    return Fingerprint(parts[0], parts[1])


def _parse_direction(name: str) -> Direction | None:
    for direction in DIRECTIONS:
        if name == direction:
            return direction
    return None


def _split_attribute(lineno: int, value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"line {lineno}: attribute without a name: 'a={value}'")
    return name, (rest if colon else None)


def _require(lineno: int, name: str, value: str | None) -> str:
    if value is None or not value.strip():
        raise SdpError(f"line {lineno}: a={name} needs a value")
    return value.strip()


def _session_attribute(session: SessionDescription, lineno: int, text: str) -> Direction | None:
    """Apply one session-level attribute; return it if it is a direction."""
    name, value = _split_attribute(lineno, text)
    if value is None and name in _FLAGS:
        if name == "ice-lite":
            session.ice_lite = True
            return None
        if name == "extmap-allow-mixed":
            session.extmap_allow_mixed = True
            return None
    if value is None:
        direction = _parse_direction(name)
        if direction is not None:
            return direction
    if name == "ice-ufrag":
        session.ice_ufrag = _single(lineno, name, session.ice_ufrag, value)
    elif name == "ice-pwd":
        session.ice_pwd = _single(lineno, name, session.ice_pwd, value)
    elif name == "ice-options":
        session.ice_options = _require(lineno, name, value).split()
    elif name == "fingerprint":
        session.fingerprints.append(_parse_fingerprint(lineno, _require(lineno, name, value)))
    elif name == "setup":
        session.setup = _single(lineno, name, session.setup, value)
    elif name == "group":
        parts = _require(lineno, name, value).split()
        session.groups.append(Group(parts[0], tuple(parts[1:])))
    elif name == "msid-semantic" and value is not None:
        if session.msid_semantic is not None:
            raise SdpError(f"line {lineno}: duplicate a=msid-semantic")
        session.msid_semantic = value.strip()
    else:
        session.attributes.append(Attribute(name, value))
    return None


def _single(lineno: int, name: str, current: str | None, value: str | None) -> str:
    if current is not None:
        raise SdpError(f"line {lineno}: duplicate a={name}")
    return _require(lineno, name, value)


@dataclass
class _MediaBuilder:
    """Collects one media section's lines, then builds its codecs."""

    media: MediaSection
    index: int
    rtpmaps: dict[int, tuple[int, str, int, int | None]] = field(default_factory=dict)
    fmtps: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    rtcp_fbs: dict[int, tuple[int, list[str]]] = field(default_factory=dict)
    seen_c: bool = False

    def line(self, lineno: int, kind: str, value: str) -> None:
        if kind == "c":
            if self.seen_c:
                raise SdpError(f"line {lineno}: duplicate c= line in {self._where()}")
            self.seen_c = True
            self.media.connection = value
        elif kind == "a":
            self.attribute(lineno, value)
        else:
            self.media.other_lines.append((kind, value))

    def attribute(self, lineno: int, text: str) -> None:
        media = self.media
        name, value = _split_attribute(lineno, text)
        if value is None:
            if self.flag(name):
                return
            direction = _parse_direction(name)
            if direction is not None:
                if media.direction is not None:
                    raise SdpError(f"line {lineno}: second direction attribute")
                media.direction = direction
                return
        if media.is_rtp and value is not None and self.rtp_attribute(lineno, name, value):
            return
        if name == "mid":
            media.mid = _single(lineno, name, media.mid, value)
        elif name == "candidate":
            media.candidates.append(_require(lineno, name, value))
        elif name == "ice-ufrag":
            media.ice_ufrag = _single(lineno, name, media.ice_ufrag, value)
        elif name == "ice-pwd":
            media.ice_pwd = _single(lineno, name, media.ice_pwd, value)
        elif name == "ice-options":
            media.ice_options = _require(lineno, name, value).split()
        elif name == "fingerprint":
            media.fingerprints.append(_parse_fingerprint(lineno, _require(lineno, name, value)))
        elif name == "setup":
            media.setup = _single(lineno, name, media.setup, value)
        elif name == "rtcp" and value is not None and media.rtcp is None:
            media.rtcp = _require(lineno, name, value)
        else:
            media.attributes.append(Attribute(name, value))

    def flag(self, name: str) -> bool:
        media = self.media
        if name == "rtcp-mux":
            media.rtcp_mux = True
        elif name == "rtcp-rsize":
            media.rtcp_rsize = True
        elif name == "end-of-candidates":
            media.end_of_candidates = True
        elif name == "bundle-only":
            media.bundle_only = True
        elif name == "extmap-allow-mixed":
            media.extmap_allow_mixed = True
        else:
            return False
        return True

    def rtp_attribute(self, lineno: int, name: str, value: str) -> bool:
        """Handle an attribute only RTP sections have; False if ``name`` is not one."""
        media = self.media
        if name == "rtpmap":
            self.rtpmap(lineno, value)
        elif name == "fmtp":
            pt, rest = self.payload_type(lineno, name, value)
            if pt in self.fmtps:
                raise SdpError(f"line {lineno}: second fmtp for payload type {pt}")
            self.fmtps[pt] = (lineno, parse_params(rest, what="fmtp", lineno=lineno))
        elif name == "rtcp-fb":
            if value.split(maxsplit=1)[:1] == ["*"]:
                return False  # wildcard feedback: kept as a plain attribute
            pt, rest = self.payload_type(lineno, name, value)
            if not rest.strip():
                raise SdpError(f"line {lineno}: rtcp-fb without a feedback type")
            self.rtcp_fbs.setdefault(pt, (lineno, []))[1].append(" ".join(rest.split()))
        elif name == "extmap":
            media.extmaps.append(self.extmap(lineno, value))
        elif name == "ssrc":
            self.ssrc(lineno, value)
        elif name == "ssrc-group":
            parts = value.split()
            if not parts or not all(_is_uint(p, 1 << 32) for p in parts[1:]):
                raise SdpError(f"line {lineno}: bad ssrc-group {value!r}")
            ssrcs = tuple(Ssrc(int(p)) for p in parts[1:])
            media.ssrc_groups.append(SsrcGroup(parts[0], ssrcs))
        elif name == "msid" and media.msid is None:
            parts = value.split(maxsplit=1)
            if not parts:
                raise SdpError(f"line {lineno}: a=msid needs a value")
            media.msid = (parts[0], parts[1] if len(parts) > 1 else "")
        elif name == "rid":
            media.rids.append(_parse_rid(lineno, value))
        elif name == "simulcast":
            if media.simulcast is not None:
                raise SdpError(f"line {lineno}: duplicate a=simulcast")
            media.simulcast = _parse_simulcast(lineno, value)
        else:
            return False
        return True

    def payload_type(self, lineno: int, name: str, value: str) -> tuple[int, str]:
        head, _, rest = value.strip().partition(" ")
        if not _is_uint(head, 128):
            raise SdpError(f"line {lineno}: bad payload type in a={name}:{value}")
        pt = int(head)
        if head not in self.media.formats and str(pt) not in self.media.formats:
            raise SdpError(f"line {lineno}: a={name} for payload type {pt}, not in the m= line")
        return pt, rest

    def rtpmap(self, lineno: int, value: str) -> None:
        pt, rest = self.payload_type(lineno, "rtpmap", value)
        parts = rest.strip().split("/")
        if (
            len(parts) not in (2, 3)
            or not parts[0]
            or not _is_uint(parts[1], 1 << 32)
            or (len(parts) == 3 and not _is_uint(parts[2], 256))
        ):
            raise SdpError(f"line {lineno}: bad rtpmap {value!r} (need <pt> <name>/<rate>[/<ch>])")
        if pt in self.rtpmaps:
            raise SdpError(f"line {lineno}: second rtpmap for payload type {pt}")
        channels = int(parts[2]) if len(parts) == 3 else None
        self.rtpmaps[pt] = (lineno, parts[0], int(parts[1]), channels)

    def extmap(self, lineno: int, value: str) -> Extmap:
        parts = value.split(maxsplit=2)
        if len(parts) < 2:
            raise SdpError(f"line {lineno}: bad extmap {value!r}")
        id_text, slash, direction_text = parts[0].partition("/")
        direction = _parse_direction(direction_text) if slash else None
        if not _is_uint(id_text, 256) or int(id_text) == 0 or (slash and direction is None):
            raise SdpError(f"line {lineno}: bad extmap id {parts[0]!r} (1-255[/direction])")
        ext_id = int(id_text)
        if any(ext.id == ext_id for ext in self.media.extmaps):
            raise SdpError(f"line {lineno}: extmap id {ext_id} used twice in {self._where()}")
        return Extmap(ext_id, parts[1], direction, parts[2] if len(parts) == 3 else None)

    def ssrc(self, lineno: int, value: str) -> None:
        parts = value.split(maxsplit=1)
        if len(parts) != 2 or not _is_uint(parts[0], 1 << 32):
            raise SdpError(f"line {lineno}: bad ssrc {value!r} (need <ssrc> <attribute>[:<value>])")
        attr, _, attr_value = parts[1].partition(":")
        if not attr:
            raise SdpError(f"line {lineno}: bad ssrc attribute {parts[1]!r}")
        self.media.ssrcs.setdefault(Ssrc(int(parts[0])), {})[attr] = attr_value

    def finish(self) -> MediaSection:
        media = self.media
        # i= before b=/k= in every section, as the writer emits them (RFC 8866 §5)
        media.other_lines.sort(key=lambda line: _MEDIA_LINE_RANK[line[0]])
        if not media.is_rtp:
            return media
        for pt, (_, name, rate, channels) in self.rtpmaps.items():
            codec = Codec(PayloadType(pt), name, rate, channels, kind=media.kind)
            self._attach(codec)
            media.codecs.append(codec)
        for fmt in media.formats:
            pt = int(fmt)
            if pt not in self.rtpmaps and pt in STATIC_PAYLOAD_TYPES:
                name, rate, channels = STATIC_PAYLOAD_TYPES[pt]
                codec = Codec(PayloadType(pt), name, rate, channels, kind=media.kind)
                self._attach(codec)
                media.codecs.append(codec)
        for pt, (lineno, _) in (*self.fmtps.items(), *self.rtcp_fbs.items()):
            if media.codec(pt) is None:
                raise SdpError(f"line {lineno}: payload type {pt} has attributes but no rtpmap")
        order = {int(fmt): index for index, fmt in enumerate(media.formats)}
        media.codecs.sort(key=lambda codec: order[codec.payload_type])
        return media

    def _attach(self, codec: Codec) -> None:
        if codec.payload_type in self.fmtps:
            codec.fmtp = self.fmtps[codec.payload_type][1]
        if codec.payload_type in self.rtcp_fbs:
            codec.rtcp_fb = self.rtcp_fbs[codec.payload_type][1]

    def _where(self) -> str:
        return self.media.describe(self.index)


def _parse_rid(lineno: int, value: str) -> Rid:
    parts = value.split(maxsplit=2)
    if len(parts) < 2 or not _RID_ID.fullmatch(parts[0]) or parts[1] not in ("send", "recv"):
        raise SdpError(f"line {lineno}: bad rid {value!r} (need <id> send|recv [<params>])")
    direction: Literal["send", "recv"] = "send" if parts[1] == "send" else "recv"
    params = parse_params(parts[2], what="rid", lineno=lineno) if len(parts) == 3 else {}
    return Rid(parts[0], direction, params)


def _parse_simulcast(lineno: int, value: str) -> Simulcast:
    tokens = value.split()
    streams: dict[str, tuple[tuple[str, ...], ...]] = {}
    if not tokens or len(tokens) % 2:
        raise SdpError(f"line {lineno}: bad simulcast {value!r}")
    for direction, text in zip(tokens[::2], tokens[1::2], strict=True):
        if direction not in ("send", "recv") or direction in streams:
            raise SdpError(f"line {lineno}: bad simulcast direction {direction!r}")
        alternatives = tuple(tuple(stream.split(",")) for stream in text.split(";"))
        for stream in alternatives:
            for rid in stream:
                if not _RID_ID.fullmatch(rid.removeprefix("~")):
                    raise SdpError(f"line {lineno}: bad rid {rid!r} in simulcast")
        streams[direction] = alternatives
    return Simulcast(streams.get("send", ()), streams.get("recv", ()))
