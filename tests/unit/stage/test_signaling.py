from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import interlive.stage.signaling as sig
from interlive.auth import Role
from interlive.stage.model import (
    AcceptHand,
    ActiveSpeakerChanged,
    BySession,
    ConnectionQuality,
    ConnectionQualityChanged,
    ConnectionState,
    ConnectionStateChanged,
    DeclineHand,
    Demote,
    HandInfo,
    HandLowered,
    HandRaised,
    Kick,
    Leave,
    LeaveReason,
    LiveStateChanged,
    LowerHand,
    LowerReason,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    Promote,
    Publish,
    RaiseHand,
    RoleChanged,
    RoomSnapshot,
    SetLive,
    SetMuted,
    TrackInfo,
    TrackKind,
    TrackMuted,
    TrackPublished,
    TrackUnpublished,
    Unpublish,
)
from interlive.stage.signaling import (
    CLIENT_MESSAGE_TYPES,
    EVENT_TYPES,
    MAX_MESSAGE_BYTES,
    AckMsg,
    ErrorMsg,
    JoinedMsg,
    PongMsg,
    RemoteStream,
    ServerAnswerMsg,
    ServerCandidateMsg,
    ServerMessage,
    ServerOfferMsg,
    SignalingError,
    encode_server_message,
    parse_client_message,
    room_request,
)

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"

#: A valid example of every client message, and what it parses to.
CLIENT_EXAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    "join": ({"token": JWT, "resume": 7}, sig.JoinMsg("1", JWT, 7)),
    "publish": (
        {"track_id": "0", "kind": "audio", "muted": True},
        sig.PublishMsg("1", "0", TrackKind.AUDIO, True),
    ),
    "unpublish": ({"track_id": "0"}, sig.UnpublishMsg("1", "0")),
    "mute": (
        {"muted": True, "identity": "bob", "kind": "video"},
        sig.MuteMsg("1", True, "bob", None, TrackKind.VIDEO),
    ),
    "raise_hand": ({}, sig.RaiseHandMsg("1")),
    "lower_hand": ({}, sig.LowerHandMsg("1")),
    "promote": ({"identity": "bob"}, sig.PromoteMsg("1", "bob")),
    "demote": ({"identity": "bob"}, sig.DemoteMsg("1", "bob")),
    "kick": ({"identity": "bob"}, sig.KickMsg("1", "bob")),
    "accept_hand": ({"identity": "bob"}, sig.AcceptHandMsg("1", "bob")),
    "decline_hand": ({"identity": "bob"}, sig.DeclineHandMsg("1", "bob")),
    "start_live": ({}, sig.StartLiveMsg("1")),
    "stop_live": ({}, sig.StopLiveMsg("1")),
    "offer": ({"sdp": SDP}, sig.OfferMsg("1", SDP)),
    "answer": ({"sdp": SDP}, sig.AnswerMsg("1", SDP)),
    "candidate": (
        {
            "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
            "sdp_mid": "0",
            "sdp_mline_index": 0,
        },
        sig.CandidateMsg("1", "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "0", 0),
    ),
    "leave": ({}, sig.LeaveMsg("1")),
    "ping": ({"ts": 12.5}, sig.PingMsg("1", 12.5)),
}


def frame(message_type: str, /, **fields: Any) -> str:
    return json.dumps({"v": 1, "type": message_type, **fields}, ensure_ascii=False)


def test_every_client_type_has_an_example() -> None:
    assert set(CLIENT_EXAMPLES) == set(CLIENT_MESSAGE_TYPES)


@pytest.mark.parametrize("kind", sorted(CLIENT_EXAMPLES))
def test_valid_client_messages(kind: str) -> None:
    fields, expected = CLIENT_EXAMPLES[kind]
    assert parse_client_message(frame(kind, id="1", **fields)) == expected
    assert parse_client_message(frame(kind, id="1", **fields).encode()) == expected


def test_optional_fields_and_ids() -> None:
    assert parse_client_message(frame("join", token=JWT)) == sig.JoinMsg(None, JWT, None)
    assert parse_client_message(frame("ping", id=42)) == sig.PingMsg(42, None)
    assert parse_client_message(frame("mute", muted=False)) == sig.MuteMsg(None, False)
    assert parse_client_message(
        frame("candidate", candidate="", sdp_mid=None, sdp_mline_index=None)
    ) == sig.CandidateMsg(None, "", None, None)


