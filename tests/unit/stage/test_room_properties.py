"""Property tests: a refused request never changes the room; the invariants always hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from interlive.auth import Role
from interlive.stage.model import (
    AcceptHand,
    Actor,
    BySession,
    ByToken,
    ConnectionLost,
    DeclineHand,
    Demote,
    Join,
    Kick,
    Leave,
    LowerHand,
    Promote,
    Publish,
    RaiseHand,
    Refusal,
    Request,
    Resume,
    SetLive,
    SetMuted,
    TrackKind,
    Unpublish,
)
from interlive.stage.room import StageRoom
from tests.unit.stage.support import ROOM, token

IDENTITIES = ["h", "c", "a", "b", "z"]
identities = st.sampled_from(IDENTITIES)
roles = st.sampled_from(list(Role))
rooms = st.sampled_from([ROOM, ROOM, ROOM, "other"])
sessions = st.integers(min_value=0, max_value=6)
tracks = st.sampled_from(["mic", "cam", "screen", ""])
kinds = st.sampled_from(list(TrackKind))
tokens = st.builds(
    lambda i, r, room, admin: token(i, r, room=room, admin=admin),
    identities,
    roles,
    rooms,
    st.none() | st.booleans(),
)
actors: st.SearchStrategy[Actor] = st.one_of(
    st.builds(BySession, sessions), st.builds(ByToken, tokens)
)

requests: st.SearchStrategy[Request] = st.one_of(
    st.builds(Join, tokens),
    st.builds(Resume, tokens, sessions),
    st.builds(Leave, sessions),
    st.builds(ConnectionLost, sessions),
    st.builds(Publish, sessions, tracks, kinds, st.booleans()),
    st.builds(Unpublish, sessions, tracks),
    st.builds(
        SetMuted,
        actors,
        st.none() | identities,
        st.booleans(),
        st.none() | tracks,
        st.none() | kinds,
    ),
    st.builds(RaiseHand, sessions),
    st.builds(LowerHand, sessions),
    st.builds(Promote, actors, identities),
    st.builds(Demote, actors, identities),
    st.builds(Kick, actors, identities),
    st.builds(AcceptHand, actors, identities),
    st.builds(DeclineHand, actors, identities),
    st.builds(SetLive, actors, st.booleans()),
)
steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=8.0), st.none() | requests),
    max_size=60,
)


def _check_invariants(room: StageRoom) -> None:
    snap = room.snapshot()
    by_identity = {p.identity: p for p in snap.participants}
    cohosts = sum(1 for p in snap.participants if p.role is Role.COHOST)
    assert cohosts <= room.max_publishers
    for hand in snap.hands:
        assert by_identity[hand.identity].role is Role.AUDIENCE
        assert by_identity[hand.identity].hand_raised_at == hand.since
    for p in snap.participants:
        if p.role is Role.AUDIENCE:
            assert p.tracks == ()
        assert room.session_of(p.identity) is not None


@settings(max_examples=500, deadline=None)
@given(steps=steps, cap=st.integers(min_value=1, max_value=3))
def test_refused_requests_change_nothing(
    steps: list[tuple[float, Request | None]], cap: int
) -> None:
    room = StageRoom(ROOM, max_publishers=cap)
    # A populated room first (sessions 1..5), so that most requests can succeed.
    for identity, role in zip(
        IDENTITIES, [Role.HOST, Role.COHOST, *[Role.AUDIENCE] * 3], strict=True
    ):
        room.handle(Join(token(identity, role)), 0.0)
    now = 0.0
    for dt, request in steps:
        now += dt
        if request is None:
            room.handle_timer(now)
            continue
        before = room.snapshot()
        sessions_before = {i: room.session_of(i) for i in IDENTITIES}
        result = room.handle(request, now)
        if isinstance(result, Refusal):
            assert room.snapshot() == before, (request, result)
            assert {i: room.session_of(i) for i in IDENTITIES} == sessions_before
        elif result == []:
            # A no-op is allowed to be empty only if nothing visible changed, except a
            # repeated connection loss, which changes nothing either.
            assert room.snapshot() == before, request
        _check_invariants(room)
