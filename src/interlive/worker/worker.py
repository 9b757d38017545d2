"""A media worker: one UDP port, many peer sessions, the rooms placed on it.

Datagrams are routed by kind (RFC 7983): STUN by the USERNAME's local ufrag,
everything else by the sender's address, learnt from authenticated STUN.
Requests from the control process create, restart and end sessions.

Plain-RTP sessions (``create_plain_session``, see ``worker/plain.py``) share
the port: their one remote address is fixed at creation, so only datagrams
from it reach them, and STUN never moves them.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from interlive.rtp.ntp import ntp_from_unix
from interlive.rtp.rtcp import is_rtcp
from interlive.sfu.metrics import WorkerCounters
from interlive.sfu.room import Room
from interlive.transport.demux import DatagramKind, classify
from interlive.transport.dtls import Certificate, DtlsEndpoint
from interlive.transport.ice import Address, IceLiteResponder, random_ice_string, stun_username
from interlive.transport.plain import PlainRtp
from interlive.worker.channel import Event, RequestError
from interlive.worker.conference import Conference
from interlive.worker.negotiation import Endpoint, answer_ice_restart, answer_offer
from interlive.worker.peer import PeerSession
from interlive.worker.plain import plain_plan
from interlive.worker.settings import MediaSettings
from interlive.worker.speakers import Speakers

log = logging.getLogger(__name__)


class MediaWorker:
    def __init__(
        self,
        *,
        index: int,
        candidate_ip: str,
        port: int,
        sendto: Callable[[bytes, Address], None],
        emit: Callable[[Event], None],
        settings: MediaSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.candidate_ip = candidate_ip
        self.port = port
        self.counters = WorkerCounters()
        self.certificate = Certificate.generate()
        self._ssl_context = self.certificate.make_context()
        self._sendto_raw = sendto
        self._emit = emit
        self._clock = clock
        self.settings = settings or MediaSettings()
        self.rooms: dict[str, Room] = {}
        self.sessions: dict[str, PeerSession] = {}
        self._by_ufrag: dict[str, PeerSession] = {}
        self._by_addr: dict[Address, PeerSession] = {}
        #: conference sessions (signaling /ws): offers both ways, see worker/conference.py
        self.conference = Conference(self)
        #: active speaker per room, from RFC 6464 audio levels (worker/speakers.py)
        self.speakers = Speakers(emit)

    # --- datagrams -------------------------------------------------------------
    def sendto(self, data: bytes, addr: Address) -> None:
        self._sendto_raw(data, addr)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        counters = self.counters
        counters.packets_in += 1
        counters.bytes_in += len(data)
        now = self._clock()
        kind = classify(data)
        if kind is DatagramKind.RTP:
            session = self._by_addr.get(addr)
            if session is None:
                counters.drop("unknown_address")
                return
            session.on_srtp(data, now, rtcp=is_rtcp(data))
        elif kind is DatagramKind.STUN:
            username = stun_username(data)
            session = self._by_ufrag.get(username.partition(":")[0]) if username else None
            if session is None:
                counters.drop("stun_unknown_ufrag")
                return
            session.on_stun(data, addr, now)
            owner = self._by_addr.get(session.addr) if session.addr is not None else None
            if session.addr is not None and owner is not session and not (owner and owner.plain):
                self._by_addr[session.addr] = session
            if session.ice is not None and addr in session.ice.addresses:
                self._by_addr.setdefault(addr, session)
        elif kind is DatagramKind.DTLS:
            session = self._by_addr.get(addr)
            if session is None:
                counters.drop("unknown_address")
                return
            session.on_dtls(data, addr, now)
            if session.closed:
                self._forget(session)
        else:
            counters.drop("unknown_datagram")

    def tick(self) -> None:
        now = self._clock()
        ntp_now = ntp_from_unix(time.time())
        for session in list(self.sessions.values()):
            if now >= session.wake:
                session.tick(now, ntp_now)
                if session.closed:
                    self._forget(session)
        # deferred keyframe requests: publishers are few, so poll their tracks directly
        for room in self.rooms.values():
            for up in room.tracks:
                up.poll(now)
        self.conference.tick()
        self.speakers.tick(self.sessions, self.rooms, now)

    # --- requests ----------------------------------------------------------------
    def handle(self, op: str, args: dict[str, Any]) -> Any:
        method = getattr(self, f"op_{op}", None)
        if method is None:
            raise RequestError(400, "bad_request", f"unknown worker operation {op!r}")
        return method(**args)

    def make_room_for(self, room: str, identity: str, mode: str) -> tuple[Room, str]:
        """Before a new session: end the identity's older session of ``mode`` (the nth
        session replaces the older one), and return the room (made if new) and a fresh sid."""
        for old in list(self.sessions.values()):
            if old.room.name == room and old.identity == identity and old.mode == mode:
                self._end(old, "replaced")
        room_obj = self.rooms.get(room)
        if room_obj is None:
            room_obj = self.rooms[room] = Room(room)
        return room_obj, secrets.token_urlsafe(12)

    def op_create_session(
        self, *, room: str, identity: str, mode: str, offer: str, only: str | None = None
    ) -> dict[str, Any]:
        endpoint = self._new_endpoint()
        ufrag, pwd = endpoint.ice_ufrag, endpoint.ice_pwd
        answer, plan, remote_ufrag = answer_offer(offer, mode=mode, endpoint=endpoint)
        room_obj, sid = self.make_room_for(room, identity, mode)
        now = self._clock()
        session = PeerSession(
            sid=sid,
            room=room_obj,
            identity=identity,
            mode=mode,
            plan=plan,
            ice=IceLiteResponder(ufrag, pwd, remote_ufrag),
            dtls=DtlsEndpoint(
                self._ssl_context,
                is_server=plan.dtls_server,
                remote_fingerprints=plan.remote_fingerprints,
            ),
            sendto=self.sendto,
            counters=self.counters,
            now=now,
            only=only,
            settings=self.settings,
        )
        self.sessions[sid] = session
        self._by_ufrag[ufrag] = session
        log.info("session %s: %s %s in room %s", sid, identity, mode, room)
        # the m-lines it publishes on: the control process lists them as the participant's tracks
        tracks = [{"mid": m.mid, "kind": m.kind} for m in plan.recv]
        return {"sid": sid, "answer": answer, "tracks": tracks}

    def op_create_plain_session(
        self,
        *,
        room: str,
        identity: str,
        mode: str,
        remote: list[Any] | tuple[Any, ...],
        media: list[dict[str, Any]],
        only: str | None = None,
    ) -> dict[str, Any]:
        """A plain-RTP session with ``remote`` (host, port): unencrypted RTP/RTCP on our port.

        ``media`` lists its streams (see ``worker/plain.py``); the reply gives them
        back with payload types and SSRCs filled in, and the port to send to.
        Like a WebRTC session, it replaces the identity's session of the same mode.
        """
        if (
            not isinstance(remote, list | tuple)
            or len(remote) != 2
            or not isinstance(remote[0], str)
            or not isinstance(remote[1], int)
            or not 0 < remote[1] < 65536
        ):
            raise RequestError(400, "bad_request", f"remote must be [host, port], got {remote!r}")
        addr: Address = (remote[0], remote[1])
        taken = self._by_addr.get(addr)
        if taken is not None and taken.sid in self.sessions:
            raise RequestError(409, "conflict", f"{addr[0]}:{addr[1]} already has a session")
        plan, described = plain_plan(mode, media)
        room_obj, sid = self.make_room_for(room, identity, mode)
        now = self._clock()
        session = PeerSession(
            sid=sid,
            room=room_obj,
            identity=identity,
            mode=mode,
            plan=plan,
            ice=None,
            dtls=None,
            sendto=self.sendto,
            counters=self.counters,
            now=now,
            only=only,
            settings=self.settings,
            crypto=PlainRtp(),
            remote=addr,
        )
        self.sessions[sid] = session
        self._by_addr[addr] = session
        log.info("plain session %s: %s %s in room %s from %s:%d", sid, identity, mode, room, *addr)
        tracks = [{"mid": m.mid, "kind": m.kind} for m in plan.recv]
        return {"sid": sid, "port": self.port, "media": described, "tracks": tracks}

    def op_delete_session(self, *, sid: str) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is None:
            raise RequestError(404, "not_found", "no such session")
        self._end(session, "deleted")
        return {}

    def op_ice_restart(self, *, sid: str, fragment: str) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is None:
            raise RequestError(404, "not_found", "no such session")
        if session.ice is None:
            raise RequestError(400, "bad_request", "a plain-RTP session has no ICE to restart")
        endpoint = self._new_endpoint()
        ufrag, pwd = endpoint.ice_ufrag, endpoint.ice_pwd
        answer, remote_ufrag = answer_ice_restart(fragment, endpoint=endpoint)
        if answer is None:
            return {"restart": False}  # trickled candidates only: an ICE-lite server needs none
        self._by_ufrag.pop(session.ice.local_ufrag, None)
        session.ice.restart(ufrag, pwd, remote_ufrag)
        self._by_ufrag[ufrag] = session
        return {"restart": True, "fragment": answer}

    def _protection_in_use(self) -> dict[str, int]:
        """Viewer streams by the repair their protection decided on (for /metrics)."""
        tools: dict[str, int] = {}
        for session in self.sessions.values():
            for down in session.downtracks.values():
                tool = down.protection.tool
                tools[tool] = tools.get(tool, 0) + 1
        return tools

    def op_session_stats(self, *, sid: str) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is None:
            raise RequestError(404, "not_found", "no such session")
        return session.describe()

    def op_stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "index": self.index,
            "protection": self._protection_in_use(),
            "sessions": len(self.sessions),
            "rooms": len(self.rooms),
            "packets_in": c.packets_in,
            "bytes_in": c.bytes_in,
            "packets_out": c.packets_out,
            "bytes_out": c.bytes_out,
            "rtcp_in": c.rtcp_in,
            "rtcp_out": c.rtcp_out,
            "keyframe_requests": c.keyframe_requests,
            "nacks_sent": c.nacks_sent,
            "nacks_received": c.nacks_received,
            "retransmissions_sent": c.retransmissions_sent,
            "rtx_received": c.rtx_received,
            "red_sent": c.red_sent,
            "fec_sent": c.fec_sent,
            "fec_received": c.fec_received,
            "fec_recovered": c.fec_recovered,
            "drops": dict(c.drops),
            "cpu_seconds": time.process_time(),
        }

    def _new_endpoint(self) -> Endpoint:
        """Fresh ICE credentials with this worker's certificate and address."""
        return Endpoint(
            ice_ufrag=random_ice_string(8),
            ice_pwd=random_ice_string(24),
            fingerprint=self.certificate.fingerprint(),
            candidate_ip=self.candidate_ip,
            port=self.port,
        )

    # --- lifetime ------------------------------------------------------------------
    def _end(self, session: PeerSession, reason: str) -> None:
        session.close(reason, self._clock())
        self._forget(session)

    def _forget(self, session: PeerSession) -> None:
        if self.sessions.pop(session.sid, None) is None:
            return
        if session.ice is not None:
            self._by_ufrag.pop(session.ice.local_ufrag, None)
        for addr in [a for a, s in self._by_addr.items() if s is session]:
            del self._by_addr[addr]
        room = session.room
        if room.empty and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            self._emit(Event("room_finished", {"room": room.name, "worker": self.index}))
        self._emit(
            Event(
                "session_ended",
                {
                    "sid": session.sid,
                    "room": room.name,
                    "identity": session.identity,
                    "reason": session.close_reason,
                },
            )
        )

    # --- the stage's decisions (issue 3): the control process decides, the room applies -----
    def op_stop_publishing(self, *, room: str, identity: str) -> dict[str, Any]:
        """Demoted: stop forwarding ``identity``'s tracks now and any it starts later.

        Its sessions stay connected; viewers' slots switch or get an RTCP BYE.
        """
        room_obj = self.rooms.get(room)
        held = room_obj.hold(identity, self._clock()) if room_obj is not None else 0
        log.info("room %s: %s may not publish (%d track(s) held)", room, identity, held)
        return {"tracks": held}

    def op_allow_publishing(self, *, room: str, identity: str) -> dict[str, Any]:
        """Promoted again: forward ``identity``'s held tracks on the sessions that still run."""
        room_obj = self.rooms.get(room)
        back = room_obj.release(identity, self._clock()) if room_obj is not None else 0
        return {"tracks": back}

    def op_set_muted(self, *, room: str, identity: str, kind: str, muted: bool) -> dict[str, Any]:
        """Pause (or resume) the fan-out of ``identity``'s ``kind`` tracks; they stay published."""
        room_obj = self.rooms.get(room)
        count = room_obj.set_muted(identity, kind, muted, self._clock()) if room_obj else 0
        return {"tracks": count}

    def op_forget_participant(self, *, room: str, identity: str) -> dict[str, Any]:
        """``identity`` left the room: clear its hold and mutes."""
        room_obj = self.rooms.get(room)
        if room_obj is not None:
            room_obj.forget(identity, self._clock())
        return {}

    def op_end_sessions(self, *, sids: list[str], reason: str) -> dict[str, Any]:
        """Close these sessions (a kick): RTCP BYE to their peer and to their viewers."""
        ended = 0
        for sid in sids:
            session = self.sessions.get(sid)
            if session is not None:
                self._end(session, reason)
                ended += 1
        return {"ended": ended}

    # --- conference sessions (signaling /ws): see worker/conference.py -----------------
    def op_conference_offer(
        self, *, room: str, identity: str, offer: str, may_publish: bool, sid: str | None = None
    ) -> dict[str, Any]:
        """The client's offer: a new conference session, or a subsequent offer on ``sid``."""
        return self.conference.offer(
            room=room, identity=identity, offer=offer, may_publish=may_publish, sid=sid
        )

    def op_conference_reoffer(self, *, sid: str, may_publish: bool) -> dict[str, Any]:
        """The server's offer for a conference session, or ``None`` if it is up to date."""
        return self.conference.reoffer(sid=sid, may_publish=may_publish)

    def op_conference_answer(self, *, sid: str, answer: str) -> dict[str, Any]:
        """The client's answer to the server's offer."""
        return self.conference.answer(sid=sid, answer=answer)

    def op_conference_rollback(self, *, sid: str) -> dict[str, Any]:
        """Forget the server's outstanding offer."""
        return self.conference.rollback(sid=sid)