BAD: list[tuple[str | bytes, str, str]] = [
    ("", "bad_request", "not valid JSON"),
    ("{", "bad_request", "not valid JSON"),
    (b"\xff\xfe", "bad_request", "not valid JSON"),
    ("[1]", "bad_request", "JSON object"),
    ('"join"', "bad_request", "JSON object"),
    ('{"type": "ping"}', "bad_request", "missing field 'v'"),
    ('{"v": 2, "type": "ping"}', "unsupported_version", "version must be 1"),
    ('{"v": true, "type": "ping"}', "unsupported_version", "version must be 1"),
    ('{"v": 1}', "bad_request", "field 'type'"),
    ('{"v": 1, "type": 3}', "bad_request", "field 'type'"),
    ('{"v": 1, "type": "dance"}', "bad_request", "unknown message type 'dance'"),
    ('{"v": 1, "type": "ping", "extra": 1}', "bad_request", "unknown field 'extra'"),
    ('{"v": 1, "type": "promote"}', "bad_request", "missing field 'identity'"),
    ('{"v": 1, "type": "promote", "identity": 5}', "bad_request", "'identity' must be a string"),
    ('{"v": 1, "type": "promote", "identity": ""}', "bad_request", "1..128"),
    ('{"v": 1, "type": "promote", "identity": "a\\u0000"}', "bad_request", "not allowed"),
    ('{"v": 1, "type": "promote", "identity": "\\ud800"}', "bad_request", "not allowed"),
    (
        '{"v": 1, "type": "publish", "track_id": "a b", "kind": "audio"}',
        "bad_request",
        "'track_id'",
    ),
    ('{"v": 1, "type": "publish", "track_id": "a", "kind": "screen"}', "bad_request", "'kind'"),
    ('{"v": 1, "type": "mute", "muted": 1}', "bad_request", "'muted' must be true or false"),
    ('{"v": 1, "type": "join", "token": "x", "resume": true}', "bad_request", "'resume'"),
    ('{"v": 1, "type": "join", "token": "x", "resume": 0}', "bad_request", "'resume'"),
    ('{"v": 1, "type": "join", "token": "a b"}', "bad_request", "'token'"),
    ('{"v": 1, "type": "ping", "ts": NaN}', "bad_request", "NaN"),
    ('{"v": 1, "type": "ping", "ts": 1e999}', "bad_request", "finite"),
    ('{"v": 1, "type": "ping", "ts": "1"}', "bad_request", "'ts'"),
    ('{"v": 1, "type": "ping", "v": 1}', "bad_request", "duplicate field 'v'"),
    ('{"v": 1, "type": "ping", "id": true}', "bad_request", "'id'"),
    ('{"v": 1, "type": "ping", "id": -1}', "bad_request", "'id'"),
    ('{"v": 1, "type": "ping", "id": ""}', "bad_request", "'id'"),
    ('{"v": 1, "type": "ping", "id": [1]}', "bad_request", "'id'"),
    ('{"v": 1, "type": "candidate"}', "bad_request", "missing field 'candidate'"),
    (
        '{"v": 1, "type": "candidate", "candidate": "", "sdp_mline_index": 5000}',
        "bad_request",
        "'sdp_mline_index'",
    ),
    ('{"v": 1, "type": "offer", "sdp": ""}', "bad_request", "'sdp'"),
    ("[" * 100_000, "too_large", "over"),
    ("[" * 50_000, "bad_request", "not valid JSON"),
    ('{"v": 1, "type": "ping", "id": "' + "x" * MAX_MESSAGE_BYTES + '"}', "too_large", "over"),
    ('{"v": 1, "type": "ping", "ts": ' + "9" * 5000 + "}", "bad_request", "not valid JSON"),
]


@pytest.mark.parametrize(("text", "code", "needle"), BAD)
def test_bad_messages_get_precise_errors(text: str | bytes, code: str, needle: str) -> None:
    with pytest.raises(SignalingError) as info:
        parse_client_message(text)
    assert info.value.code == code
    assert needle in info.value.message


def test_error_carries_the_request_id() -> None:
    with pytest.raises(SignalingError) as info:
        parse_client_message(frame("promote", id="req-7"))
    reply = info.value.reply()
    assert reply == ErrorMsg("req-7", "bad_request", "missing field 'identity' in 'promote'")
    assert json.loads(encode_server_message(reply)) == {
        "v": 1,
        "type": "error",
        "id": "req-7",
        "code": "bad_request",
        "message": "missing field 'identity' in 'promote'",
    }
    with pytest.raises(SignalingError) as info:
        parse_client_message(frame("nope", id=3))
    assert info.value.request_id == 3


