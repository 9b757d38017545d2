"""RTP (H.264 + Opus) from a plain subscribe session to FLV tags: timing, lip sync, RTCP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interlive.media.flv import AudioData, FlvTag, ScriptData, TagType, VideoData
from interlive.media.h264_rtp import H264Packetizer
from interlive.media.opus import OpusFecEncoder
from interlive.media.rtp_flv import (
    AV_RESYNC_MS,
    AvSync,
    RtpFlvSource,
    StreamSpec,
    is_sequence_header,
    is_video_keyframe,
    subscribe_media,
)
from interlive.rtmp.ingest import RtpStreamWriter
from interlive.rtp.ntp import ntp_from_unix
from interlive.rtp.reorder import REPAIR_WAIT
from interlive.rtp.rtcp import (
    Bye,
    Pli,
    ReceiverReport,
    SenderReport,
    parse_rtcp,
    serialize_rtcp,
)

VIDEO_SSRC = 0x1111
AUDIO_SSRC = 0x2222
VIDEO_PT = 102
AUDIO_PT = 111
WALL = 1_800_000_000.0  # a Unix time for the publisher's NTP clock


# --- AvSync -------------------------------------------------------------------------------


def test_video_time_is_its_rtp_time_from_the_first_packet() -> None:
    sync = AvSync()
    assert sync.video_ms(5000) is None
    sync.on_packet("video", 1_000_000, arrival=10.0)
    assert sync.video_ms(1_000_000) == 0
    assert sync.video_ms(1_000_000 + 90 * 40) == 40
    assert sync.audio_ms(123) is None  # no audio yet


def test_before_sender_reports_arrival_times_align_the_streams() -> None:
    sync = AvSync()
    sync.on_packet("video", 90_000, arrival=10.0)
    sync.on_packet("audio", 480_000, arrival=10.25)  # audio starts 250 ms later
    assert sync.source == "arrival"
    assert sync.audio_offset_ms == pytest.approx(250.0)
    assert sync.audio_ms(480_000) == 250
    assert sync.audio_ms(480_000 + 48 * 100) == 350


def test_sender_reports_put_samples_of_one_instant_on_one_flv_time() -> None:
    sync = AvSync()
    video0, audio0 = 3_000_000, 7_000_000
    sync.on_packet("video", video0, arrival=10.0)
    sync.on_packet("audio", audio0, arrival=10.0)  # arrived together...
    # ...but the publisher's clock says audio sample audio0 was taken 80 ms after video0
    sync.on_sender_report("video", ntp_from_unix(WALL), video0 & 0xFFFFFFFF)
    assert sync.source == "arrival"  # one report is not enough
    sync.on_sender_report("audio", ntp_from_unix(WALL + 0.080), audio0 & 0xFFFFFFFF)
    assert sync.source == "report"
    assert sync.audio_offset_ms == pytest.approx(80.0, abs=0.01)
    # an audio sample and a video frame captured at the same instant share one FLV time
    instant = 1.5
    video_ts = video0 + round(instant * 90_000)
    audio_ts = audio0 + round((instant - 0.080) * 48_000)
    assert sync.video_ms(video_ts) == sync.audio_ms(audio_ts) == 1500


def test_reports_use_the_newest_mapping_and_handle_32_bit_wraps() -> None:
    sync = AvSync()
    video0 = 0x1_FFFF_F000  # extended, just before a wrap of the 32-bit clock
    audio0 = 0x1_0000_1000
    sync.on_packet("video", video0, arrival=0.0)
    sync.on_packet("audio", audio0, arrival=0.0)
    # the video report names a time after the wrap: 0x2000 past video0
    sync.on_sender_report(
        "video", ntp_from_unix(WALL + 0x2000 / 90_000), (video0 + 0x2000) & 0xFFFFFFFF
    )
    sync.on_sender_report("audio", ntp_from_unix(WALL), audio0 & 0xFFFFFFFF)
    assert sync.audio_offset_ms == pytest.approx(0.0, abs=0.01)


def test_small_moves_of_the_offset_are_ignored_large_ones_applied() -> None:
    sync = AvSync()
    sync.on_packet("video", 0x1_0000_0000, arrival=0.0)
    sync.on_packet("audio", 0x1_0000_0000, arrival=0.0)
    sync.on_sender_report("video", ntp_from_unix(WALL), 0)
    sync.on_sender_report("audio", ntp_from_unix(WALL), 0)
    assert sync.audio_offset_ms == pytest.approx(0.0, abs=0.01)
    resyncs = sync.resyncs
    sync.on_sender_report("audio", ntp_from_unix(WALL + (AV_RESYNC_MS - 3) / 1000), 0)
    assert sync.audio_offset_ms == pytest.approx(0.0, abs=0.01) and sync.resyncs == resyncs
    sync.on_sender_report("audio", ntp_from_unix(WALL + 0.030), 0)
    assert sync.audio_offset_ms == pytest.approx(30.0, abs=0.01) and sync.resyncs == resyncs + 1


# --- the source -------------------------------------------------------------------------------


def _streams() -> list[StreamSpec]:
    return [StreamSpec("video", VIDEO_SSRC, VIDEO_PT), StreamSpec("audio", AUDIO_SSRC, AUDIO_PT)]


class _Publisher:
    """The worker's side: x264 access units at 15 fps and 20 ms Opus, as plain RTP."""

    def __init__(self, aus: list[list[bytes]]) -> None:
        self.aus = aus
        self.video = RtpStreamWriter(
            VIDEO_SSRC, VIDEO_PT, 90_000, first_seq=65_000, offset=0xFFFF_0000
        )
        self.audio = RtpStreamWriter(AUDIO_SSRC, AUDIO_PT, 48_000, first_seq=10, offset=12345)
        self.packetizer = H264Packetizer(1000)
        self.opus = OpusFecEncoder(2, bitrate=64_000)
        tone = np.sin(2 * math.pi * 440 * np.arange(960) / 48_000) * 8000
        self.pcm = np.repeat(tone.astype("<i2"), 2).tobytes()

    def video_packets(self, index: int) -> list[bytes]:
        rtp_time = index * 6000  # 15 fps
        return [
            self.video.write(body, rtp_time, marker)
            for body, marker in self.packetizer.packetize(self.aus[index])
        ]

    def audio_packet(self, index: int) -> bytes:
        return self.audio.write(self.opus.encode(self.pcm), index * 960, index == 0)

    def reports(self, at: float, video_time: int, audio_time: int) -> bytes:
        srs = [self.video.sender_report(ntp_from_unix(WALL + at), video_time),
               self.audio.sender_report(ntp_from_unix(WALL + at), audio_time)]  # fmt: skip
        return serialize_rtcp([sr for sr in srs if sr is not None])


