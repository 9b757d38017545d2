"""The room registry as a pure core: sessions as participants, effects as SFU actions."""

from __future__ import annotations

from interlive.auth import AccessToken, Grants, Role
from interlive.server.rooms import (
    ADMIN_ROOM,
    EndSessions,
    ForgetMedia,
    MuteMedia,
    Outcome,
    ResumeMedia,
    RoomFinished,
    RoomRegistry,
    RoomStarted,
    StopMedia,
    TransportInfo,
    allowed_actions,
    scoped_token,
)
from interlive.stage.model import (
    ADMIN_ACTIONS,
    ByToken,
    ConnectionState,
    Demote,
    Event,
    Kick,
    LeaveReason,
    ParticipantJoined,
    ParticipantLeft,
    Promote,
    Refusal,
    RefusalCode,
    RoleChanged,
    SetMuted,
    TrackKind,
    TrackPublished,
    TrackUnpublished,
)

AV = [("0", "audio"), ("1", "video")]


def tok(identity: str, role: str, room: str = "r", *, admin: bool | None = None) -> AccessToken:
    grants = Grants.for_role(Role(role))
    if admin is not None:
        grants = Grants(grants.publish, grants.subscribe, admin)
    return AccessToken(room, identity, Role(role), grants, expires_at=2**31)


HOST = tok("alice", "host")


def ok(result: Refusal | Outcome | None) -> Outcome:
    assert isinstance(result, Outcome), result
    return result


def kinds(outcome: Outcome) -> list[str]:
    return [type(e).__name__ for e in outcome.events]


def start(reg: RoomRegistry, token: AccessToken, mode: str, sid: str, now: float = 0.0) -> Outcome:
    assert reg.admit(token, mode) is None  # type: ignore[arg-type]
    tracks = AV if mode == "publish" else []
    return ok(reg.session_started(token, mode, sid, tracks, now))  # type: ignore[arg-type]


def role(reg: RoomRegistry, identity: str) -> Role | None:
    stage = reg.stage("r")
    return None if stage is None else stage.role_of(identity)


def tracks(reg: RoomRegistry, identity: str) -> list[tuple[str, str, bool]]:
    stage = reg.stage("r")
    assert stage is not None
    for p in stage.snapshot().participants:
        if p.identity == identity:
            return [(t.track_id, t.kind.value, t.muted) for t in p.tracks]
    raise AssertionError(f"{identity} not in the room")


def test_first_session_starts_the_room_and_the_last_end_finishes_it() -> None:
    reg = RoomRegistry()
    out = start(reg, tok("carol", "cohost"), "publish", "s1", now=5.0)
    assert out.events[0] == RoomStarted("r", 5.0)
    assert isinstance(out.events[1], ParticipantJoined) and out.events[1].role is Role.COHOST
    published = [e for e in out.events if isinstance(e, TrackPublished)]
    assert [(e.track_id, e.kind) for e in published] == [
        ("whip:0", TrackKind.AUDIO),
        ("whip:1", TrackKind.VIDEO),
    ]
    assert reg.created_at("r") == 5.0 and reg.locate("s1") == ("r", "carol")
    out = ok(reg.session_ended("s1", "deleted", 9.0))
    assert kinds(out) == ["TrackUnpublished", "TrackUnpublished", "ParticipantLeft", "RoomFinished"]
    assert out.events[-1] == RoomFinished("r", 9.0)
    assert reg.names() == [] and reg.stage("r") is None and reg.locate("s1") is None


def test_whip_and_whep_of_one_identity_are_one_participant() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "subscribe", "s1")
    out = start(reg, tok("carol", "cohost"), "publish", "s2")
    assert kinds(out) == ["TrackPublished", "TrackPublished"]  # no second join
    assert reg.transports("r", "carol") == (
        TransportInfo("s1", "subscribe"),
        TransportInfo("s2", "publish"),
    )
    out = ok(reg.session_ended("s2", "deleted", 1.0))  # stops publishing, still watching
    assert kinds(out) == ["TrackUnpublished", "TrackUnpublished"]
    assert role(reg, "carol") is Role.COHOST and tracks(reg, "carol") == []


def test_an_unfollowed_session_end_is_ignored() -> None:
    assert RoomRegistry().session_ended("nope", "deleted", 0.0) is None


def test_audience_may_not_publish_until_promoted_and_not_after_demotion() -> None:
    reg = RoomRegistry()
    carol = tok("carol", "audience")
    refused = reg.admit(carol, "publish")
    assert refused == Refusal(RefusalCode.FORBIDDEN, "role 'audience' may not publish")
    start(reg, carol, "subscribe", "s1")
    refused = reg.admit(carol, "publish")
    assert refused is not None and refused.code is RefusalCode.FORBIDDEN
    assert "audience" in refused.message
    out = ok(reg.handle("r", [Promote(ByToken(HOST), "carol")], 1.0))
    assert out.actions == ()  # nothing held: nothing for the SFU to do
    assert reg.admit(carol, "publish") is None  # the same audience token now publishes
    start(reg, carol, "publish", "s2")
    assert [t[0] for t in tracks(reg, "carol")] == ["whip:0", "whip:1"]
    out = ok(reg.handle("r", [Demote(ByToken(HOST), "carol")], 2.0))
    assert out.actions == (StopMedia("carol"),)
    assert kinds(out) == ["RoleChanged", "TrackUnpublished", "TrackUnpublished"]
    assert reg.admit(carol, "publish") is not None
    assert reg.transports("r", "carol") == (
        TransportInfo("s1", "subscribe"),
        TransportInfo("s2", "publish"),  # still connected, forwarding held by the worker
    )


