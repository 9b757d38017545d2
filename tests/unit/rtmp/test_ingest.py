"""RtmpIngest on ffmpeg's recorded publish: H.264 to RTP, AAC to Opus, sender reports, refusals."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from interlive.media.avc import Sps
from interlive.media.flv import AudioData, VideoData
from interlive.media.h264_rtp import NAL_IDR, NAL_PPS, NAL_SPS, H264Depacketizer
from interlive.rtmp import amf0
from interlive.rtmp.events import ConnectRequested, MediaKind, MediaMessage, PublishRequested
from interlive.rtmp.ingest import (
    IngestError,
    RtmpIngest,
    StreamKey,
    StreamKeyError,
    check_app,
    parse_stream_key,
)
from interlive.rtmp.server import RtmpServerConnection
from interlive.rtp.packet import RtpPacket
from interlive.rtp.rtcp import (
    Pli,
    ReceiverReport,
    SenderReport,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)

FIXTURE = Path(__file__).parents[2] / "fixtures" / "rtmp" / "ffmpeg_publish.bin"
VIDEO_SSRC, AUDIO_SSRC = 0x1111, 0x2222


def fixture_messages() -> list[MediaMessage]:
    server = RtmpServerConnection(random_bytes=bytes)
    server.receive_data(FIXTURE.read_bytes())
    messages: list[MediaMessage] = []
    while (event := server.next_event()) is not None:
        if isinstance(event, ConnectRequested):
            server.accept_connect()
        elif isinstance(event, PublishRequested):
            server.accept_publish()
        elif isinstance(event, MediaMessage):
            messages.append(event)
    return messages


def worker_media(ingest: RtmpIngest) -> list[dict[str, object]]:
    """What the worker would answer: the requested media with SSRCs and payload types."""
    assert ingest.tracks is not None
    ssrcs = {"video": (VIDEO_SSRC, 102), "audio": (AUDIO_SSRC, 111)}
    return [
        {**t.to_request(), "ssrc": ssrcs[t.kind][0], "payload_type": ssrcs[t.kind][1]}
        for t in ingest.tracks
    ]


def run_fixture(
    *, start_after: int | None = None
) -> tuple[RtmpIngest, list[MediaMessage], list[bytes]]:
    """Feed the recording at 1 ms per message; start the session as soon as tracks are known."""
    ingest = RtmpIngest(rng=random.Random(7))
    messages = fixture_messages()
    out: list[bytes] = []
    for i, message in enumerate(messages):
        now = 100.0 + message.timestamp / 1000
        ingest.on_media(message.kind, message.timestamp, message.payload, now)
        if not ingest.started and ingest.tracks is not None and i >= (start_after or 0):
            ingest.start(worker_media(ingest), now)
        out += ingest.datagrams_to_send()
    return ingest, messages, out


# --- stream keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "stream"),
    [
        ("live/room", "alice?token=abc"),  # ffmpeg, librtmp: split at the last slash
        ("live", "room/alice?token=abc"),  # OBS: server rtmp://host/live, key room/alice?token=
        ("live/room?token=abc", "alice"),  # the token on the server URL
        ("/live/room/", "/alice?token=abc"),
        ("live/ro%6Fm", "alice?token=abc&x=1"),
    ],
)
def test_stream_keys_name_room_identity_and_token(app: str, stream: str) -> None:
    assert parse_stream_key(app, stream) == StreamKey("room", "alice", "abc")


@pytest.mark.parametrize(
    ("app", "stream", "message"),
    [
        ("app", "room/alice", "unknown application 'app'"),
        ("livestream/room", "alice", "unknown application"),
        ("live", "alice?token=x", "does not name a room and an identity"),
        ("live/room/alice", "extra", "does not name a room and an identity"),
        ("live/room", "", "does not name a room and an identity"),
        ("live//", "alice", "does not name a room and an identity"),
    ],
)
def test_bad_stream_keys(app: str, stream: str, message: str) -> None:
    with pytest.raises(StreamKeyError, match=message):
        parse_stream_key(app, stream)


def test_check_app_accepts_live_with_or_without_a_room() -> None:
    check_app("live")
    check_app("live/room")
    with pytest.raises(StreamKeyError):
        check_app("vod")


def test_no_token_is_none() -> None:
    assert parse_stream_key("live/r", "a").token is None


# --- the video path -----------------------------------------------------------------------


def test_tracks_come_from_the_sequence_headers() -> None:
    ingest, messages, _ = run_fixture()
    assert ingest.tracks is not None
    video = next(t for t in ingest.tracks if t.kind == "video")
    header = VideoData.parse(next(m for m in messages if m.kind is MediaKind.VIDEO).payload)
    assert ingest.avc is not None
    sps = Sps.parse(ingest.avc.sps[0])
    assert (sps.width, sps.height) == (320, 240)
    assert video.fmtp["profile-level-id"] == f"{sps.profile_idc:02x}00{sps.level_idc:02x}"
    assert video.fmtp["profile-level-id"].startswith("64")  # libx264's default: High
    assert video.fmtp["packetization-mode"] == "1" and header.avc_packet_type == 0
    audio = next(t for t in ingest.tracks if t.kind == "audio")
    assert (audio.mime, audio.clock_rate, audio.channels) == ("audio/opus", 48000, 2)
    assert ingest.expected == frozenset({"audio", "video"})  # from onMetaData


def test_every_idr_goes_out_with_sps_and_pps_and_its_presentation_time() -> None:
    ingest, messages, out = run_fixture()
    rtp = [RtpPacket.parse(d) for d in out if not is_rtcp(d)]
    video = [p for p in rtp if p.ssrc == VIDEO_SSRC]
    assert all(p.payload_type == 102 for p in video)
    seqs = [p.sequence_number for p in video]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    depacketizer = H264Depacketizer()
    units = [au for p in video for au in depacketizer.push_packet(p)]
    frames = [
        (m.timestamp, VideoData.parse(m.payload))
        for m in messages
        if m.kind is MediaKind.VIDEO and m.payload[1] == 1
    ]
    assert len(units) == len(frames) == ingest.stats.video_frames == 30
    assert depacketizer.stats.lost_packets == 0 and depacketizer.stats.frames_incomplete == 0
    assert ingest.video is not None
    offset = ingest.video.offset
    keyframes = 0
    for unit, (timestamp, tag) in zip(units, frames, strict=True):
        assert unit.timestamp == (offset + 90 * (timestamp + tag.composition_time)) & 0xFFFFFFFF
        types = [nal[0] & 0x1F for nal in unit.nals]
        if NAL_IDR in types:
            keyframes += 1
            first_idr = types.index(NAL_IDR)
            assert NAL_SPS in types[:first_idr] and NAL_PPS in types[:first_idr], types
            assert tag.is_keyframe
    assert keyframes == ingest.stats.keyframes >= 2
    # the marker closes each access unit: one per frame
    assert sum(p.marker for p in video) == 30
    assert max(len(p.data) for p in video) <= 1200 + 12


def test_holding_until_the_session_exists_loses_nothing() -> None:
    early, _, _ = run_fixture()
    late, _, _ = run_fixture(start_after=40)
    assert late.stats.video_frames == early.stats.video_frames
    assert late.stats.audio_frames == early.stats.audio_frames


# --- the audio path -----------------------------------------------------------------------


def test_aac_becomes_20ms_opus_on_the_flv_clock() -> None:
    ingest, messages, out = run_fixture()
    audio = [RtpPacket.parse(d) for d in out if not is_rtcp(d)]
    audio = [p for p in audio if p.ssrc == AUDIO_SSRC]
    aac = [m for m in messages if m.kind is MediaKind.AUDIO]
    assert AudioData.parse(aac[0].payload).aac_packet_type == 0
    duration_ms = aac[-1].timestamp - aac[1].timestamp
    assert abs(len(audio) - duration_ms / 20) <= 3, (len(audio), duration_ms)
    assert all(p.payload_type == 111 for p in audio)
    assert audio[0].marker and not any(p.marker for p in audio[1:])
    steps = {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(audio)}
    assert steps == {960}
    assert ingest.audio is not None
    first = (audio[0].timestamp - ingest.audio.offset) & 0xFFFFFFFF
    # the first AAC frame's FLV time in 48 kHz units, less the encoder's look-ahead
    assert abs(first - 48 * aac[1].timestamp) <= 48 * 10
    assert ingest.transcoder is not None and ingest.transcoder.stats.decode_errors == 0


# --- RTCP ---------------------------------------------------------------------------------


def test_sender_reports_put_both_streams_on_one_clock() -> None:
    ingest, messages, _ = run_fixture()
    assert ingest.video is not None and ingest.audio is not None
    now = 100.0 + messages[-1].timestamp / 1000
    ingest.handle_timer(now, ntp=0x1234_5678_0000_0000)
    reports = [p for d in ingest.datagrams_to_send() for p in parse_rtcp(d)]
    srs = {p.ssrc: p for p in reports if isinstance(p, SenderReport)}
    assert set(srs) == {VIDEO_SSRC, AUDIO_SSRC}
    flv_video = ((srs[VIDEO_SSRC].rtp_timestamp - ingest.video.offset) & 0xFFFFFFFF) / 90
    flv_audio = ((srs[AUDIO_SSRC].rtp_timestamp - ingest.audio.offset) & 0xFFFFFFFF) / 48
    assert abs(flv_video - flv_audio) < 1 and abs(flv_video - messages[-1].timestamp) < 2
    assert srs[VIDEO_SSRC].packet_count == ingest.video.packets
    assert ingest.get_timer() == pytest.approx(now + 1.0)


def test_keyframe_requests_from_the_worker_are_counted() -> None:
    ingest, _, _ = run_fixture()
    ingest.on_rtcp(serialize_rtcp([ReceiverReport(ssrc=9), Pli(sender_ssrc=9, media_ssrc=1)]))
    ingest.on_rtcp(bytes(Pli(sender_ssrc=9, media_ssrc=1)))
    assert ingest.stats.keyframe_requests == 2
    with pytest.raises(ValueError):
        ingest.on_rtcp(b"\x80\xc9\x00")


# --- what is refused ----------------------------------------------------------------------


def test_enhanced_rtmp_hevc_is_refused_with_its_fourcc() -> None:
    ingest = RtmpIngest()
    hevc = bytes([0x90]) + b"hvc1" + bytes(20)  # IsExHeader, SequenceStart, FourCC
    with pytest.raises(IngestError, match=r"hvc1.*H\.264 only"):
        ingest.on_media(MediaKind.VIDEO, 0, hevc, 1.0)


def test_mp3_audio_is_refused() -> None:
    ingest = RtmpIngest()
    with pytest.raises(IngestError, match="MP3 is not supported: publish AAC"):
        ingest.on_media(MediaKind.AUDIO, 0, bytes([0x2F, 0xFF, 0xFB]), 1.0)


def test_high_10_is_refused() -> None:
    messages = fixture_messages()
    header = VideoData.parse(next(m for m in messages if m.kind is MediaKind.VIDEO).payload)
    record = bytearray(header.payload)
    sps_start = 8  # version, profile, compat, level, lengthSize, numSPS, 2-byte length
    record[sps_start + 1] = 110  # profile_idc: High 10
    tag = bytes(VideoData(1, 0, 0, bytes(record)))
    with pytest.raises(IngestError, match="profile_idc 110"):
        RtmpIngest().on_media(MediaKind.VIDEO, 0, tag, 1.0)


def test_video_only_metadata_starts_without_waiting_for_audio() -> None:
    messages = fixture_messages()
    ingest = RtmpIngest()
    meta = amf0.encode_all("onMetaData", {"videocodecid": 7.0, "width": 320.0})
    ingest.on_media(MediaKind.DATA, 0, meta, 1.0)
    header = next(m for m in messages if m.kind is MediaKind.VIDEO)
    ingest.on_media(MediaKind.VIDEO, 0, header.payload, 1.0)
    assert ingest.tracks is not None and [t.kind for t in ingest.tracks] == ["video"]


def test_frames_before_any_config_wait_and_memory_is_bounded() -> None:
    ingest = RtmpIngest(max_held_messages=10)
    frame = bytes(VideoData(2, 1, 0, b"\x00\x00\x00\x02\x41\x00"))
    for i in range(50):
        ingest.on_media(MediaKind.VIDEO, i, frame, 1.0 + i / 30)
    assert ingest.tracks is None and ingest.stats.dropped["held_overflow"] == 40
