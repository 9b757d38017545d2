"""The session description model: what an SDP offer or answer says, as plain values.

Follows SDP (RFC 8866) as WebRTC uses it (JSEP, RFC 8829/9429): one
:class:`SessionDescription` with its session-level lines, then one
:class:`MediaSection` per ``m=`` line.  Attributes WebRTC relies on are parsed
into fields:

* ICE and DTLS: ``ice-ufrag``/``ice-pwd``/``ice-options``/``ice-lite`` and
  ``candidate``/``end-of-candidates`` (RFC 8839), ``fingerprint`` (RFC 8122) and
  ``setup`` (RFC 4145, RFC 5763), at session or media level;
* BUNDLE (RFC 8843): ``group``, ``mid``, ``bundle-only``;
* RTP: ``rtpmap``/``fmtp``/``rtcp-fb`` per payload type (RFC 8866 §6.6, RFC 4585),
  ``extmap`` and ``extmap-allow-mixed`` (RFC 8285), ``rtcp-mux`` (RFC 5761),
  ``rtcp-rsize`` (RFC 5506), ``rtcp`` (RFC 3605), ``ssrc``/``ssrc-group`` (RFC 5576),
  ``msid`` (RFC 8830), ``rid`` (RFC 8851), ``simulcast`` (RFC 8853) and the direction.

Every other attribute is kept, in order, in ``attributes``; other typed lines
(``i=``, ``b=``, ...) in ``other_lines``.  Parsing then serialising gives back an
equal model (``SessionDescription.parse(str(s)) == s``); attributes are written
in one canonical order (the order Chrome writes them), so Chrome's offers come
back byte for byte.

fmtp parameters are an ordered ``dict``.  Their names are case-insensitive
(media type parameters, RFC 6838 §4.3), so the parser lower-cases them: look
them up with lower-case keys.  Values are kept as written.  A parameter with no
``=`` (Opus RED's ``111/111``) is stored with the value ``""`` and written back bare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from interlive.rtp.types import PayloadType, Ssrc
from interlive.sdp.errors import SdpError

__all__ = [
    "DIRECTIONS",
    "Attribute",
    "Candidate",
    "Codec",
    "Direction",
    "EffectiveIce",
    "Extmap",
    "Fingerprint",
    "Group",
    "MediaSection",
    "Origin",
    "Rid",
    "SessionDescription",
    "Simulcast",
    "SsrcGroup",
    "effective_ice",
    "is_rtx",
    "rtx_apt",
]

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True, slots=True)
class Attribute:
    """An ``a=`` line kept as written: ``a=name`` (value ``None``) or ``a=name:value``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line (RFC 8866 §5.2)."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """``a=fingerprint:<algorithm> <value>`` (RFC 8122 §5): the DTLS certificate's hash.

    ``value`` is upper- or lower-case hex octets joined by colons, kept as written.
    """

    algorithm: str
    value: str

    def __str__(self) -> str:
        return f"{self.algorithm} {self.value}"


@dataclass(frozen=True, slots=True)
class Group:
    """``a=group:<semantics> <mid> ...`` (RFC 5888), e.g. BUNDLE (RFC 8843)."""

    semantics: str
    mids: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join((self.semantics, *self.mids))


@dataclass(slots=True)
class Codec:
    """One payload type of an RTP media section: its rtpmap, fmtp and rtcp-fb lines.

    ``channels`` is ``None`` when the rtpmap gives none (one channel for audio).
    ``fmtp`` keys are lower-case (see the module docstring); ``rtcp_fb`` holds the
    feedback types as written after the payload type, e.g. ``"nack pli"``.
    ``kind`` is the media section's kind; it makes :attr:`mime`.
    """

    payload_type: PayloadType
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)
    rtcp_fb: list[str] = field(default_factory=list)
    kind: str = field(kw_only=True)

    @property
    def mime(self) -> str:
        """The media type as ``kind/name``, e.g. ``"video/VP8"`` (compare case-insensitively)."""
        return f"{self.kind}/{self.name}"


def is_rtx(codec: Codec) -> bool:
    """Whether ``codec`` is a retransmission payload type (RFC 4588 ``rtx``)."""
    return codec.name.lower() == "rtx"


def rtx_apt(codec: Codec) -> PayloadType | None:
    """The payload type an rtx codec retransmits (its ``apt``), or ``None``.

    ``None`` too when ``codec`` is not rtx or its apt is missing or not a payload type.
    """
    if not is_rtx(codec):
        return None
    apt = codec.fmtp.get("apt", "").strip()
    if not (apt.isascii() and apt.isdigit()) or int(apt) > 127:
        return None
    return PayloadType(int(apt))


@dataclass(frozen=True, slots=True)
class Extmap:
    """``a=extmap:<id>[/<direction>] <uri> [<attributes>]`` (RFC 8285 §5)."""

    id: int
    uri: str
    direction: Direction | None = None
    attributes: str | None = None

    def __str__(self) -> str:
        head = str(self.id) if self.direction is None else f"{self.id}/{self.direction}"
        text = f"{head} {self.uri}"
        return text if self.attributes is None else f"{text} {self.attributes}"


@dataclass(frozen=True, slots=True)
class SsrcGroup:
    """``a=ssrc-group:<semantics> <ssrc> ...`` (RFC 5576 §4.2), e.g. FID (RTX) or SIM."""

    semantics: str
    ssrcs: tuple[Ssrc, ...]

    def __str__(self) -> str:
        return " ".join((self.semantics, *(str(s) for s in self.ssrcs)))


@dataclass(frozen=True, slots=True)
class Rid:
    """``a=rid:<id> <send|recv> [<params>]`` (RFC 8851 §10).

    ``params`` is the ``;``-separated restriction list as an ordered dict, e.g.
    ``{"pt": "96,97", "max-width": "1280"}``; a bare parameter maps to ``""``.
    """

    id: str
    direction: Literal["send", "recv"]
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{self.id} {self.direction}"
        if self.params:
            text += " " + _join_params(self.params)
        return text


@dataclass(frozen=True, slots=True)
class Simulcast:
    """``a=simulcast`` (RFC 8853 §5.1): the simulcast streams sent and received.

    Each list entry is one simulcast stream, given as its alternative rids in
    preference order; a rid starting with ``~`` is paused.  Chrome's
    ``send q;h;f`` is ``send=[["q"], ["h"], ["f"]]``.
    """

    send: tuple[tuple[str, ...], ...] = ()
    recv: tuple[tuple[str, ...], ...] = ()

    def rids(self, direction: Literal["send", "recv"]) -> list[str]:
        """Every rid of ``direction`` (all alternatives), without the paused mark."""
        streams = self.send if direction == "send" else self.recv
        return [rid.removeprefix("~") for stream in streams for rid in stream]

    def __str__(self) -> str:
        parts: list[str] = []
        for name, streams in (("send", self.send), ("recv", self.recv)):
            if streams:
                parts.append(name)
                parts.append(";".join(",".join(stream) for stream in streams))
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An ICE candidate (RFC 8839 §5.1), the value of ``a=candidate:``.

    ``extensions`` keeps the trailing name/value pairs other than raddr, rport
    and tcptype (``generation 0``, ``network-id 3``, ``ufrag ...``) in order.
    """

    foundation: str
    component: int
    transport: str
    priority: int
    ip: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcptype: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: str) -> Candidate:
        """Parse the text after ``a=candidate:``; raise :class:`SdpError` when malformed."""
        tokens = value.split()
        if len(tokens) < 8 or tokens[6] != "typ" or len(tokens) % 2:
            raise SdpError(f"bad candidate {value!r}")
        foundation, component, transport, priority, ip, port, _, typ = tokens[:8]
        if not 1 <= len(foundation) <= 32 or not _is_uint(component, 256):
            raise SdpError(f"bad candidate {value!r}")
        if not _is_uint(priority, 1 << 32) or not _is_uint(port, 65536):
            raise SdpError(f"bad candidate {value!r}")
        raddr: str | None = None
        rport: int | None = None
        tcptype: str | None = None
        extensions: list[tuple[str, str]] = []
        for key, val in zip(tokens[8::2], tokens[9::2], strict=True):
            if key == "raddr":
                raddr = val
            elif key == "rport":
                if not _is_uint(val, 65536):
                    raise SdpError(f"bad candidate rport in {value!r}")
                rport = int(val)
            elif key == "tcptype":
                tcptype = val
            else:
                extensions.append((key, val))
        return cls(
            foundation,
            int(component),
            transport,
            int(priority),
            ip,
            int(port),
            typ,
            raddr,
            rport,
            tcptype,
            tuple(extensions),
        )

    def __str__(self) -> str:
        parts = [
            self.foundation,
            str(self.component),
            self.transport,
            str(self.priority),
            self.ip,
            str(self.port),
            "typ",
            self.type,
        ]
        if self.related_address is not None:
            parts += ["raddr", self.related_address]
        if self.related_port is not None:
            parts += ["rport", str(self.related_port)]
        if self.tcptype is not None:
            parts += ["tcptype", self.tcptype]
        for key, val in self.extensions:
            parts += [key, val]
        return " ".join(parts)