def test_promotion_again_resumes_the_held_whip_tracks() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "publish", "s1")
    ok(reg.handle("r", [Demote(ByToken(HOST), "carol")], 1.0))
    out = ok(reg.handle("r", [Promote(ByToken(HOST), "carol")], 2.0))
    assert out.actions == (ResumeMedia("carol"),)
    assert kinds(out) == ["RoleChanged", "TrackPublished", "TrackPublished"]
    assert len(tracks(reg, "carol")) == 2


def test_the_held_session_ending_leaves_and_the_worker_forgets() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "publish", "s1")
    ok(reg.handle("r", [Demote(ByToken(HOST), "carol")], 1.0))
    out = ok(reg.session_ended("s1", "ice-consent-timeout", 2.0))
    assert ForgetMedia("carol") in out.actions
    assert ParticipantLeft("carol", LeaveReason.LEFT) in out.events


def test_replacement_keeps_role_and_join_time() -> None:
    reg = RoomRegistry()
    carol = tok("carol", "audience")
    start(reg, carol, "subscribe", "s1", now=1.0)
    ok(reg.handle("r", [Promote(ByToken(HOST), "carol")], 2.0))
    start(reg, carol, "publish", "s2", now=3.0)
    # the worker replaces both sessions with new ones; their ends come first
    ok(reg.session_ended("s1", "replaced", 4.0))
    out = ok(reg.session_ended("s2", "replaced", 4.0))
    assert kinds(out) == ["TrackUnpublished", "TrackUnpublished", "ConnectionStateChanged"]
    assert reg.next_deadline() == 4.0 + reg.resume_window
    out = start(reg, carol, "publish", "s3", now=5.0)
    assert "ParticipantJoined" not in kinds(out)
    assert kinds(out)[0] == "ConnectionStateChanged"
    stage = reg.stage("r")
    assert stage is not None
    (info,) = stage.snapshot().participants
    assert info.role is Role.COHOST and info.joined_at == 1.0
    assert info.state is ConnectionState.CONNECTED
    assert reg.next_deadline() is None


def test_a_replacement_that_never_comes_times_out() -> None:
    reg = RoomRegistry(resume_window=15.0)
    start(reg, tok("carol", "cohost"), "publish", "s1")
    ok(reg.session_ended("s1", "replaced", 10.0))
    assert reg.handle_timer(24.9) == []
    (out,) = reg.handle_timer(25.0)
    assert ParticipantLeft("carol", LeaveReason.TIMEOUT) in out.events
    assert out.events[-1] == RoomFinished("r", 25.0)
    assert reg.names() == [] and reg.next_deadline() is None


def test_a_replacement_whose_end_was_not_reported_yet_is_dropped_all_the_same() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "publish", "s1")
    out = start(reg, tok("carol", "cohost"), "publish", "s2")
    assert kinds(out) == [
        "TrackUnpublished",
        "TrackUnpublished",
        "TrackPublished",
        "TrackPublished",
    ]
    assert reg.locate("s1") is None
    assert reg.session_ended("s1", "replaced", 1.0) is None


def test_kick_ends_every_session_and_their_ends_are_then_ignored() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "subscribe", "s1")
    start(reg, tok("carol", "cohost"), "publish", "s2")
    start(reg, tok("dave", "audience"), "subscribe", "s3")
    out = ok(reg.handle("r", [Kick(ByToken(HOST), "carol")], 1.0))
    assert out.actions == (EndSessions(("s1", "s2"), "kicked"),)
    assert ParticipantLeft("carol", LeaveReason.KICKED) in out.events
    assert reg.session_ended("s1", "kicked", 1.1) is None
    assert reg.session_ended("s2", "kicked", 1.1) is None
    assert role(reg, "carol") is None and role(reg, "dave") is Role.AUDIENCE


def test_kicking_the_last_participant_finishes_the_room() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "publish", "s1")
    out = ok(reg.handle("r", [Kick(ByToken(HOST), "carol")], 1.0))
    assert out.events[-1] == RoomFinished("r", 1.0)


