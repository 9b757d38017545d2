"""The WHIP/WHEP HTTP contract (RFC 9725) against the real server, status by status."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from interlive.sdp import SessionDescription, parse_sdpfrag
from tests.helpers.server import RunningServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sdp"
SENDONLY = (FIXTURES / "chrome156_sendonly.sdp").read_text()
RECVONLY = (FIXTURES / "chrome156_recvonly.sdp").read_text()
SDP = {"Content-Type": "application/sdp"}
FRAG = {"Content-Type": "application/trickle-ice-sdpfrag"}


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


async def error_code(response: aiohttp.ClientResponse) -> str:
    body = await response.json()
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    code: str = body["error"]["code"]
    return code


async def test_whip_lifecycle(server: RunningServer) -> None:
    host = server.token("r", "alice", "host")
    async with aiohttp.ClientSession(server.base_url) as http:
        async with http.post("/whip/r", data=SENDONLY, headers=auth(host, **SDP)) as r:
            assert r.status == 201
            assert r.content_type == "application/sdp"
            location = r.headers["Location"]
            etag = r.headers["ETag"]
            assert re.fullmatch(r"/whip/r/sessions/[\w-]+", location)
            answer = SessionDescription.parse(await r.text())
        assert answer.ice_lite
        assert [m.direction for m in answer.media] == ["recvonly", "recvonly"]
        assert all(m.setup == "passive" for m in answer.media)
        candidate = answer.media[0].candidates[0]
        assert " 127.0.0.1 " in candidate and "typ host" in candidate

        # trickle: candidates only, nothing to restart
        trickle_only = (
            "m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 1 192.0.2.2 5000 typ host\r\n"
        )
        trickle = "a=ice-ufrag:BlHs\r\na=ice-pwd:f0gb3A0WNX4a2xePhxBCIbnq\r\n" + trickle_only
        async with http.patch(
            location, data=trickle_only, headers=auth(host, **FRAG, **{"If-Match": etag})
        ) as r:
            assert r.status == 204
        async with http.patch(
            location, data=trickle_only, headers=auth(host, **FRAG, **{"If-Match": '"stale"'})
        ) as r:
            assert r.status == 412 and await error_code(r) == "precondition_failed"
        async with http.patch(location, data=trickle_only, headers=auth(host, **SDP)) as r:
            assert r.status == 415
        # ICE restart: new credentials in, new credentials and a new ETag out
        restart = trickle.replace("BlHs", "NeW1").replace("f0gb3A0WNX4a2xePhxBCIbnq", "x" * 24)
        async with http.patch(
            location, data=restart, headers=auth(host, **FRAG, **{"If-Match": "*"})
        ) as r:
            assert r.status == 200 and r.content_type == "application/trickle-ice-sdpfrag"
            assert r.headers["ETag"] != etag
            frag = parse_sdpfrag(await r.text())
        assert frag.ice_ufrag and frag.ice_pwd and frag.ice_ufrag != answer.media[0].ice_ufrag

        other = server.token("r", "mallory", "cohost")
        async with http.delete(location, headers=auth(other)) as r:
            assert r.status == 403
        async with http.delete(location, headers=auth(host)) as r:
            assert r.status == 200
        async with http.delete(location, headers=auth(host)) as r:
            assert r.status == 404 and await error_code(r) == "not_found"


async def test_whep_answers_sendonly_with_server_ssrcs(server: RunningServer) -> None:
    viewer = server.token("r", "bob", "audience")
    async with aiohttp.ClientSession(server.base_url) as http:
        async with http.post("/whep/r", data=RECVONLY, headers=auth(viewer, **SDP)) as r:
            assert r.status == 201
            assert r.headers["Location"].startswith("/whep/r/sessions/")
            answer = SessionDescription.parse(await r.text())
        assert [m.direction for m in answer.media] == ["sendonly", "sendonly"]
        audio, video = answer.media
        assert len(audio.ssrcs) == 1
        # video: a media SSRC and its RTX SSRC (RFC 4588), grouped as FID
        assert len(video.ssrcs) == 2
        assert [g.semantics for g in video.ssrc_groups] == ["FID"]
        assert set(video.ssrc_groups[0].ssrcs) == set(video.ssrcs)
        assert {c.name.upper() for c in video.codecs} >= {"VP8", "H264"}
        async with http.post("/whep/r/alice", data=RECVONLY, headers=auth(viewer, **SDP)) as r:
            assert r.status == 201


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (SENDONLY, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ("v=0\r\nnonsense\r\n", SDP, 400, "bad_sdp"),
        (re.sub(r"a=rtcp-mux\r?\n", "", SENDONLY), SDP, 400, "bad_sdp"),
        (SENDONLY.replace("a=fingerprint", "a=x-fingerprint"), SDP, 400, "bad_sdp"),
        (RECVONLY, SDP, 400, "bad_sdp"),  # WHIP needs something to receive
        ("v=0\r\n" + "a=x:" + "y" * 70000 + "\r\n", SDP, 413, "too_large"),
    ],
    ids=[
        "content-type",
        "garbage",
        "no-rtcp-mux",
        "no-fingerprint",
        "recvonly-to-whip",
        "too-large",
    ],
)
async def test_bad_offers(
    server: RunningServer, body: str, headers: dict[str, str], status: int, code: str
) -> None:
    async with aiohttp.ClientSession(server.base_url) as http:
        async with http.post(
            "/whip/r", data=body, headers=auth(server.token("r", "a"), **headers)
        ) as r:
            assert r.status == status
            assert await error_code(r) == code
    # nothing was created
    assert server.metrics()["interlive_sessions"] == 0


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("garbage", 401), ("expired", 401), ("audience", 403), ("other-room", 403)],
)
async def test_auth(server: RunningServer, token: str | None, status: int) -> None:
    tokens = {
        "garbage": "a.b.c",
        "expired": server.token("r", "a", "host", ttl=-60),
        "audience": server.token("r", "a", "audience"),
        "other-room": server.token("elsewhere", "a", "host"),
    }
    headers = dict(SDP)
    if token is not None:
        headers["Authorization"] = f"Bearer {tokens[token]}"
    async with aiohttp.ClientSession(server.base_url) as http:
        async with http.post("/whip/r", data=SENDONLY, headers=headers) as r:
            assert r.status == status
            assert await error_code(r) == ("unauthorized" if status == 401 else "forbidden")


async def test_options_health_and_metrics(server: RunningServer) -> None:
    async with aiohttp.ClientSession(server.base_url) as http:
        async with http.options("/whip/r") as r:
            assert r.status == 204 and r.headers["Accept-Post"] == "application/sdp"
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        async with http.get("/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with http.get("/metrics") as r:
            text = await r.text()
    assert r.content_type == "text/plain"
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line
    for family in (
        "interlive_sessions",
        "interlive_packets_received_total",
        "interlive_bytes_sent_total",
        "interlive_worker_cpu_seconds_total",
    ):
        assert f"# TYPE {family} " in text
