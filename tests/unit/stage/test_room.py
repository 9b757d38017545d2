from __future__ import annotations

from collections.abc import Callable

import pytest

from interlive.auth import Role
from interlive.stage.model import (
    PERMISSIONS,
    AcceptHand,
    Action,
    AllowPublishing,
    BySession,
    ByToken,
    ConnectionLost,
    ConnectionState,
    ConnectionStateChanged,
    DeclineHand,
    Demote,
    Disconnect,
    HandInfo,
    HandLowered,
    HandRaised,
    Join,
    Kick,
    Leave,
    LeaveReason,
    LiveStateChanged,
    LowerHand,
    LowerReason,
    ParticipantJoined,
    ParticipantLeft,
    Promote,
    Publish,
    RaiseHand,
    Refusal,
    RefusalCode,
    Request,
    Resume,
    RoleChanged,
    SessionAccepted,
    SetLive,
    SetMuted,
    StopPublishing,
    TrackKind,
    TrackMuted,
    TrackPublished,
    TrackUnpublished,
    Unpublish,
)
from interlive.stage.room import StageRoom
from tests.unit.stage.support import ROOM, join, ok, refused, token

AUDIO, VIDEO = TrackKind.AUDIO, TrackKind.VIDEO

# --- the rules table ----------------------------------------------------------------------

EXPECTED: dict[Role, set[Action]] = {
    Role.HOST: set(Action) - {Action.RAISE_HAND, Action.LOWER_HAND},
    Role.COHOST: {Action.PUBLISH, Action.SUBSCRIBE},
    Role.AUDIENCE: {Action.SUBSCRIBE, Action.RAISE_HAND, Action.LOWER_HAND},
}


def test_permissions_table_is_the_documented_matrix() -> None:
    assert {role: set(actions) for role, actions in PERMISSIONS.items()} == EXPECTED


def _setup(role: Role) -> tuple[StageRoom, int]:
    """A room with the actor ``x`` (``role``), ``aud`` (hand up) and ``co`` (publishing)."""
    room = StageRoom(ROOM)
    join(room, "h0", Role.HOST)
    me = join(room, "x", role)
    aud = join(room, "aud", Role.AUDIENCE)
    ok(room.handle(RaiseHand(aud), 1.0))
    co = join(room, "co", Role.COHOST)
    ok(room.handle(Publish(co, "mic", AUDIO), 1.0))
    return room, me


