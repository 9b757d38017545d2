"""The m-lines of a participant's one peer connection, and offer/answer both ways.

A signaling (``/ws``) participant has a single peer connection carrying all its
tracks (unified plan, one BUNDLE transport).  The client opens it with an offer;
afterwards the server renegotiates it with offers of its own when stage tracks
appear and go.  :class:`Transceivers` is that negotiation's state on the server,
sans-IO: SDP models and plain values in, SDP models and a new table out.  The
worker applies the table to the session (``worker/conference.py``).

Theory of operation
-------------------
*Lines.*  The table holds one :class:`Line` per m= section, in order, named by
its mid.  A line carries media one way at most:

* the server *receives* on a line the client sends on (its offer or answer says
  ``sendonly`` or ``sendrecv``) while the participant may publish; a
  participant that may not publish (audience, demoted) gets ``inactive`` there,
  and its up-tracks stay held in the room;
* the server *sends* on a line the client only receives on (``recvonly``) the
  one stage track the line is *pinned* to; the line's SSRC (and RTX SSRC) are
  chosen once and kept for the line's life, so a line can be reused for another
  track with no change the client's RTP stack sees but the ``a=msid``.

*Client offers* (:meth:`Transceivers.answer`; initial, subsequent, or an ICE
restart) keep every existing line in place (JSEP: sections never move) and may
append new ones.  A ``recvonly`` line without a pin takes the first wanted track
of its kind it can carry; lines never gain tracks otherwise in an answer.

*Server offers* (:meth:`Transceivers.offer`) reconcile the table with the
tracks the participant should see (every stage track but its own, in the
room's order): a pin whose track went is dropped (the line becomes
``inactive``); a wanted track without a line takes an idle line the server sent
on before, of its kind and codec, or a new ``sendonly`` line appended with the
client's codecs for the kind (from its offers; or the server's own defaults).
Receiving lines follow the participant's right to publish.  Nothing to change:
no offer.  The offer is *pending* until :meth:`Transceivers.accept` applies the
client's answer (a line the client declines to receive loses its pin) or
:meth:`Transceivers.rollback` drops it (glare: a client offer crossed it).

*Decide, then apply.*  Every method checks everything that can fail before it
changes the table, so a bad description leaves it as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from interlive.rtp.types import PayloadType, Ssrc
from interlive.sdp import (
    Capabilities,
    MediaAnswer,
    MediaSection,
    NegotiatedCodec,
    OfferSection,
    SdpError,
    SendStream,
    SessionDescription,
    negotiate_media,
)
from interlive.sdp.model import Direction
from interlive.sdp.validate import MEDIA_KINDS, RTP_PROTO
from interlive.sfu.tracks import Codec, same_codec

__all__ = [
    "DEFAULT_PAYLOAD_TYPES",
    "Line",
    "StreamInfo",
    "TrackRef",
    "Transceivers",
    "carries",
    "sfu_codecs",
    "stream_id",
]

#: codecs that repair or protect others: never what a line is chosen for
_REPAIR = frozenset({"red", "ulpfec", "rtx", "flexfec", "flexfec-03"})

#: payload types of the server's own codec list, for a kind the client never offered
DEFAULT_PAYLOAD_TYPES: dict[str, tuple[int, int | None]] = {
    "audio/opus": (111, None),
    "video/vp8": (96, 97),
    "video/vp9": (98, 99),
    "video/h264": (102, 103),
}


@dataclass(frozen=True, slots=True)
class TrackRef:
    """A published track the participant may receive: the room's up-track, as a value."""

    key: str  # the up-track's id
    identity: str  # its publisher
    kind: str
    codecs: tuple[Codec, ...]  # the publisher's codecs (repair codecs left out)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """Which participant's track a line carries, for the client (``streams`` in signaling)."""

    mid: str
    identity: str
    kind: str