def _play(source: RtpFlvSource, pub: _Publisher, seconds: float, *, start: float = 0.0) -> None:
    """Feed ``seconds`` of interleaved media, sender reports once a second."""
    steps = round(seconds * 50)  # 20 ms steps
    frame_at = {round(f * 50 / 15): f for f in range(len(pub.aus))}  # 15 fps
    for step in range(round(start * 50), steps):
        now = 100.0 + step * 0.02
        source.receive(pub.audio_packet(step), now)
        frame = frame_at.get(step)
        if frame is not None:
            for packet in pub.video_packets(frame):
                source.receive(packet, now)
        if step and step % 50 == 0:
            t = step * 0.02
            source.receive(pub.reports(t, round(t * 90_000), round(t * 48_000)), now)


def test_subscribe_media_takes_every_h264_profile_and_opus() -> None:
    media = {m["kind"]: m for m in subscribe_media()}
    assert media["video"]["fmtp"]["packetization-mode"] == "1"
    assert media["video"]["fmtp"]["profile-level-id"].startswith("f4")  # High 4:4:4 Predictive
    assert media["audio"]["mime"] == "audio/opus"


def test_a_stream_becomes_flv_tags_starting_at_an_idr(x264_aus: list[list[bytes]]) -> None:
    source = RtpFlvSource(_streams())
    pub = _Publisher(x264_aus)
    _play(source, pub, 3.0)
    tags = source.tags()
    assert tags[0].tag_type == TagType.SCRIPT
    meta = ScriptData.parse(tags[0].data).value
    assert isinstance(meta, dict) and meta["width"] == 320 and meta["height"] == 240
    assert is_sequence_header(tags[1]) and tags[1].tag_type == TagType.AUDIO
    assert AudioData.parse(tags[1].data).payload == bytes.fromhex("1190")  # AAC LC 48 kHz stereo
    assert is_sequence_header(tags[2]) and tags[2].tag_type == TagType.VIDEO
    assert is_video_keyframe(tags[3]) and tags[3].timestamp == 0
    video = [t for t in tags if t.tag_type == TagType.VIDEO and not is_sequence_header(t)]
    audio = [t for t in tags if t.tag_type == TagType.AUDIO and not is_sequence_header(t)]
    assert len(video) == 45  # every access unit, in order
    assert [t.timestamp for t in video] == [round(i * 1000 / 15) for i in range(45)]
    assert sum(is_video_keyframe(t) for t in video) == 5
    assert VideoData.parse(video[1].data).frame_type == 2
    # AAC frames of 1024 samples at 48 kHz: 21.33 ms apart, increasing, from the first picture on
    stamps = [t.timestamp for t in audio]
    assert stamps == sorted(set(stamps)) and stamps[0] >= 0
    assert len(audio) > 120
    gaps = np.diff(stamps)
    assert 21 <= float(np.median(gaps)) <= 22
    # lip sync: audio sampled with video frame n is stamped with frame n's time (within a frame)
    assert source.sync.source == "report"
    assert abs(source.sync.audio_offset_ms or 0.0) < 25
    assert source.start_tags() == tags[:3]