def test_oversize_multibyte_text_counts_bytes() -> None:
    text = frame("offer", sdp="é" * (MAX_MESSAGE_BYTES // 2))
    assert len(text) < MAX_MESSAGE_BYTES
    with pytest.raises(SignalingError) as info:
        parse_client_message(text)
    assert info.value.code == "too_large"


# --- fuzzing ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted(
    {"v", "type", "id"} | {name for _, fields in CLIENT_MESSAGE_TYPES.values() for name in fields}
)
near_valid = st.builds(
    lambda kind, version, extra: json.dumps({"v": version, "type": kind, **extra}),
    st.sampled_from(sorted(CLIENT_MESSAGE_TYPES)) | st.text(max_size=8),
    st.sampled_from([1, 1, 1, 2, "1", None]),
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=4),
)


def _parse_or_signaling_error(text: str | bytes) -> None:
    try:
        message = parse_client_message(text)
    except SignalingError as exc:
        assert exc.code in {"bad_request", "unsupported_version", "too_large"}
        assert isinstance(exc.message, str) and exc.message
        encode_server_message(exc.reply())  # the reply itself always encodes
    else:
        assert type(message) in {cls for cls, _ in CLIENT_MESSAGE_TYPES.values()}
        room_request(message, 1)


@settings(max_examples=500, deadline=None)
@given(st.text() | st.binary())
def test_fuzz_arbitrary_text(text: str | bytes) -> None:
    _parse_or_signaling_error(text)


@settings(max_examples=1000, deadline=None)
@given(near_valid)
def test_fuzz_json_messages(text: str) -> None:
    _parse_or_signaling_error(text)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_any_json(value: object) -> None:
    _parse_or_signaling_error(json.dumps(value))


# --- server messages ----------------------------------------------------------------------

SNAPSHOT = RoomSnapshot(
    name="r",
    live=False,
    max_publishers=16,
    participants=(
        ParticipantInfo(
            "h",
            Role.HOST,
            1.0,
            ConnectionState.CONNECTED,
            None,
            (TrackInfo("0", TrackKind.AUDIO, False),),
        ),
        ParticipantInfo("v", Role.AUDIENCE, 2.0, ConnectionState.RECONNECTING, 3.0, ()),
    ),
    hands=(HandInfo("v", 3.0),),
)

