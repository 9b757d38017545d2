"""FLV playback's pure parts: play paths, admission, metrics (media runs in integration)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from interlive.auth import mint_token
from interlive.bench.system import Metrics
from interlive.config import ServerConfig
from interlive.server.playback import NO_MIX_MESSAGE, PlaybackError, PlaybackHub, parse_play_path
from interlive.server.rooms import RoomRegistry

SECRET = "playback-test-secret-of-at-least-32-bytes"


def hub(udp_bind: str = "127.0.0.1") -> PlaybackHub:
    plane = SimpleNamespace(
        pool=SimpleNamespace(listeners=[]),
        config=ServerConfig(udp_bind=udp_bind),
        secret=SECRET,
        rooms=RoomRegistry(),
    )
    return PlaybackHub(cast(Any, plane))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("room/alice", ("room", "alice")),
        ("/room/alice/", ("room", "alice")),
        ("room", ("room", None)),
        ("my%20room/al%2Fice", ("my room", "al/ice")),
    ],
)
def test_play_paths_name_a_room_and_maybe_an_identity(
    path: str, expected: tuple[str, str | None]
) -> None:
    assert parse_play_path(path) == expected


@pytest.mark.parametrize("path", ["", "a/b/c", "room//x"])
def test_bad_play_paths(path: str) -> None:
    with pytest.raises(PlaybackError) as exc:
        parse_play_path(path)
    assert exc.value.code == "bad_stream_key" and exc.value.status == 404


def test_admission_checks_the_token_then_the_room_mix_then_the_publisher() -> None:
    h = hub()
    viewer = mint_token(SECRET, room="r", identity="v", role="audience")
    cases = [
        (None, "r", "alice", 401, "no_token"),
        ("junk", "r", "alice", 401, "bad_token"),
        (
            mint_token(
                "another-secret-entirely-32-bytes-long", room="r", identity="v", role="host"
            ),
            "r",
            "a",
            401,
            "bad_token",
        ),
        (
            mint_token(SECRET, room="elsewhere", identity="v", role="host"),
            "r",
            "alice",
            403,
            "forbidden",
        ),
        (viewer, "r", None, 404, "no_mix"),
        (None, "r", None, 404, "no_mix"),  # the mix needs no token, but there is none
        ("junk", "r", None, 401, "bad_token"),
        (viewer, "r", "alice", 404, "not_publishing"),
    ]
    for token, room, identity, status, code in cases:
        with pytest.raises(PlaybackError) as exc:
            h.authorize(token, room, identity)
        assert (exc.value.status, exc.value.code) == (status, code), exc.value.message
    with pytest.raises(PlaybackError) as exc:
        h.authorize(viewer, "r", None)
    assert exc.value.message == NO_MIX_MESSAGE
    assert h.stats.refused["bad_token"] == 3


def test_the_room_mix_is_playable_by_anyone_while_a_live_job_runs() -> None:
    h = hub()
    viewer = mint_token(SECRET, room="r", identity="v", role="audience")
    job = SimpleNamespace(alive=True)
    h.live = cast(Any, SimpleNamespace(jobs={"r": job}))
    access = h.authorize(viewer, "r", None)
    assert access is not None and access.identity == "v"
    assert h.authorize(None, "r", None) is None  # the broadcast: no token needed
    assert h.authorize("", "r", None) is None
    for token, code in [
        ("not-a-jwt", "bad_token"),  # a token that is given must be valid
        (mint_token(SECRET, room="r", identity="v", role="audience", ttl=-10), "bad_token"),
        (mint_token(SECRET, room="elsewhere", identity="v", role="host"), "forbidden"),
    ]:
        with pytest.raises(PlaybackError) as exc:
            h.authorize(token, "r", None)
        assert exc.value.code == code, exc.value.message
    with pytest.raises(PlaybackError) as exc:
        h.authorize(None, "r", "alice")  # a participant's stream still needs one
    assert exc.value.code == "no_token"
    job.alive = False  # the mixer process exited
    for anyone in (viewer, None):
        with pytest.raises(PlaybackError) as exc:
            h.authorize(anyone, "r", None)
        assert exc.value.code == "no_mix"
    with pytest.raises(PlaybackError) as exc:
        h.authorize(viewer, "other", None)  # the token still names its room
    assert exc.value.code == "forbidden"


def test_media_goes_to_the_workers_bind_address_or_loopback() -> None:
    assert hub("10.0.0.5").media_host == "10.0.0.5"
    assert hub("0.0.0.0").media_host == "127.0.0.1"


def test_the_hub_listens_to_the_workers_and_renders_valid_metrics() -> None:
    h = hub()
    assert h._on_worker_event in h.plane.pool.listeners
    h.stats.count(h.stats.refused, "bad_token")
    h.stats.count(h.stats.players_total, "http")
    h.stats.count(h.stats.closed, "slow")
    h.stats.slow_disconnects = 1
    h.stats.gop_drops = 2
    text = h.render_metrics()
    metrics = Metrics.parse(text)
    assert metrics.by_label("interlive_flv_refused_total", "reason") == {"bad_token": 1.0}
    assert metrics.by_label("interlive_flv_players", "protocol") == {"http": 0.0, "rtmp": 0.0}
    assert metrics.total("interlive_flv_slow_disconnects_total") == 1
    assert metrics.total("interlive_flv_gop_drops_total") == 2
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families)) and all(
        f.startswith("interlive_flv_") for f in families
    )