@dataclass(slots=True)
class Line:
    """One m= section of the peer connection.  See the module docstring."""

    mid: str
    kind: str
    codecs: tuple[NegotiatedCodec, ...] = ()
    extmaps: dict[str, int] = field(default_factory=dict)
    rtcp_rsize: bool = True
    #: port 0: never used again (kept for its place in the m= order)
    rejected: bool = False
    proto: str = RTP_PROTO
    formats: tuple[str, ...] = ()
    #: the client's last word: it sends on the line / it is willing to receive on it
    client_sends: bool = False
    client_receives: bool = False
    #: the client's SSRCs on the line, and its RTX SSRCs -> the SSRC they repair
    client_ssrcs: frozenset[int] = frozenset()
    client_rtx: dict[int, int] = field(default_factory=dict)
    #: the server receives the client's media on it
    receiving: bool = False
    #: the server's stream on it, allocated the first time it sends
    send_ssrc: int | None = None
    send_rtx_ssrc: int | None = None
    #: the track the server sends on it (None: it sends nothing)
    pin: TrackRef | None = None

    @property
    def direction(self) -> Direction:
        """The server's direction on the line."""
        if self.rejected:
            return "inactive"
        return _direction(send=self.pin is not None, recv=self.receiving)

    def copy(self) -> Line:
        return dataclasses.replace(
            self, extmaps=dict(self.extmaps), client_rtx=dict(self.client_rtx)
        )


@dataclass(slots=True)
class _Template:
    """The codecs and header extensions of a kind as the client offered them."""

    codecs: tuple[NegotiatedCodec, ...]
    extmaps: dict[str, int]
    rtcp_rsize: bool


def stream_id(identity: str) -> str:
    """The ``a=msid`` stream id of ``identity``'s tracks: a token (RFC 8830) of its name.

    Browsers group a participant's audio and video by it (and sync them).
    """
    return "p" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def carries(codecs: Iterable[NegotiatedCodec], track: TrackRef) -> bool:
    """Whether a line negotiated with ``codecs`` can carry ``track`` without transcoding."""
    mine = sfu_codecs(c for c in codecs if c.name.lower() not in _REPAIR)
    return any(same_codec(theirs, m) for theirs in track.codecs for m in mine)


def sfu_codecs(codecs: Iterable[NegotiatedCodec]) -> list[Codec]:
    """The SFU's view of negotiated codecs (payload types, fmtp, rtx)."""
    return [
        Codec(
            payload_type=c.payload_type,
            mime=c.mime,
            clock_rate=c.clock_rate,
            channels=c.channels,
            fmtp=dict(c.fmtp),
            rtx_payload_type=c.rtx_payload_type,
        )
        for c in codecs
    ]


def _direction(*, send: bool, recv: bool) -> Direction:
    if send and recv:
        return "sendrecv"
    if send:
        return "sendonly"
    if recv:
        return "recvonly"
    return "inactive"


def _sends(direction: Direction) -> bool:
    return direction in ("sendrecv", "sendonly")


def _receives(direction: Direction) -> bool:
    return direction in ("sendrecv", "recvonly")


def _offer_ssrcs(media: MediaSection) -> tuple[frozenset[int], dict[int, int]]:
    """The section's media SSRCs, and its RTX SSRCs mapped to theirs (RFC 5576 FID groups)."""
    rtx: dict[int, int] = {}
    for group in media.ssrc_groups:
        if group.semantics.upper() == "FID" and len(group.ssrcs) == 2:
            rtx[int(group.ssrcs[1])] = int(group.ssrcs[0])
    return frozenset(int(s) for s in media.ssrcs) - set(rtx), rtx


