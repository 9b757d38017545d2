"""Conference sessions: a participant's one peer connection, renegotiated by the server.

The media worker's side of signaling (``/ws``, ``docs/signaling.md``).  A
:class:`ConferenceSession` is a :class:`~interlive.worker.peer.PeerSession`
whose m-lines change after it starts: the client publishes on the lines it
sends on (when its role lets it) and receives every other stage track on lines
of its own, each pinned to one track (:class:`~interlive.sfu.pinned.PinnedSubscription`).
The lines and their negotiation are :class:`~interlive.worker.transceivers.Transceivers`
(sans-IO); this module applies them to the session and answers the worker
requests:

``conference_offer``
    the client's offer: a new session (``sid`` absent), or a subsequent offer on
    one (new tracks, direction changes, or an ICE restart: new ICE credentials
    in the offer get new ones in the answer; DTLS and SRTP carry on).  An offer
    with another DTLS fingerprint comes from a new peer connection: it gets a new
    session, which replaces the old one.
``conference_reoffer``
    the server's own offer bringing the session up to date with the room, or
    ``None`` if nothing changed.
``conference_answer``
    the client's answer to that offer.

The ICE, DTLS and SRTP of the session are never touched by renegotiation.  The
worker notices when a room's published tracks change (every tick, one tuple per
room) and reports ``negotiation_needed`` for each conference session that would
get a different offer; the control process decides when to make it (it handles
glare with the client's offers).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from interlive.sdp import (
    Fingerprint,
    SdpError,
    SessionDescription,
    build_answer,
    build_offer,
    effective_ice,
    validate_offer,
)
from interlive.sfu.pinned import PinnedSubscription
from interlive.sfu.room import Room
from interlive.sfu.tracks import DownTrack, UpTrack
from interlive.transport.dtls import DtlsEndpoint
from interlive.transport.ice import IceLiteResponder
from interlive.worker.channel import Event, RequestError
from interlive.worker.negotiation import Endpoint, _candidate, server_capabilities
from interlive.worker.peer import MediaPlan, PeerSession, RecvMedia, SendMedia
from interlive.worker.transceivers import Line, StreamInfo, TrackRef, Transceivers, sfu_codecs

if TYPE_CHECKING:
    from interlive.worker.worker import MediaWorker

__all__ = ["MODE", "Conference", "ConferenceSession", "track_refs"]

log = logging.getLogger(__name__)

#: the worker session mode of a conference peer connection
MODE = "conference"

_REPAIR = frozenset({"red", "ulpfec", "rtx", "flexfec"})


def track_refs(room: Room, identity: str) -> list[TrackRef]:
    """The room's forwarded tracks that ``identity`` should receive, in publishing order."""
    out: list[TrackRef] = []
    for up in room.tracks:
        if up.identity == identity or up.closed:
            continue
        codecs = tuple(
            c for c in up.codecs.values() if c.mime.split("/", 1)[-1].lower() not in _REPAIR
        )
        out.append(TrackRef(up.id, up.identity, up.kind, codecs))
    return out


