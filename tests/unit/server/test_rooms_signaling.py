"""The room registry's signaling participants: /ws joins, resumes, drops, announced tracks."""

from __future__ import annotations

from interlive.server.rooms import (
    EndSessions,
    Outcome,
    ResumeMedia,
    RoomRegistry,
    RoomStarted,
    StopMedia,
)
from interlive.stage.model import (
    BySession,
    ConnectionState,
    ConnectionStateChanged,
    Demote,
    Kick,
    LeaveReason,
    ParticipantJoined,
    ParticipantLeft,
    Promote,
    Publish,
    Refusal,
    RefusalCode,
    SessionAccepted,
    SetMuted,
    TrackKind,
    TrackPublished,
    TrackUnpublished,
)
from tests.unit.server.test_rooms import HOST, kinds, ok, tok


def joined(result: Refusal | tuple[SessionAccepted, Outcome]) -> tuple[SessionAccepted, Outcome]:
    assert not isinstance(result, Refusal), result
    return result


def test_a_join_enters_the_room_before_any_media() -> None:
    reg = RoomRegistry()
    accepted, out = joined(reg.signaling_join(HOST, "ws-1", 1.0))
    assert accepted == SessionAccepted("alice", 1, HOST.role, resumed=False)
    assert kinds(out) == ["RoomStarted", "ParticipantJoined"]
    assert isinstance(out.events[0], RoomStarted)
    assert reg.session_of("r", "alice") == 1 and reg.conference_sid("r", "alice") is None
    # its peer connection is a transport like a WHIP session, listed as such
    ok(reg.session_started(HOST, "conference", "c1", (), 2.0))
    assert reg.conference_sid("r", "alice") == "c1"
    assert reg.locate("c1") == ("r", "alice")


def test_refusals_change_nothing() -> None:
    reg = RoomRegistry(max_publishers=1)
    joined(reg.signaling_join(HOST, "ws-1", 1.0))
    full = reg.signaling_join(tok("carol", "cohost"), "ws-2", 1.0)
    assert isinstance(full, Refusal) and full.code is RefusalCode.STAGE_FULL
    admin = reg.signaling_join(tok("ops", "host", room="*"), "ws-3", 1.0)
    assert isinstance(admin, Refusal) and admin.code is RefusalCode.BAD_REQUEST
    for session in (1, 99):
        stolen = reg.signaling_resume(tok("mallory", "host"), session, "ws-4", 1.0)
        assert isinstance(stolen, Refusal)
    other_room = reg.signaling_resume(tok("alice", "host", room="elsewhere"), 1, "ws-5", 1.0)
    assert isinstance(other_room, Refusal) and other_room.code is RefusalCode.NOT_FOUND
    stage = reg.stage("r")
    assert stage is not None and [p.identity for p in stage.snapshot().participants] == ["alice"]


def test_a_dropped_connection_is_resumed_with_its_peer_connection() -> None:
    reg = RoomRegistry()
    accepted, _ = joined(reg.signaling_join(HOST, "ws-1", 1.0))
    ok(reg.session_started(HOST, "conference", "c1", (), 1.0))
    lost = reg.signaling_lost("r", "alice", "ws-1", 2.0)
    assert lost is not None
    assert lost.events == (ConnectionStateChanged("alice", ConnectionState.RECONNECTING),)
    assert lost.actions == ()  # the media is kept for the resume
    assert reg.signaling_lost("r", "alice", "ws-1", 2.0) is None  # already lost
    back, out = joined(reg.signaling_resume(HOST, accepted.session, "ws-2", 10.0))
    assert back.resumed and back.session == accepted.session
    assert out.events == (ConnectionStateChanged("alice", ConnectionState.CONNECTED),)
    assert reg.conference_sid("r", "alice") == "c1"
    # the peer connection failing while the socket is up does not leave the room
    failed = reg.session_ended("c1", "ice-consent-timeout", 11.0)
    assert failed is not None and kinds(failed) == []
    assert reg.session_of("r", "alice") == accepted.session