@dataclass(slots=True)
class MediaSection:
    """One ``m=`` section and its attributes.

    ``port`` 0 rejects the section unless ``bundle_only`` (RFC 8843 §6).
    ``direction`` is ``None`` when the section states none (sendrecv is then
    implied, RFC 8866 §6.7; see :attr:`effective_direction`); a session-level
    direction is copied into every section that lacks one when parsing.
    ``codecs`` follow the ``m=`` line's order (the offerer's preference);
    ``ssrcs`` maps each SSRC to its ``a=ssrc`` attributes (``cname``, ``msid``...)
    in order.  ``candidates`` are the raw values after ``a=candidate:``.
    """

    kind: str
    port: int
    proto: str
    formats: list[str]
    num_ports: int | None = None
    connection: str | None = None
    mid: str | None = None
    direction: Direction | None = None
    codecs: list[Codec] = field(default_factory=list)
    extmaps: list[Extmap] = field(default_factory=list)
    extmap_allow_mixed: bool = False
    ssrcs: dict[Ssrc, dict[str, str]] = field(default_factory=dict)
    ssrc_groups: list[SsrcGroup] = field(default_factory=list)
    msid: tuple[str, str] | None = None
    rids: list[Rid] = field(default_factory=list)
    simulcast: Simulcast | None = None
    rtcp: str | None = None
    rtcp_mux: bool = False
    rtcp_rsize: bool = False
    candidates: list[str] = field(default_factory=list)
    end_of_candidates: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: list[str] = field(default_factory=list)
    fingerprints: list[Fingerprint] = field(default_factory=list)
    setup: str | None = None
    bundle_only: bool = False
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        """Port 0 without ``a=bundle-only``: the section is rejected or disabled."""
        return self.port == 0 and not self.bundle_only

    @property
    def is_rtp(self) -> bool:
        """Whether the protocol carries RTP (its formats are payload types)."""
        return "RTP/" in self.proto

    @property
    def effective_direction(self) -> Direction:
        """The direction, sendrecv when none is stated."""
        return self.direction or "sendrecv"

    def codec(self, payload_type: int) -> Codec | None:
        """The codec with this payload type, or ``None``."""
        for codec in self.codecs:
            if codec.payload_type == payload_type:
                return codec
        return None

    def describe(self, index: int) -> str:
        """``"media 1 (mid 1)"``: how error messages name this section."""
        return f"media {index}" + ("" if self.mid is None else f" (mid {self.mid})")