SERVER_EXAMPLES: list[tuple[ServerMessage, dict[str, Any]]] = [
    (
        JoinedMsg("1", "h", 4, Role.HOST, False, SNAPSHOT),
        {
            "type": "joined",
            "id": "1",
            "identity": "h",
            "session": 4,
            "role": "host",
            "resumed": False,
            "room": {
                "name": "r",
                "live": False,
                "max_publishers": 16,
                "participants": [
                    {
                        "identity": "h",
                        "role": "host",
                        "joined_at": 1.0,
                        "state": "connected",
                        "hand_raised_at": None,
                        "tracks": [{"track_id": "0", "kind": "audio", "muted": False}],
                    },
                    {
                        "identity": "v",
                        "role": "audience",
                        "joined_at": 2.0,
                        "state": "reconnecting",
                        "hand_raised_at": 3.0,
                        "tracks": [],
                    },
                ],
                "hands": [{"identity": "v", "since": 3.0}],
            },
        },
    ),
    (
        ErrorMsg(None, "stage_full", "full"),
        {"type": "error", "code": "stage_full", "message": "full"},
    ),
    (AckMsg(9), {"type": "ack", "id": 9}),
    (ServerOfferMsg(SDP), {"type": "offer", "sdp": SDP}),
    (ServerAnswerMsg("o1", SDP), {"type": "answer", "id": "o1", "sdp": SDP}),
    (
        ServerCandidateMsg("candidate:1 1 udp 1 127.0.0.1 9 typ host", "0", 0),
        {
            "type": "candidate",
            "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
            "sdp_mid": "0",
            "sdp_mline_index": 0,
        },
    ),
    (PongMsg("p", 1.5), {"type": "pong", "id": "p", "ts": 1.5}),
    (
        ParticipantJoined("a", Role.AUDIENCE, 1.0),
        {"type": "participant_joined", "identity": "a", "role": "audience", "joined_at": 1.0},
    ),
    (
        ParticipantLeft("a", LeaveReason.KICKED),
        {"type": "participant_left", "identity": "a", "reason": "kicked"},
    ),
    (
        ConnectionStateChanged("a", ConnectionState.RECONNECTING),
        {"type": "connection_state", "identity": "a", "state": "reconnecting"},
    ),
    (
        RoleChanged("a", Role.AUDIENCE, Role.COHOST, "h"),
        {"type": "role_changed", "identity": "a", "old": "audience", "new": "cohost", "by": "h"},
    ),
    (HandRaised("a", 2.0), {"type": "hand_raised", "identity": "a", "since": 2.0}),
    (
        HandLowered("a", LowerReason.ACCEPTED),
        {"type": "hand_lowered", "identity": "a", "reason": "accepted"},
    ),
    (
        TrackPublished("a", "0", TrackKind.VIDEO, False),
        {
            "type": "track_published",
            "identity": "a",
            "track_id": "0",
            "kind": "video",
            "muted": False,
        },
    ),
    (
        TrackUnpublished("a", "0"),
        {"type": "track_unpublished", "identity": "a", "track_id": "0"},
    ),
    (
        TrackMuted("a", "0", True, "h"),
        {"type": "track_muted", "identity": "a", "track_id": "0", "muted": True, "by": "h"},
    ),
    (ActiveSpeakerChanged("a"), {"type": "active_speaker", "identity": "a"}),
    (ActiveSpeakerChanged(None), {"type": "active_speaker", "identity": None}),
    (LiveStateChanged(True, "h"), {"type": "live", "live": True, "by": "h"}),
    (
        ConnectionQualityChanged("a", ConnectionQuality.POOR),
        {"type": "connection_quality", "identity": "a", "quality": "poor"},
    ),
    (
        ServerOfferMsg(SDP, "s1", (RemoteStream("s1", "a", TrackKind.VIDEO),)),
        {
            "type": "offer",
            "id": "s1",
            "sdp": SDP,
            "streams": [{"mid": "s1", "identity": "a", "kind": "video"}],
        },
    ),
]


@pytest.mark.parametrize(("msg", "expected"), SERVER_EXAMPLES)
def test_encode_server_messages(msg: ServerMessage, expected: dict[str, Any]) -> None:
    assert json.loads(encode_server_message(msg)) == {"v": 1, **expected}


def test_every_event_type_is_encodable_and_covered() -> None:
    covered = {type(m) for m, _ in SERVER_EXAMPLES}
    assert set(EVENT_TYPES) <= covered


def test_effects_are_not_server_messages() -> None:
    from interlive.stage.model import Disconnect

    with pytest.raises(TypeError):
        encode_server_message(Disconnect("a", 1, "kicked"))  # type: ignore[arg-type]


# --- mapping onto the room ----------------------------------------------------------------


def test_room_request_mapping() -> None:
    me = BySession(5)
    expected = {
        "join": None,
        "publish": Publish(5, "0", TrackKind.AUDIO, True),
        "unpublish": Unpublish(5, "0"),
        "mute": SetMuted(me, "bob", True, None, TrackKind.VIDEO),
        "raise_hand": RaiseHand(5),
        "lower_hand": LowerHand(5),
        "promote": Promote(me, "bob"),
        "demote": Demote(me, "bob"),
        "kick": Kick(me, "bob"),
        "accept_hand": AcceptHand(me, "bob"),
        "decline_hand": DeclineHand(me, "bob"),
        "start_live": SetLive(me, True),
        "stop_live": SetLive(me, False),
        "offer": None,
        "answer": None,
        "candidate": None,
        "leave": Leave(5),
        "ping": None,
    }
    for kind, (_, msg) in CLIENT_EXAMPLES.items():
        assert room_request(msg, 5) == expected[kind], kind


# --- the draft docs ------------------------------------------------------------------------


def test_signaling_md_documents_every_message() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "signaling.md").read_text()
    documented = set(re.findall(r'"type":\s*"([a-z_]+)"', doc))
    server = {"joined", "error", "ack", "offer", "answer", "candidate", "pong"}
    assert set(CLIENT_MESSAGE_TYPES) | server | set(EVENT_TYPES.values()) <= documented