_ATTEMPTS: dict[Action, Callable[[int], Request]] = {
    Action.PUBLISH: lambda s: Publish(s, "cam", VIDEO),
    Action.RAISE_HAND: RaiseHand,
    Action.LOWER_HAND: LowerHand,
    Action.PROMOTE: lambda s: Promote(BySession(s), "aud"),
    Action.DEMOTE: lambda s: Demote(BySession(s), "co"),
    Action.MUTE: lambda s: SetMuted(BySession(s), "co", True),
    Action.KICK: lambda s: Kick(BySession(s), "aud"),
    Action.ACCEPT_HAND: lambda s: AcceptHand(BySession(s), "aud"),
    Action.DECLINE_HAND: lambda s: DeclineHand(BySession(s), "aud"),
    Action.START_LIVE: lambda s: SetLive(BySession(s), True),
    Action.STOP_LIVE: lambda s: SetLive(BySession(s), False),
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_every_role_by_every_action(role: Role, action: Action) -> None:
    room, me = _setup(role)
    allowed = action in EXPECTED[role]
    assert room.may("x", action) is allowed
    if action is Action.SUBSCRIBE:
        return  # a grant the SFU consults; there is no request for it
    if allowed:
        ok(room.handle(_ATTEMPTS[action](me), 2.0))
    else:
        assert refused(room, _ATTEMPTS[action](me), 2.0).code is RefusalCode.FORBIDDEN


@pytest.mark.parametrize("action", sorted(EXPECTED[Role.HOST] - EXPECTED[Role.COHOST]))
def test_rest_caller_with_host_token_not_in_the_room(action: Action) -> None:
    room = StageRoom(ROOM)
    aud = join(room, "aud", Role.AUDIENCE)
    ok(room.handle(RaiseHand(aud), 1.0))
    co = join(room, "co", Role.COHOST)
    ok(room.handle(Publish(co, "mic", AUDIO), 1.0))
    rest = ByToken(token("ops", Role.HOST))
    requests: dict[Action, Request] = {
        Action.PROMOTE: Promote(rest, "aud"),
        Action.DEMOTE: Demote(rest, "co"),
        Action.MUTE: SetMuted(rest, "co", True),
        Action.KICK: Kick(rest, "aud"),
        Action.ACCEPT_HAND: AcceptHand(rest, "aud"),
        Action.DECLINE_HAND: DeclineHand(rest, "aud"),
        Action.START_LIVE: SetLive(rest, True),
        Action.STOP_LIVE: SetLive(rest, False),
    }
    ok(room.handle(requests[action], 2.0))
    # An audience token is refused, unless it carries the admin grant.
    weak = ByToken(token("viewer", Role.AUDIENCE))
    assert refused(room, Kick(weak, "co")).code is RefusalCode.FORBIDDEN
    ok(room.handle(Kick(ByToken(token("ops2", Role.AUDIENCE, admin=True)), "co"), 3.0))


def test_room_state_beats_the_token_for_present_identities() -> None:
    room = StageRoom(ROOM)
    join(room, "h", Role.HOST)
    co = join(room, "co", Role.COHOST)
    ok(room.handle(Demote(ByToken(token("h", Role.HOST)), "co"), 1.0))
    # co's own token still says cohost; the room says audience.
    assert refused(room, Publish(co, "mic", AUDIO)).code is RefusalCode.FORBIDDEN
    assert refused(room, Kick(ByToken(token("co", Role.HOST)), "h")).code is RefusalCode.FORBIDDEN


def test_token_for_another_room_is_refused() -> None:
    room = StageRoom(ROOM)
    assert refused(room, Join(token("a", Role.HOST, room="elsewhere"))).code is (
        RefusalCode.FORBIDDEN
    )
    join(room, "aud", Role.AUDIENCE)
    rest = ByToken(token("h", Role.HOST, room="elsewhere"))
    assert refused(room, Promote(rest, "aud")).code is RefusalCode.FORBIDDEN


def test_refusal_codes_map_to_http() -> None:
    assert [c.http_status for c in RefusalCode] == [400, 403, 404, 409]
    assert Refusal(RefusalCode.STAGE_FULL, "full").http_status == 409


# --- joining ------------------------------------------------------------------------------


def test_join_outputs_and_snapshot() -> None:
    room = StageRoom(ROOM)
    out = ok(room.handle(Join(token("h", Role.HOST)), 5.0))
    assert out == [
        ParticipantJoined("h", Role.HOST, 5.0),
        SessionAccepted("h", 1, Role.HOST, resumed=False),
        AllowPublishing("h"),
    ]
    out = ok(room.handle(Join(token("v", Role.AUDIENCE)), 6.0))
    assert out == [
        ParticipantJoined("v", Role.AUDIENCE, 6.0),
        SessionAccepted("v", 2, Role.AUDIENCE, resumed=False),
    ]
    snap = room.snapshot()
    assert [(p.identity, p.role, p.joined_at, p.state) for p in snap.participants] == [
        ("h", Role.HOST, 5.0, ConnectionState.CONNECTED),
        ("v", Role.AUDIENCE, 6.0, ConnectionState.CONNECTED),
    ]
    assert len(room) == 2 and room.publisher_count == 1


def test_nth_join_replaces_the_older_session() -> None:
    room = StageRoom(ROOM)
    host = join(room, "h", Role.HOST)
    old = join(room, "a", Role.AUDIENCE, now=1.0)
    ok(room.handle(RaiseHand(old), 2.0))
    ok(room.handle(Promote(BySession(host), "a"), 3.0))
    ok(room.handle(Publish(old, "mic", AUDIO), 4.0))
    out = ok(room.handle(Join(token("a", Role.AUDIENCE)), 5.0))
    new = room.session_of("a")
    assert new is not None and new != old
    assert out == [
        Disconnect("a", old, "replaced"),
        TrackUnpublished("a", "mic"),
        SessionAccepted("a", new, Role.COHOST, resumed=False),
        AllowPublishing("a"),
    ]
    # Same participant: role (cohost, from the promotion) and join time kept.
    assert len(room) == 2 and room.role_of("a") is Role.COHOST
    assert room.snapshot().participants[1].joined_at == 1.0
    # The old session is dead.
    assert refused(room, Publish(old, "cam", VIDEO)).code is RefusalCode.FORBIDDEN
    assert refused(room, Leave(old)).code is RefusalCode.FORBIDDEN
    ok(room.handle(Publish(new, "cam", VIDEO), 6.0))


def test_replacement_of_a_reconnecting_session_reconnects_it() -> None:
    room = StageRoom(ROOM)
    old = join(room, "a", Role.COHOST)
    ok(room.handle(ConnectionLost(old), 1.0))
    out = ok(room.handle(Join(token("a", Role.COHOST)), 2.0))
    assert ConnectionStateChanged("a", ConnectionState.CONNECTED) in out
    assert room.next_deadline() is None
    assert room.handle_timer(100.0) == []
    assert room.role_of("a") is Role.COHOST


# --- the stage cap ------------------------------------------------------------------------


def test_promotion_with_the_stage_full_is_refused_409() -> None:
    room = StageRoom(ROOM, max_publishers=2)
    host = join(room, "h", Role.HOST)
    join(room, "c", Role.COHOST)
    a = join(room, "a", Role.AUDIENCE)
    ok(room.handle(RaiseHand(a), 1.0))
    full = refused(room, Promote(BySession(host), "a"))
    assert full.code is RefusalCode.STAGE_FULL and full.http_status == 409
    assert "full" in full.message
    assert refused(room, AcceptHand(BySession(host), "a")).code is RefusalCode.STAGE_FULL
    assert room.hands() == (HandInfo("a", 1.0),)  # still waiting
    # A co-host cannot join a full stage; a host always can (and counts).
    assert refused(room, Join(token("c2", Role.COHOST))).code is RefusalCode.STAGE_FULL
    join(room, "h2", Role.HOST)
    assert room.publisher_count == 3
    # Room frees up: demote the co-host, then the promotion fits... once a host leaves.
    ok(room.handle(Demote(BySession(host), "c"), 2.0))
    assert refused(room, Promote(BySession(host), "a")).code is RefusalCode.STAGE_FULL
    ok(room.handle(Leave(room.session_of("h2") or 0), 3.0))
    ok(room.handle(AcceptHand(BySession(host), "a"), 4.0))
    assert room.role_of("a") is Role.COHOST


def test_rejoin_of_a_cohost_is_not_counted_twice() -> None:
    room = StageRoom(ROOM, max_publishers=1)
    join(room, "c", Role.COHOST)
    join(room, "c", Role.COHOST)
    assert room.publisher_count == 1


# --- promotion and demotion ---------------------------------------------------------------


def test_promotion_lets_the_same_session_publish() -> None:
    room = StageRoom(ROOM)
    host = join(room, "h", Role.HOST)
    a = join(room, "a", Role.AUDIENCE)
    assert not room.may("a", Action.PUBLISH)
    assert refused(room, Publish(a, "mic", AUDIO)).code is RefusalCode.FORBIDDEN
    out = ok(room.handle(Promote(BySession(host), "a"), 1.0))
    assert out == [RoleChanged("a", Role.AUDIENCE, Role.COHOST, "h"), AllowPublishing("a")]
    assert room.may("a", Action.PUBLISH)  # e.g. WHIP with the same audience token
    assert ok(room.handle(Publish(a, "mic", AUDIO), 2.0)) == [
        TrackPublished("a", "mic", AUDIO, False)
    ]
    assert ok(room.handle(Promote(BySession(host), "a"), 3.0)) == []  # already there


def test_demotion_stops_publishing_and_keeps_the_participant() -> None:
    room = StageRoom(ROOM)
    host = join(room, "h", Role.HOST)
    c = join(room, "c", Role.COHOST)
    ok(room.handle(Publish(c, "mic", AUDIO), 1.0))
    ok(room.handle(Publish(c, "cam", VIDEO), 1.0))
    out = ok(room.handle(Demote(BySession(host), "c"), 2.0))
    assert out == [
        RoleChanged("c", Role.COHOST, Role.AUDIENCE, "h"),
        StopPublishing("c", ("mic", "cam")),
        TrackUnpublished("c", "mic"),
        TrackUnpublished("c", "cam"),
    ]
    assert room.role_of("c") is Role.AUDIENCE and len(room) == 2
    assert room.snapshot().participants[1].tracks == ()
    assert refused(room, Publish(c, "mic", AUDIO)).code is RefusalCode.FORBIDDEN
    ok(room.handle(RaiseHand(c), 3.0))  # may ask to come back
    assert ok(room.handle(Demote(BySession(host), "c"), 4.0)) == []  # already audience


def test_no_admin_action_targets_a_host() -> None:
    room = StageRoom(ROOM)
    h1 = join(room, "h1", Role.HOST)
    join(room, "h2", Role.HOST)
    for request in (
        Demote(BySession(h1), "h2"),
        Kick(BySession(h1), "h2"),
        Kick(BySession(h1), "h1"),
        SetMuted(BySession(h1), "h2", True),
        Promote(BySession(h1), "h2"),
    ):
        assert refused(room, request).code is RefusalCode.FORBIDDEN


def test_unknown_target_is_not_found() -> None:
    room = StageRoom(ROOM)
    host = join(room, "h", Role.HOST)
    for request in (
        Promote(BySession(host), "ghost"),
        Demote(BySession(host), "ghost"),
        Kick(BySession(host), "ghost"),
        AcceptHand(BySession(host), "ghost"),
        SetMuted(BySession(host), "ghost", True),
    ):
        assert refused(room, request).code is RefusalCode.NOT_FOUND


# --- raise hand ---------------------------------------------------------------------------


def test_raise_lower_accept_decline() -> None:
    room = StageRoom(ROOM)
    host = BySession(join(room, "h", Role.HOST))
    a = join(room, "a", Role.AUDIENCE)
    b = join(room, "b", Role.AUDIENCE)
    c = join(room, "c", Role.AUDIENCE)
    assert ok(room.handle(RaiseHand(b), 1.0)) == [HandRaised("b", 1.0)]
    assert ok(room.handle(RaiseHand(a), 2.0)) == [HandRaised("a", 2.0)]
    assert ok(room.handle(RaiseHand(c), 3.0)) == [HandRaised("c", 3.0)]
    assert ok(room.handle(RaiseHand(b), 4.0)) == []  # already up: keeps its place
    assert [h.identity for h in room.hands()] == ["b", "a", "c"]
    assert room.snapshot().participants[2].hand_raised_at == 1.0

    assert ok(room.handle(LowerHand(a), 5.0)) == [HandLowered("a", LowerReason.LOWERED)]
    assert ok(room.handle(LowerHand(a), 5.0)) == []
    assert ok(room.handle(DeclineHand(host, "c"), 6.0)) == [HandLowered("c", LowerReason.DECLINED)]
    assert refused(room, DeclineHand(host, "c")).code is RefusalCode.BAD_REQUEST
    assert refused(room, AcceptHand(host, "a")).code is RefusalCode.BAD_REQUEST

    out = ok(room.handle(AcceptHand(host, "b"), 7.0))
    assert out == [
        RoleChanged("b", Role.AUDIENCE, Role.COHOST, "h"),
        HandLowered("b", LowerReason.ACCEPTED),
        AllowPublishing("b"),
    ]
    assert room.hands() == () and room.role_of("b") is Role.COHOST
    # On stage now: no hand to raise.
    assert refused(room, RaiseHand(b)).code is RefusalCode.FORBIDDEN


def test_direct_promotion_takes_the_hand_down() -> None:
    room = StageRoom(ROOM)
    host = BySession(join(room, "h", Role.HOST))
    a = join(room, "a", Role.AUDIENCE)
    ok(room.handle(RaiseHand(a), 1.0))
    out = ok(room.handle(Promote(host, "a"), 2.0))
    assert HandLowered("a", LowerReason.PROMOTED) in out
    assert room.hands() == ()


def test_leaving_takes_the_hand_down() -> None:
    room = StageRoom(ROOM)
    a = join(room, "a", Role.AUDIENCE)
    ok(room.handle(RaiseHand(a), 1.0))
    out = ok(room.handle(Leave(a), 2.0))
    assert out == [
        Disconnect("a", a, "left"),
        HandLowered("a", LowerReason.LEFT),
        ParticipantLeft("a", LeaveReason.LEFT),
    ]
    assert room.hands() == () and len(room) == 0


# --- reconnect ----------------------------------------------------------------------------


def test_reconnect_within_15s_keeps_role_tracks_and_hand() -> None:
    room = StageRoom(ROOM)
    host = BySession(join(room, "h", Role.HOST))
    a = join(room, "a", Role.AUDIENCE)
    ok(room.handle(Promote(host, "a"), 1.0))
    ok(room.handle(Publish(a, "mic", AUDIO), 2.0))
    assert ok(room.handle(ConnectionLost(a), 10.0)) == [
        ConnectionStateChanged("a", ConnectionState.RECONNECTING)
    ]
    assert ok(room.handle(ConnectionLost(a), 10.5)) == []
    assert room.next_deadline() == 25.0
    # While reconnecting, the session cannot act but can be acted upon.
    assert refused(room, Publish(a, "cam", VIDEO), 11.0).code is RefusalCode.FORBIDDEN
    assert room.handle_timer(24.9) == []
    out = ok(room.handle(Resume(token("a", Role.AUDIENCE), a), 24.9))
    assert out == [
        ConnectionStateChanged("a", ConnectionState.CONNECTED),
        SessionAccepted("a", a, Role.COHOST, resumed=True),
    ]
    assert room.role_of("a") is Role.COHOST
    assert [t.track_id for t in room.snapshot().participants[1].tracks] == ["mic"]
    assert room.next_deadline() is None
    ok(room.handle(Publish(a, "cam", VIDEO), 25.0))


def test_after_15s_the_participant_leaves() -> None:
    room = StageRoom(ROOM)
    a = join(room, "a", Role.COHOST)
    ok(room.handle(Publish(a, "mic", AUDIO), 1.0))
    ok(room.handle(ConnectionLost(a), 10.0))
    # Too late even before the timer ran:
    late = refused(room, Resume(token("a", Role.COHOST), a), 25.0)
    assert late.code is RefusalCode.NOT_FOUND
    out = room.handle_timer(25.0)
    assert out == [
        Disconnect("a", a, "timeout"),
        TrackUnpublished("a", "mic"),
        ParticipantLeft("a", LeaveReason.TIMEOUT),
    ]
    assert len(room) == 0 and room.next_deadline() is None
    assert refused(room, Resume(token("a", Role.COHOST), a), 26.0).code is RefusalCode.NOT_FOUND


def test_resume_checks_identity_and_room() -> None:
    room = StageRoom(ROOM)
    a = join(room, "a", Role.COHOST)
    ok(room.handle(ConnectionLost(a), 1.0))
    assert refused(room, Resume(token("b", Role.COHOST), a)).code is RefusalCode.FORBIDDEN
    other = token("a", Role.COHOST, room="x")
    assert refused(room, Resume(other, a)).code is RefusalCode.FORBIDDEN
    assert refused(room, Resume(token("a", Role.COHOST), 99)).code is RefusalCode.NOT_FOUND


def test_resume_of_a_connected_session_rebinds_it() -> None:
    room = StageRoom(ROOM)
    a = join(room, "a", Role.COHOST)
    out = ok(room.handle(Resume(token("a", Role.COHOST), a), 1.0))
    assert out == [SessionAccepted("a", a, Role.COHOST, resumed=True)]


# --- kick, mute, tracks, live ---------------------------------------------------------------


def test_kicked_participant_is_removed_and_its_actions_refused() -> None:
    room = StageRoom(ROOM)
    host = BySession(join(room, "h", Role.HOST))
    c = join(room, "c", Role.COHOST)
    ok(room.handle(Publish(c, "mic", AUDIO), 1.0))
    out = ok(room.handle(Kick(host, "c"), 2.0))
    assert out == [
        Disconnect("c", c, "kicked"),
        TrackUnpublished("c", "mic"),
        ParticipantLeft("c", LeaveReason.KICKED),
    ]
    assert room.role_of("c") is None
    for request in (
        Publish(c, "cam", VIDEO),
        Unpublish(c, "mic"),
        RaiseHand(c),
        LowerHand(c),
        Leave(c),
        ConnectionLost(c),
        SetMuted(BySession(c), None, True),
        Promote(BySession(c), "h"),
    ):
        assert refused(room, request).code is RefusalCode.FORBIDDEN


def test_mute_rules() -> None:
    room = StageRoom(ROOM)
    host = BySession(join(room, "h", Role.HOST))
    c = join(room, "c", Role.COHOST)
    d = join(room, "d", Role.COHOST)
    ok(room.handle(Publish(c, "mic", AUDIO), 1.0))
    ok(room.handle(Publish(c, "cam", VIDEO), 1.0))
    # Self mute and unmute, by track or by kind.
    assert ok(room.handle(SetMuted(BySession(c), None, True, track_id="cam"), 2.0)) == [
        TrackMuted("c", "cam", True, "c")
    ]
    assert ok(room.handle(SetMuted(BySession(c), "c", False, kind=VIDEO), 3.0)) == [
        TrackMuted("c", "cam", False, "c")
    ]
    # A host mutes someone else (REST: {"muted": {"audio": true}}), cannot unmute them.
    assert ok(room.handle(SetMuted(host, "c", True, kind=AUDIO), 4.0)) == [
        TrackMuted("c", "mic", True, "h")
    ]
    assert ok(room.handle(SetMuted(host, "c", True, kind=AUDIO), 4.5)) == []
    assert refused(room, SetMuted(host, "c", False, kind=AUDIO)).code is RefusalCode.FORBIDDEN
    # A co-host cannot mute others; no matching track is not_found.
    assert refused(room, SetMuted(BySession(d), "c", True)).code is RefusalCode.FORBIDDEN
    assert refused(room, SetMuted(BySession(d), None, True)).code is RefusalCode.NOT_FOUND
    muted = {t.track_id: t.muted for t in room.snapshot().participants[1].tracks}
    assert muted == {"mic": True, "cam": False}


def test_track_validation() -> None:
    room = StageRoom(ROOM)
    c = join(room, "c", Role.COHOST)
    assert ok(room.handle(Publish(c, "mic", AUDIO, muted=True), 1.0)) == [
        TrackPublished("c", "mic", AUDIO, True)
    ]
    assert refused(room, Publish(c, "mic", AUDIO)).code is RefusalCode.BAD_REQUEST
    assert refused(room, Publish(c, "", AUDIO)).code is RefusalCode.BAD_REQUEST
    assert refused(room, Publish(c, "x" * 65, AUDIO)).code is RefusalCode.BAD_REQUEST
    for i in range(7):
        ok(room.handle(Publish(c, f"t{i}", VIDEO), 2.0))
    assert refused(room, Publish(c, "t9", VIDEO)).code is RefusalCode.BAD_REQUEST
    assert refused(room, Unpublish(c, "nope")).code is RefusalCode.NOT_FOUND
    assert ok(room.handle(Unpublish(c, "t0"), 3.0)) == [TrackUnpublished("c", "t0")]


def test_live_start_stop() -> None:
    room = StageRoom(ROOM)
    host = BySession(join(room, "h", Role.HOST))
    assert ok(room.handle(SetLive(host, True), 1.0)) == [LiveStateChanged(True, "h")]
    assert ok(room.handle(SetLive(host, True), 2.0)) == []
    assert room.snapshot().live
    assert ok(room.handle(SetLive(host, False), 3.0)) == [LiveStateChanged(False, "h")]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        StageRoom("")
    with pytest.raises(ValueError):
        StageRoom("r", max_publishers=0)