@dataclass(slots=True)
class SessionDescription:
    """A whole session description: session-level lines, then the media sections.

    ``msid_semantic`` is the value of ``a=msid-semantic`` without the leading
    space Chrome writes, e.g. ``"WMS"`` or ``"WMS *"``.  ``timing`` is the first
    ``t=`` line; further ``t=``/``r=`` and ``i=``/``u=``/``e=``/``p=``/``b=``/
    ``z=``/``k=`` lines are kept in ``other_lines``.
    """

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    timing: str = "0 0"
    connection: str | None = None
    ice_lite: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: list[str] = field(default_factory=list)
    fingerprints: list[Fingerprint] = field(default_factory=list)
    setup: str | None = None
    groups: list[Group] = field(default_factory=list)
    extmap_allow_mixed: bool = False
    msid_semantic: str | None = None
    media: list[MediaSection] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        """Parse SDP text (lines ending in CRLF or LF); raise :class:`SdpError` when malformed.

        Only the syntax is checked here; :func:`interlive.sdp.validate_offer`
        checks what interlive needs of an offer.
        """
        from interlive.sdp.parse import parse_session

        return parse_session(text)

    def __str__(self) -> str:
        """The SDP text, CRLF line endings, attributes in canonical order."""
        from interlive.sdp.write import write_session

        return write_session(self)

    def bundle_group(self) -> Group | None:
        """The first ``a=group:BUNDLE``, or ``None``."""
        for group in self.groups:
            if group.semantics.upper() == "BUNDLE":
                return group
        return None

    def media_by_mid(self, mid: str) -> MediaSection | None:
        """The media section with this mid, or ``None``."""
        for media in self.media:
            if media.mid == mid:
                return media
        return None


@dataclass(frozen=True, slots=True)
class EffectiveIce:
    """The ICE and DTLS parameters that apply to one media section."""

    ice_ufrag: str | None
    ice_pwd: str | None
    ice_options: tuple[str, ...]
    fingerprints: tuple[Fingerprint, ...]
    setup: str | None


def effective_ice(session: SessionDescription, media: MediaSection) -> EffectiveIce:
    """The ICE/DTLS parameters of ``media``: its own, else the session's.

    For a section in a BUNDLE group, values neither it nor the session give are
    taken from the group's first (tagged) section, since bundled sections share
    its transport (RFC 8843 §7.1.3 lets later offers leave them out).
    """
    chain: list[MediaSection | SessionDescription] = [media, session]
    bundle = session.bundle_group()
    if bundle is not None and bundle.mids and media.mid in bundle.mids:
        tagged = session.media_by_mid(bundle.mids[0])
        if tagged is not None and tagged is not media:
            chain.append(tagged)
    return EffectiveIce(
        ice_ufrag=next((s.ice_ufrag for s in chain if s.ice_ufrag), None),
        ice_pwd=next((s.ice_pwd for s in chain if s.ice_pwd), None),
        ice_options=next((tuple(s.ice_options) for s in chain if s.ice_options), ()),
        fingerprints=next((tuple(s.fingerprints) for s in chain if s.fingerprints), ()),
        setup=next((s.setup for s in chain if s.setup), None),
    )


def _is_uint(text: str, limit: int) -> bool:
    """Whether ``text`` is ASCII decimal digits for a value below ``limit``."""
    return text.isascii() and text.isdigit() and len(text) <= 20 and int(text) < limit


def _join_params(params: dict[str, str]) -> str:
    return ";".join(key if value == "" else f"{key}={value}" for key, value in params.items())