def test_mute_is_an_sfu_action_and_sticks_to_later_tracks() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "publish", "s1")
    mute = SetMuted(ByToken(HOST), "carol", True, kind=TrackKind.AUDIO)
    out = ok(reg.handle("r", [mute], 1.0))
    assert out.actions == (MuteMedia("carol", TrackKind.AUDIO, True),)
    assert tracks(reg, "carol") == [("whip:0", "audio", True), ("whip:1", "video", False)]
    # a new WHIP session of carol starts muted, and the worker is told again
    ok(reg.session_ended("s1", "replaced", 2.0))
    out = start(reg, tok("carol", "cohost"), "publish", "s2", now=2.0)
    assert out.actions == (MuteMedia("carol", TrackKind.AUDIO, True),)
    assert tracks(reg, "carol")[0] == ("whip:0", "audio", True)
    # carol unmutes herself (her own token over REST)
    unmute = SetMuted(ByToken(tok("carol", "cohost")), "carol", False, kind=TrackKind.AUDIO)
    out = ok(reg.handle("r", [unmute], 3.0))
    assert out.actions == (MuteMedia("carol", TrackKind.AUDIO, False),)
    out = ok(reg.session_ended("s2", "deleted", 4.0))
    assert ForgetMedia("carol") not in out.actions  # nothing left to forget


def test_several_requests_are_all_or_nothing() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "cohost"), "publish", "s1")
    stage = reg.stage("r")
    assert stage is not None
    before = stage.snapshot()
    requests = [
        SetMuted(ByToken(HOST), "carol", True, kind=TrackKind.AUDIO),
        SetMuted(ByToken(HOST), "carol", False, kind=TrackKind.VIDEO),  # a host may not unmute
    ]
    refused = reg.handle("r", requests, 1.0)
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.FORBIDDEN
    assert stage.snapshot() == before


def test_unknown_room_and_identity() -> None:
    reg = RoomRegistry()
    refused = reg.handle("r", [Kick(ByToken(HOST), "x")], 0.0)
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.NOT_FOUND
    start(reg, tok("carol", "cohost"), "publish", "s1")
    refused = reg.handle("r", [Kick(ByToken(HOST), "x")], 0.0)
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.NOT_FOUND


def test_stage_cap_refuses_cohost_joins_and_promotions() -> None:
    reg = RoomRegistry(max_publishers=2)
    start(reg, tok("h", "host"), "publish", "s1")
    start(reg, tok("c1", "cohost"), "publish", "s2")
    full = reg.admit(tok("c2", "cohost"), "publish")
    assert full is not None and full.code is RefusalCode.STAGE_FULL and full.http_status == 409
    assert reg.admit(tok("c2", "cohost"), "subscribe") is not None  # joining is the refused part
    assert reg.admit(tok("h2", "host"), "publish") is None  # hosts are never locked out
    start(reg, tok("a", "audience"), "subscribe", "s3")
    refused = reg.handle("r", [Promote(ByToken(HOST), "a")], 1.0)
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.STAGE_FULL


def test_a_commit_after_the_room_changed_is_refused_without_change() -> None:
    reg = RoomRegistry()
    carol = tok("carol", "audience")
    start(reg, carol, "subscribe", "s1")
    ok(reg.handle("r", [Promote(ByToken(HOST), "carol")], 1.0))
    assert reg.admit(carol, "publish") is None
    ok(reg.handle("r", [Demote(ByToken(HOST), "carol")], 2.0))  # while the worker answered
    refused = reg.session_started(carol, "publish", "s2", AV, 3.0)
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.FORBIDDEN
    assert reg.locate("s2") is None
    assert reg.transports("r", "carol") == (TransportInfo("s1", "subscribe"),)


def test_the_admin_room_name_is_reserved() -> None:
    reg = RoomRegistry()
    refused = reg.admit(tok("root", "host", ADMIN_ROOM), "subscribe")
    assert refused is not None and refused.code is RefusalCode.BAD_REQUEST


def test_scoped_tokens_and_allowed_actions() -> None:
    admin = tok("root", "host", ADMIN_ROOM)
    scoped = scoped_token(admin, "r")
    assert scoped is not None and scoped.room == "r"
    assert scoped_token(tok("root", "host", ADMIN_ROOM, admin=False), "r") is None
    assert scoped_token(HOST, "r") is HOST and scoped_token(HOST, "other") is None
    assert scoped_token(admin, ADMIN_ROOM) is not None
    reg = RoomRegistry()
    assert allowed_actions(HOST, None) >= ADMIN_ACTIONS
    assert not allowed_actions(tok("c", "cohost"), None) & ADMIN_ACTIONS
    assert allowed_actions(tok("c", "cohost", admin=True), None) >= ADMIN_ACTIONS
    start(reg, HOST, "subscribe", "s1")
    start(reg, tok("c", "cohost"), "publish", "s2")
    # a host present in the room keeps its admin; a demoted one would lose it
    assert allowed_actions(HOST, reg.stage("r")) >= ADMIN_ACTIONS


def test_role_changes_reach_events_in_order() -> None:
    reg = RoomRegistry()
    start(reg, tok("carol", "audience"), "subscribe", "s1")
    out = ok(reg.handle("r", [Promote(ByToken(HOST), "carol")], 1.0))
    events: list[Event] = list(out.events)
    assert events == [RoleChanged("carol", Role.AUDIENCE, Role.COHOST, "alice")]
    assert not [e for e in events if isinstance(e, TrackUnpublished)]