class ConferenceSession(PeerSession):
    """A peer session whose receive and send lines follow :attr:`table`."""

    def __init__(self, *, table: Transceivers, may_publish: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        #: the participant's right to publish, as the control process last said
        self.may_publish = may_publish
        self.pinned = PinnedSubscription(self.identity)
        self.subscription = self.pinned
        self.slots: dict[str, DownTrack] = {}
        #: the room's track signature last checked for renegotiation
        self.checked: tuple[str, ...] | None = None
        self.apply_lines([], table.lines, self.created)

    def apply_lines(self, old: Sequence[Line], new: Sequence[Line], now: float) -> None:
        """Make the session's tracks match the table ``new`` (``old``: what it was)."""
        was = {line.mid: line for line in old if line.receiving and not line.rejected}
        now_recv = {line.mid: line for line in new if line.receiving and not line.rejected}
        for mid in was.keys() - now_recv.keys():
            self._stop_receiving(mid, now)
        for mid, line in now_recv.items():
            before = was.get(mid)
            if before is None:
                self._start_receiving(line)
            elif (before.client_ssrcs, before.client_rtx) != (line.client_ssrcs, line.client_rtx):
                self._stop_receiving(mid, now)
                self._start_receiving(line)
        by_key = {up.id: up for up in (*self.room.tracks, *self.room.held)}
        dropped: list[DownTrack] = []
        for line in new:
            slot = self.slots.get(line.mid)
            if slot is None and line.send_ssrc is not None and not line.rejected:
                slot = self._add_slot(line)
            if slot is None:
                continue
            pin = line.pin if not line.rejected else None
            up = by_key.get(pin.key) if pin is not None else None
            if self.pinned.pins.get(slot) is not up and self.pinned.pin(slot, up):
                dropped.append(slot)
        if self._subscribed:
            self.room.refill(self.pinned, now)
        for slot in dropped:
            if slot.source is None:
                slot.say_goodbye()

    # --- receiving --------------------------------------------------------------------
    def _start_receiving(self, line: Line) -> None:
        media = RecvMedia(
            mid=line.mid,
            kind=line.kind,
            codecs=sfu_codecs(line.codecs),
            extensions=dict(line.extmaps),
            ssrcs=set(line.client_ssrcs),
            rtx_ssrcs=dict(line.client_rtx),
            remb=any("goog-remb" in c.rtcp_fb for c in line.codecs),
            nack=any("nack" in c.rtcp_fb for c in line.codecs),
        )
        self.plan.recv.append(media)
        for ssrc in media.ssrcs:
            self._mid_by_ssrc[ssrc] = media
        self._rtx_ssrcs.update(media.rtx_ssrcs)

    def _stop_receiving(self, mid: str, now: float) -> None:
        media = next((m for m in self.plan.recv if m.mid == mid), None)
        if media is None:
            return
        self.plan.recv.remove(media)
        for ssrc in [s for s, m in self._mid_by_ssrc.items() if m is media]:
            del self._mid_by_ssrc[ssrc]
        for rtx in media.rtx_ssrcs:
            self._rtx_ssrcs.pop(rtx, None)
        for ssrc in [s for s, m in self._up_mids.items() if m == mid]:
            del self._up_mids[ssrc]
            up: UpTrack | None = self.uptracks.pop(ssrc, None)
            if up is not None:
                self.room.unpublish(up, now)
        self._published_mids.discard(mid)

    # --- sending ----------------------------------------------------------------------
    def _add_slot(self, line: Line) -> DownTrack:
        assert line.send_ssrc is not None
        media = SendMedia(
            mid=line.mid,
            kind=line.kind,
            codecs=sfu_codecs(line.codecs),
            extensions=dict(line.extmaps),
            ssrc=line.send_ssrc,
            rtx_ssrc=line.send_rtx_ssrc,
            nack=any("nack" in c.rtcp_fb for c in line.codecs),
        )
        self.plan.send.append(media)
        slot = DownTrack(
            identity=self.identity,
            kind=media.kind,
            mid=media.mid,
            ssrc=media.ssrc,
            codecs=media.codecs,
            extensions=media.extensions,
            transport=self,
            counters=self.counters,
            rtx_ssrc=media.rtx_ssrc,
            protection=self.settings.loss_protection,
            max_playout_delay=self.settings.max_playout_delay,
            nack=media.nack,
        )
        self.downtracks[media.ssrc] = slot
        self.slots[line.mid] = slot
        self.pinned.add_slot(slot)
        return slot

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out["lines"] = [
            {
                "mid": line.mid,
                "kind": line.kind,
                "direction": line.direction,
                "source": None if line.pin is None else line.pin.identity,
            }
            for line in self.table.lines
        ]
        return out


def _streams(infos: Sequence[StreamInfo]) -> list[dict[str, str]]:
    return [{"mid": s.mid, "identity": s.identity, "kind": s.kind} for s in infos]


def _parse(text: str, what: str) -> SessionDescription:
    try:
        return SessionDescription.parse(text)
    except SdpError as exc:
        raise RequestError(400, "bad_sdp", f"{what}: {exc}") from exc


class Conference:
    """The worker's conference requests and renegotiation watch.  See the module docstring."""

    def __init__(self, worker: MediaWorker) -> None:
        self.worker = worker
        self._signatures: dict[str, tuple[str, ...]] = {}

    # --- requests ---------------------------------------------------------------------
    def offer(
        self,
        *,
        room: str,
        identity: str,
        offer: str,
        may_publish: bool,
        sid: str | None = None,
    ) -> dict[str, Any]:
        """Answer the client's offer: a new session, or a subsequent offer on ``sid``."""
        description = _parse(offer, "offer")
        try:
            validate_offer(description)
        except SdpError as exc:
            raise RequestError(400, "bad_sdp", str(exc)) from exc
        if sid is None:
            return self._create(room, identity, description, may_publish)
        session = self._session(sid, room, identity)
        worker = self.worker
        first = next(m for m in description.media if not m.rejected)
        ice = effective_ice(description, first)
        assert session.ice is not None and session.dtls is not None
        offered = {(f.algorithm.lower(), f.value.upper()) for f in ice.fingerprints}
        current = {(a.lower(), v.upper()) for a, v in session.plan.remote_fingerprints}
        if offered != current:  # a new peer connection (new certificate): a new session
            return self._create(room, identity, description, may_publish)
        restart = bool(ice.ice_ufrag) and ice.ice_ufrag != session.ice.remote_ufrag
        old = session.table.lines
        try:
            answers = session.table.answer(
                description,
                may_publish=may_publish,
                available=track_refs(session.room, identity),
            )
        except SdpError as exc:
            raise RequestError(400, "bad_sdp", str(exc)) from exc
        now = worker._clock()
        if restart:
            endpoint = worker._new_endpoint()
            worker._by_ufrag.pop(session.ice.local_ufrag, None)
            session.ice.restart(endpoint.ice_ufrag, endpoint.ice_pwd, ice.ice_ufrag)
            worker._by_ufrag[endpoint.ice_ufrag] = session
            log.info("%s: ICE restart (remote ufrag %s)", session.sid, ice.ice_ufrag)
        session.may_publish = may_publish
        session.apply_lines(old, session.table.lines, now)
        answer = build_answer(
            description,
            answers,
            ice_ufrag=session.ice.local_ufrag,
            ice_pwd=session.ice.local_pwd,
            fingerprint=Fingerprint("sha-256", worker.certificate.fingerprint()),
            candidates=[_candidate(self._endpoint(session))],
            session_id=session.table.session_id,
            session_version=session.table.version,
        )
        return {
            "sid": session.sid,
            "answer": str(answer),
            "streams": _streams(session.table.streams()),
            "created": False,
            "restart": restart,
        }

    def reoffer(self, *, sid: str, may_publish: bool) -> dict[str, Any]:
        """The server's offer for ``sid``, or ``{"offer": None}`` when nothing changed."""
        session = self._session(sid)
        session.may_publish = may_publish
        sections = session.table.offer(track_refs(session.room, session.identity), may_publish)
        if sections is None:
            return {"offer": None, "streams": _streams(session.table.streams())}
        assert session.ice is not None
        offer = build_offer(
            sections,
            ice_ufrag=session.ice.local_ufrag,
            ice_pwd=session.ice.local_pwd,
            fingerprint=Fingerprint("sha-256", self.worker.certificate.fingerprint()),
            candidates=[_candidate(self._endpoint(session))],
            session_id=session.table.session_id,
            session_version=session.table.version,
        )
        pending = session.table.pending
        assert pending is not None
        return {"offer": str(offer), "streams": _streams(session.table.streams(pending))}

    def answer(self, *, sid: str, answer: str) -> dict[str, Any]:
        """Apply the client's answer to the server's outstanding offer."""
        session = self._session(sid)
        description = _parse(answer, "answer")
        old = session.table.lines
        try:
            session.table.accept(description)
        except SdpError as exc:
            raise RequestError(400, "bad_sdp", str(exc)) from exc
        except ValueError as exc:
            raise RequestError(409, "conflict", str(exc)) from exc
        session.apply_lines(old, session.table.lines, self.worker._clock())
        session.checked = None  # the room may have moved on meanwhile: look again
        return {"streams": _streams(session.table.streams())}

    def rollback(self, *, sid: str) -> dict[str, Any]:
        """Drop the server's outstanding offer (the client never answered it)."""
        return {"rolled_back": self._session(sid).table.rollback()}

    # --- the renegotiation watch --------------------------------------------------------
    def tick(self) -> None:
        """Report ``negotiation_needed`` for sessions whose room's tracks changed."""
        worker = self.worker
        signatures = self._signatures
        for name in [n for n in signatures if n not in worker.rooms]:
            del signatures[name]
        changed: set[str] = set()
        for name, room in worker.rooms.items():
            signature = tuple(up.id for up in room.tracks)
            if signatures.get(name) != signature:
                signatures[name] = signature
                changed.add(name)
        for session in list(worker.sessions.values()):
            if not isinstance(session, ConferenceSession) or session.closed:
                continue
            current = signatures.get(session.room.name)
            if session.checked == current and session.room.name not in changed:
                continue
            session.checked = current
            if session.table.pending is None and session.table.needs_offer(
                track_refs(session.room, session.identity), session.may_publish
            ):
                worker._emit(
                    Event(
                        "negotiation_needed",
                        {
                            "sid": session.sid,
                            "room": session.room.name,
                            "identity": session.identity,
                        },
                    )
                )

    # --- helpers ----------------------------------------------------------------------
    def _create(
        self, room: str, identity: str, description: SessionDescription, may_publish: bool
    ) -> dict[str, Any]:
        worker = self.worker
        endpoint = worker._new_endpoint()
        room_obj = worker.rooms.get(room)
        taken: set[int] = set()

        def new_ssrc() -> int:
            while True:
                ssrc = secrets.randbits(32)
                if ssrc and ssrc not in taken:
                    taken.add(ssrc)
                    return ssrc

        table = Transceivers(
            identity=identity,
            caps=server_capabilities(),
            new_ssrc=new_ssrc,
            cname=secrets.token_hex(8),
            session_id=secrets.randbits(62),
        )
        available = track_refs(room_obj, identity) if room_obj is not None else []
        try:
            answers = table.answer(description, may_publish=may_publish, available=available)
        except SdpError as exc:
            raise RequestError(400, "bad_sdp", str(exc)) from exc
        first = next(m for m in description.media if not m.rejected)
        ice = effective_ice(description, first)
        answer = build_answer(
            description,
            answers,
            ice_ufrag=endpoint.ice_ufrag,
            ice_pwd=endpoint.ice_pwd,
            fingerprint=Fingerprint("sha-256", endpoint.fingerprint),
            candidates=[_candidate(endpoint)],
            session_id=table.session_id,
            session_version=table.version,
        )
        room_obj, sid = worker.make_room_for(room, identity, MODE)
        now = worker._clock()
        session = ConferenceSession(
            table=table,
            may_publish=may_publish,
            sid=sid,
            room=room_obj,
            identity=identity,
            mode=MODE,
            plan=MediaPlan(
                recv=[],
                send=[],
                remote_fingerprints=[(f.algorithm, f.value) for f in ice.fingerprints],
                dtls_server=ice.setup != "passive",
                cname=table.cname,
            ),
            ice=IceLiteResponder(endpoint.ice_ufrag, endpoint.ice_pwd, ice.ice_ufrag or ""),
            dtls=DtlsEndpoint(
                worker._ssl_context,
                is_server=ice.setup != "passive",
                remote_fingerprints=[(f.algorithm, f.value) for f in ice.fingerprints],
            ),
            sendto=worker.sendto,
            counters=worker.counters,
            now=now,
            settings=worker.settings,
        )
        worker.sessions[sid] = session
        worker._by_ufrag[endpoint.ice_ufrag] = session
        log.info("session %s: %s conference in room %s", sid, identity, room)
        return {
            "sid": sid,
            "answer": str(answer),
            "streams": _streams(table.streams()),
            "created": True,
            "restart": False,
        }

    def _session(
        self, sid: str, room: str | None = None, identity: str | None = None
    ) -> ConferenceSession:
        session = self.worker.sessions.get(sid)
        if not isinstance(session, ConferenceSession) or session.closed:
            raise RequestError(404, "not_found", "no such conference session")
        if (room is not None and session.room.name != room) or (
            identity is not None and session.identity != identity
        ):
            raise RequestError(403, "forbidden", "the session belongs to another participant")
        return session

    def _endpoint(self, session: ConferenceSession) -> Endpoint:
        assert session.ice is not None
        worker = self.worker
        return Endpoint(
            ice_ufrag=session.ice.local_ufrag,
            ice_pwd=session.ice.local_pwd,
            fingerprint=worker.certificate.fingerprint(),
            candidate_ip=worker.candidate_ip,
            port=worker.port,
        )