class Transceivers:
    """The negotiated m-lines of one conference peer connection.  See the module docstring.

    ``caps`` are the server's codecs and extensions; ``new_ssrc`` hands out SSRCs
    the session does not use yet; ``cname`` names the server's streams (RFC 7022).
    """

    def __init__(
        self,
        *,
        identity: str,
        caps: Capabilities,
        new_ssrc: Callable[[], int],
        cname: str,
        session_id: int,
    ) -> None:
        self.identity = identity
        self.caps = caps
        self.new_ssrc = new_ssrc
        self.cname = cname
        self.session_id = session_id
        #: the o= line's version: raised with every description the server makes
        self.version = 1
        self.lines: list[Line] = []
        #: the lines of the server's outstanding offer, until answered or rolled back
        self.pending: list[Line] | None = None
        self._templates: dict[str, _Template] = {}
        #: tracks whose line the client declined (answered inactive or rejected): not
        #: offered again, or every offer would add a line the client refuses
        self._declined: set[str] = set()

    # --- queries --------------------------------------------------------------------
    def line(self, mid: str) -> Line | None:
        return next((line for line in self.lines if line.mid == mid), None)

    def streams(self, lines: Sequence[Line] | None = None) -> list[StreamInfo]:
        """Whose track each sending line carries (the committed table by default)."""
        return [
            StreamInfo(line.mid, line.pin.identity, line.pin.kind)
            for line in (self.lines if lines is None else lines)
            if line.pin is not None and not line.rejected
        ]

    def needs_offer(self, wanted: Sequence[TrackRef], may_publish: bool) -> bool:
        """Whether :meth:`offer` would change anything (no SSRC or version is used up)."""
        return self._propose(wanted, may_publish)[1]

    # --- the client's offer -----------------------------------------------------------
    def answer(
        self, offer: SessionDescription, *, may_publish: bool, available: Sequence[TrackRef]
    ) -> list[MediaAnswer]:
        """Answer a client offer (validated already) and apply it; drops a pending offer.

        Returns one :class:`~interlive.sdp.MediaAnswer` per offered section for
        :func:`~interlive.sdp.build_answer`.  Raises :class:`SdpError` (nothing
        changed) when the offer moves, drops or re-kinds existing sections or
        leaves every section unusable.
        """
        if len(offer.media) < len(self.lines):
            raise SdpError(
                f"the offer has {len(offer.media)} media sections, fewer than the "
                f"{len(self.lines)} negotiated: sections are never removed (JSEP §5.2.2)"
            )
        known = {line.mid for line in self.lines}
        for index, media in enumerate(offer.media):
            if index < len(self.lines):
                old = self.lines[index]
                if media.mid != old.mid or media.kind != old.kind:
                    raise SdpError(
                        f"media {index} is {media.kind} mid {media.mid!r}, negotiated as "
                        f"{old.kind} mid {old.mid!r}: sections keep their place (JSEP §5.2.2)"
                    )
            elif media.mid is None or media.mid in known:
                raise SdpError(f"media {index}: a new section needs a new a=mid")
        negotiated = [
            negotiate_media(media, self.caps, want="both")
            if media.kind in MEDIA_KINDS and not media.rejected
            else None
            for media in offer.media
        ]
        if all(n is None for n in negotiated):
            raise SdpError(
                "no usable media section: audio or video in a codec interlive supports "
                "(Opus, VP8, VP9, H.264 packetization-mode 1)"
            )
        # apply
        self.pending = None
        self.version += 1
        for media, n in zip(offer.media, negotiated, strict=True):
            if n is not None and media.kind not in self._templates:
                self._templates[media.kind] = _Template(n.codecs, dict(n.extmaps), n.rtcp_rsize)
        lines: list[Line] = []
        answers: list[MediaAnswer] = []
        pinned = {line.pin.key for line in self.lines if line.pin is not None}
        free = [t for t in available if t.key not in pinned]
        keys = {t.key for t in available}
        for index, (media, n) in enumerate(zip(offer.media, negotiated, strict=True)):
            assert media.mid is not None  # checked above
            line = (
                self.lines[index].copy() if index < len(self.lines) else Line(media.mid, media.kind)
            )
            if n is None or line.rejected:
                line.rejected = True
                line.pin, line.receiving = None, False
                line.proto, line.formats = media.proto, tuple(media.formats[:1])
                if n is not None:
                    line.codecs = n.codecs
                lines.append(line)
                answers.append(MediaAnswer(None))
                continue
            line.codecs, line.extmaps, line.rtcp_rsize = n.codecs, dict(n.extmaps), n.rtcp_rsize
            direction = media.effective_direction
            line.client_sends, line.client_receives = _sends(direction), _receives(direction)
            line.client_ssrcs, line.client_rtx = _offer_ssrcs(media)
            line.receiving = line.client_sends and may_publish
            if not line.client_receives or line.client_sends:
                line.pin = None  # one way per line: a line the client sends on is received
            elif line.pin is not None and line.pin.key not in keys:
                line.pin = None  # its track went
            if line.client_receives and not line.client_sends and line.pin is None:
                track = next(
                    (t for t in free if t.kind == line.kind and carries(n.codecs, t)), None
                )
                if track is not None:
                    free.remove(track)
                    line.pin = track
            if line.pin is not None:
                self._allocate(line)
            lines.append(line)
            answers.append(
                MediaAnswer(dataclasses.replace(n, direction=line.direction), self._send(line))
            )
        self.lines = lines
        return answers

    # --- the server's offer -----------------------------------------------------------
    def offer(self, wanted: Sequence[TrackRef], may_publish: bool) -> list[OfferSection] | None:
        """The sections of a server offer that brings the table up to date, or None.

        The proposal becomes :attr:`pending` (replacing any pending one) until
        :meth:`accept` or :meth:`rollback`.
        """
        lines, changed = self._propose(wanted, may_publish)
        if not changed:
            return None
        for line in lines:
            if line.pin is not None:
                self._allocate(line)
        self.pending = lines
        self.version += 1
        return [self._section(line) for line in lines]

    def accept(self, answer: SessionDescription) -> None:
        """Apply the client's answer to :attr:`pending`.

        Raises :class:`ValueError` if no offer is outstanding and
        :class:`SdpError` if the answer does not match it (nothing changes then).
        """
        pending = self.pending
        if pending is None:
            raise ValueError("no server offer is outstanding")
        if len(answer.media) != len(pending):
            raise SdpError(
                f"the answer has {len(answer.media)} media sections, the offer had {len(pending)}"
            )
        for index, (line, media) in enumerate(zip(pending, answer.media, strict=True)):
            if media.mid != line.mid or media.kind != line.kind:
                raise SdpError(
                    f"answer media {index} is {media.kind} mid {media.mid!r}, "
                    f"the offer's is {line.kind} mid {line.mid!r}"
                )
        lines = [line.copy() for line in pending]
        for line, media in zip(lines, answer.media, strict=True):
            if line.rejected:
                continue
            if media.port == 0 and not media.bundle_only:
                if line.pin is not None:
                    self._declined.add(line.pin.key)
                line.rejected = True
                line.pin, line.receiving = None, False
                continue
            direction = media.effective_direction  # the client's
            if line.pin is not None:  # we offered to send
                line.client_receives = _receives(direction)
                if not line.client_receives:
                    self._declined.add(line.pin.key)
                    line.pin = None
            if line.receiving:  # we offered to receive
                line.client_sends = _sends(direction)
                line.receiving = line.client_sends
                if media.ssrcs:
                    line.client_ssrcs, line.client_rtx = _offer_ssrcs(media)
            kept = {int(c.payload_type) for c in media.codecs}
            if kept:
                codecs = tuple(c for c in line.codecs if c.payload_type in kept)
                line.codecs = (
                    tuple(
                        c
                        if c.rtx_payload_type is None or c.rtx_payload_type in kept
                        else dataclasses.replace(c, rtx_payload_type=None)
                        for c in codecs
                    )
                    or line.codecs
                )
        self.lines = lines
        self.pending = None

    def rollback(self) -> bool:
        """Drop the outstanding offer (glare: a client offer crossed it); True if there was one."""
        had = self.pending is not None
        self.pending = None
        return had

    # --- helpers ----------------------------------------------------------------------
    def _propose(self, wanted: Sequence[TrackRef], may_publish: bool) -> tuple[list[Line], bool]:
        lines = [line.copy() for line in self.lines]
        keys = {t.key for t in wanted}
        changed = False
        for line in lines:
            if line.rejected:
                continue
            if line.pin is not None and line.pin.key not in keys:
                line.pin = None
                changed = True
            receive = line.client_sends and may_publish
            if receive != line.receiving:
                line.receiving = receive
                changed = True
        pinned = {line.pin.key for line in lines if line.pin is not None}
        used_mids = {line.mid for line in lines}
        # a line the outstanding offer already added for a track is proposed again as it
        # was (mid, SSRCs): a client that applied that offer sees no change
        proposed = {
            line.pin.key: line
            for line in self.pending or ()
            if line.pin is not None and line.mid not in used_mids
        }
        for track in wanted:
            if track.key in pinned or track.key in self._declined:
                continue
            idle = next(
                (
                    candidate
                    for candidate in lines
                    if not candidate.rejected
                    and candidate.pin is None
                    and candidate.kind == track.kind
                    and candidate.client_receives
                    and not candidate.client_sends
                    and carries(candidate.codecs, track)
                ),
                None,
            )
            if idle is not None:
                line = idle
            elif track.key in proposed and proposed[track.key].mid not in used_mids:
                line = proposed[track.key].copy()
                used_mids.add(line.mid)
                lines.append(line)
            else:
                template = self._template(track.kind, lines)
                if template is None or not carries(template.codecs, track):
                    continue  # no codec the client can decode: it will not see this track
                line = Line(
                    _new_mid(used_mids),
                    track.kind,
                    codecs=template.codecs,
                    extmaps=dict(template.extmaps),
                    rtcp_rsize=template.rtcp_rsize,
                    client_receives=True,
                )
                used_mids.add(line.mid)
                lines.append(line)
            line.pin = track
            pinned.add(track.key)
            changed = True
        return lines, changed

    def _allocate(self, line: Line) -> None:
        if line.send_ssrc is None:
            line.send_ssrc = self.new_ssrc()
        if line.send_rtx_ssrc is None and any(c.rtx_payload_type is not None for c in line.codecs):
            line.send_rtx_ssrc = self.new_ssrc()

    def _send(self, line: Line) -> list[SendStream]:
        if line.pin is None or line.send_ssrc is None:
            return []
        return [
            SendStream(
                ssrc=Ssrc(line.send_ssrc),
                rtx_ssrc=None if line.send_rtx_ssrc is None else Ssrc(line.send_rtx_ssrc),
                cname=self.cname,
                stream_id=stream_id(line.pin.identity),
                track_id=f"{line.kind}-{line.mid}",
            )
        ]

    def _section(self, line: Line) -> OfferSection:
        sends = self._send(line)
        return OfferSection(
            mid=line.mid,
            kind=line.kind,
            direction=line.direction,
            codecs=line.codecs,
            extmaps=line.extmaps,
            send=sends[0] if sends else None,
            rtcp_rsize=line.rtcp_rsize,
            rejected=line.rejected,
            proto=line.proto,
            formats=line.formats,
        )

    def _template(self, kind: str, lines: Sequence[Line]) -> _Template | None:
        """The codecs to offer a new line of ``kind`` with: the client's, else the server's."""
        template = self._templates.get(kind)
        if template is not None:
            return template
        used: dict[int, str] = {}
        extmaps: dict[str, int] = {}
        for line in lines:
            for c in line.codecs:
                used[c.payload_type] = c.mime.lower()
                if c.rtx_payload_type is not None:
                    used[c.rtx_payload_type] = "rtx"
            for uri, ext_id in line.extmaps.items():
                extmaps.setdefault(uri, ext_id)
        supported = self.caps.header_extensions.get(kind, [])
        codecs: list[NegotiatedCodec] = []
        for cap in self.caps.codecs_for(kind):
            preset = DEFAULT_PAYLOAD_TYPES.get(cap.mime.lower())
            if preset is None or any(c.mime.lower() == cap.mime.lower() for c in codecs):
                continue  # one profile each; RED and FEC need the client's own numbers
            pt, rtx = preset
            if pt in used or (rtx is not None and rtx in used):
                continue
            codecs.append(
                NegotiatedCodec(
                    payload_type=PayloadType(pt),
                    mime=cap.mime,
                    clock_rate=cap.clock_rate,
                    channels=cap.channels,
                    fmtp=dict(cap.fmtp),
                    rtcp_fb=tuple(cap.rtcp_fb),
                    rtx_payload_type=PayloadType(rtx) if rtx is not None and cap.rtx else None,
                )
            )
        if not codecs:
            return None
        return _Template(
            tuple(codecs), {u: i for u, i in extmaps.items() if u in supported}, rtcp_rsize=True
        )


def _new_mid(used: set[str]) -> str:
    """A mid of the server's own (``s1``, ``s2``...): browsers and aiortc number theirs."""
    n = 1
    while f"s{n}" in used:
        n += 1
    return f"s{n}"