def test_the_resume_window_expires() -> None:
    reg = RoomRegistry(resume_window=15.0)
    joined(reg.signaling_join(HOST, "ws-1", 1.0))
    ok(reg.session_started(HOST, "conference", "c1", (), 1.0))
    reg.signaling_lost("r", "alice", "ws-1", 2.0)
    # the peer connection ending meanwhile does not cut the window short
    assert kinds(ok(reg.session_ended("c1", "dtls-closed", 5.0))) == []
    assert reg.stage("r") is not None
    outcomes = reg.handle_timer(17.0)
    assert [kinds(o) for o in outcomes] == [["ParticipantLeft", "RoomFinished"]]
    assert outcomes[0].events[0] == ParticipantLeft("alice", LeaveReason.TIMEOUT)
    late = reg.signaling_resume(HOST, 1, "ws-2", 17.5)
    assert isinstance(late, Refusal) and late.code is RefusalCode.NOT_FOUND


def test_a_second_join_replaces_only_the_older_connection() -> None:
    reg = RoomRegistry()
    first, _ = joined(reg.signaling_join(HOST, "ws-1", 1.0))
    ok(reg.session_started(HOST, "conference", "c1", (), 1.0))
    ok(reg.session_started(HOST, "publish", "w1", [("0", "audio")], 1.0))  # and a WHIP session
    second, out = joined(reg.signaling_join(HOST, "ws-2", 2.0))
    assert second.session != first.session and not second.resumed
    assert EndSessions(("c1",), "replaced") in out.actions
    assert not any(isinstance(a, EndSessions) and "w1" in a.sids for a in out.actions)
    # the WHIP tracks were dropped with the old session and are listed again
    assert [type(e).__name__ for e in out.events] == ["TrackUnpublished", "TrackPublished"]
    assert reg.conference_sid("r", "alice") is None
    assert reg.session_ended("c1", "replaced", 2.1) is None  # already forgotten
    # the old connection's drop is no longer the participant's
    assert reg.signaling_lost("r", "alice", "ws-1", 3.0) is None


def test_a_join_attaches_to_a_participant_present_over_whip() -> None:
    reg = RoomRegistry()
    ok(reg.session_started(HOST, "publish", "w1", [("0", "audio")], 1.0))
    accepted, out = joined(reg.signaling_join(HOST, "ws-1", 2.0))
    assert accepted.session == reg.session_of("r", "alice") and out.events == ()
    # dropping the socket leaves it connected: the WHIP session still is
    lost = reg.signaling_lost("r", "alice", "ws-1", 3.0)
    assert lost is not None and lost.events == ()


def test_announced_tracks_follow_the_peer_connection_and_the_role() -> None:
    reg = RoomRegistry()
    joined(reg.signaling_join(HOST, "ws-1", 1.0))
    bob = tok("bob", "audience")
    b, _ = joined(reg.signaling_join(bob, "ws-2", 1.0))
    ok(reg.session_started(bob, "conference", "c2", (), 1.0))
    refused = reg.signaling_request("r", "bob", Publish(b.session, "0", TrackKind.VIDEO), 2.0)
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.FORBIDDEN
    ok(reg.handle("r", [Promote(BySession(1), "bob")], 3.0))
    out = ok(reg.signaling_request("r", "bob", Publish(b.session, "0", TrackKind.VIDEO), 4.0))
    assert out.events == (TrackPublished("bob", "0", TrackKind.VIDEO, False),)
    # a host's mute of its video reaches the worker by kind
    muted = ok(reg.handle("r", [SetMuted(BySession(1), "bob", True, kind=TrackKind.VIDEO)], 4.5))
    assert [type(a).__name__ for a in muted.actions] == ["MuteMedia"]
    demoted = ok(reg.handle("r", [Demote(BySession(1), "bob")], 5.0))
    assert StopMedia("bob") in demoted.actions
    assert TrackUnpublished("bob", "0") in demoted.events
    promoted = ok(reg.handle("r", [Promote(BySession(1), "bob")], 6.0))
    assert ResumeMedia("bob") in promoted.actions
    assert TrackPublished("bob", "0", TrackKind.VIDEO, True) in promoted.events  # still muted
    # its peer connection ends: what it announced is unlisted, the participant stays
    ended = ok(reg.session_ended("c2", "ice-consent-timeout", 7.0))
    assert ended.events == (TrackUnpublished("bob", "0"),)
    stage = reg.stage("r")
    assert stage is not None and stage.role_of("bob") is not None
    # kicked: everything ends, the connection included (by the hub, on the event)
    ok(reg.session_started(bob, "conference", "c3", (), 8.0))
    kicked = ok(reg.handle("r", [Kick(BySession(1), "bob")], 9.0))
    assert EndSessions(("c3",), "kicked") in kicked.actions
    assert ParticipantLeft("bob", LeaveReason.KICKED) in kicked.events
    assert ParticipantJoined not in [type(e) for e in kicked.events]