def test_players_get_a_keyframe_request_at_the_start_and_after_a_loss(
    x264_aus: list[list[bytes]],
) -> None:
    source = RtpFlvSource(_streams())
    pub = _Publisher(x264_aus)
    for packet in pub.video_packets(1):  # mid-GOP: waiting for an IDR
        source.receive(packet, 10.0)
    plis = [p for d in source.datagrams_to_send() for p in parse_rtcp(d) if isinstance(p, Pli)]
    assert [p.media_ssrc for p in plis] == [VIDEO_SSRC]
    source.request_keyframe(10.1)  # a new player, but a PLI just went out: deferred
    assert source.datagrams_to_send() == []
    assert source.get_timer() == pytest.approx(10.5)
    for packet in pub.video_packets(0):  # an IDR arrives: the deferred request is moot
        source.receive(packet, 10.2)
    assert source.started
    source.handle_timer(10.6)
    assert not any(isinstance(p, Pli) for d in source.datagrams_to_send() for p in parse_rtcp(d))
    # a lost packet: its repair is waited for, then the depacketizer waits for the
    # next IDR and a PLI asks for it
    packets = pub.video_packets(1)
    for packet in [*packets[:1], *packets[2:], *pub.video_packets(2)]:
        source.receive(packet, 12.0)
    assert not source.depacketizer.waiting_for_keyframe
    assert source.video_order.get_timer() == pytest.approx(12.0 + REPAIR_WAIT)
    source.handle_timer(12.0 + REPAIR_WAIT)
    assert source.depacketizer.waiting_for_keyframe
    assert source.video_order.stats.given_up == 1
    assert any(isinstance(p, Pli) for d in source.datagrams_to_send() for p in parse_rtcp(d))


def test_a_repair_that_comes_in_time_is_put_back_in_place(x264_aus: list[list[bytes]]) -> None:
    source = RtpFlvSource(_streams())
    pub = _Publisher(x264_aus)
    for packet in pub.video_packets(0):
        source.receive(packet, 10.0)
    assert source.started
    source.tags()
    frame_1, frame_2 = pub.video_packets(1), pub.video_packets(2)
    assert len(frame_1) >= 2
    for packet in [frame_1[0], *frame_1[2:], *frame_2]:  # frame_1[1] is lost ...
        source.receive(packet, 10.1)
    assert source.tags() == []  # ... and everything behind it waits
    source.receive(frame_1[1], 10.2)  # the NACK repair, a round trip later
    video = [t for t in source.tags() if t.tag_type == TagType.VIDEO]
    assert len(video) == 2 and not any(is_video_keyframe(t) for t in video)
    assert not source.depacketizer.waiting_for_keyframe
    assert source.depacketizer.stats.frames_incomplete == 0
    assert source.video_order.stats.reordered == 1
    assert source.video_order.get_timer() is None  # nothing held any more


def test_receiver_reports_keep_the_session_alive_and_bye_is_noticed(
    x264_aus: list[list[bytes]],
) -> None:
    source = RtpFlvSource(_streams(), rtcp_ssrc=77)
    pub = _Publisher(x264_aus)
    source.receive(pub.audio_packet(0), 50.0)
    source.datagrams_to_send()
    assert source.get_timer() == pytest.approx(51.0)
    source.handle_timer(51.0)
    packets = [p for d in source.datagrams_to_send() for p in parse_rtcp(d)]
    rr = next(p for p in packets if isinstance(p, ReceiverReport))
    assert rr.ssrc == 77 and [b.ssrc for b in rr.reports] == [AUDIO_SSRC]
    assert source.get_timer() == pytest.approx(52.0)
    source.receive(serialize_rtcp([Bye(sources=[VIDEO_SSRC], reason=b"source left")]), 53.0)
    assert source.goodbye_at == 53.0
    source.receive(pub.audio_packet(1), 53.5)  # media again: the source came back
    assert source.goodbye_at is None


def test_garbage_and_strangers_are_counted_not_raised(x264_aus: list[list[bytes]]) -> None:
    source = RtpFlvSource(_streams())
    source.receive(b"\x80", 1.0)
    source.receive(b"\x00" * 40, 1.0)
    stranger = RtpStreamWriter(999, VIDEO_PT, 90_000, first_seq=1, offset=0).write(b"\x65", 0, True)
    source.receive(stranger, 1.0)
    assert source.stats.bad_packets == 2 and source.stats.unknown_ssrc == 1
    assert source.tags() == []


def test_sender_report_of_another_ssrc_is_ignored() -> None:
    source = RtpFlvSource(_streams())
    sr = SenderReport(ssrc=5, ntp_timestamp=ntp_from_unix(WALL), rtp_timestamp=1,
                      packet_count=1, octet_count=1)  # fmt: skip
    source.receive(serialize_rtcp([sr]), 1.0)
    assert source.stats.sender_reports == 0


def test_is_video_keyframe_reads_the_frame_type() -> None:
    key = FlvTag(TagType.VIDEO, 0, bytes(VideoData(1, 1, 0, b"\x00\x00\x00\x01\x65")))
    inter = FlvTag(TagType.VIDEO, 0, bytes(VideoData(2, 1, 0, b"\x00\x00\x00\x01\x41")))
    header = FlvTag(TagType.VIDEO, 0, bytes(VideoData(1, 0, 0, b"\x01")))
    assert is_video_keyframe(key) and not is_video_keyframe(inter)
    assert not is_video_keyframe(header) and is_sequence_header(header)
    assert not is_sequence_header(key)
