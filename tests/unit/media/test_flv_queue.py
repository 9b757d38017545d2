"""A player's queue: start at a keyframe, GOP drop for a slow player, then disconnect."""

from __future__ import annotations

from interlive.media.flv import AudioData, FlvTag, ScriptData, TagType, VideoData
from interlive.media.flv_queue import PlayerQueue, QueueLimits, Verdict


def video(ts: int, key: bool = False, size: int = 1000) -> FlvTag:
    return FlvTag(TagType.VIDEO, ts, bytes(VideoData(1 if key else 2, 1, 0, b"\x00" * size)))


def audio(ts: int) -> FlvTag:
    return FlvTag(TagType.AUDIO, ts, bytes(AudioData.aac(1, b"\x21" * 200)))


META = FlvTag(TagType.SCRIPT, 0, bytes(ScriptData("onMetaData", {"width": 320.0})))
AAC_CONFIG = FlvTag(TagType.AUDIO, 0, bytes(AudioData.aac(0, bytes.fromhex("1190"))))
AVC_CONFIG = FlvTag(TagType.VIDEO, 5000, bytes(VideoData(1, 0, 0, b"\x01\x42\xc0\x1f")))
CONFIG = [META, AAC_CONFIG, AVC_CONFIG]


def stream(start: int, seconds: float, gop_ms: int = 1000) -> list[FlvTag]:
    """30 fps video with a keyframe every ``gop_ms`` and 21 ms audio, interleaved by time."""
    frames = int(seconds * 30)
    per_gop = gop_ms * 30 // 1000
    tags = [video(start + round(i * 1000 / 30), key=i % per_gop == 0) for i in range(frames)]
    tags += [audio(start + t) for t in range(0, int(seconds * 1000), 21)]
    return sorted(tags, key=lambda t: (t.timestamp, -t.tag_type))  # video first on ties


def drain(queue: PlayerQueue) -> list[FlvTag]:
    out = []
    while batch := queue.take():
        out += batch
        queue.delivered()
    return out


def test_a_player_starts_at_a_keyframe_with_the_config_and_time_from_zero() -> None:
    queue = PlayerQueue()
    assert queue.offer(audio(4990), CONFIG) is Verdict.WAITING
    assert queue.offer(video(4995), CONFIG) is Verdict.WAITING
    assert not queue.started
    assert queue.offer(video(5000, key=True), CONFIG) is Verdict.QUEUED
    assert queue.offer(audio(4999), CONFIG) is Verdict.WAITING  # before the first picture
    assert queue.offer(audio(5010), CONFIG) is Verdict.QUEUED
    assert queue.offer(video(5033), CONFIG) is Verdict.QUEUED
    out = drain(queue)
    assert [t.data for t in out[:3]] == [c.data for c in CONFIG]
    assert [t.timestamp for t in out] == [0, 0, 0, 0, 10, 33]
    assert queue.lag_ms == 0 and queue.queued_bytes == 0


def test_a_player_that_keeps_up_never_drops() -> None:
    queue = PlayerQueue()
    for tag in stream(0, 20):
        assert queue.offer(tag, CONFIG) is Verdict.QUEUED
        drain(queue)
    assert queue.stats.gop_drops == 0 and queue.stats.tags_dropped == 0


def test_a_slow_player_drops_to_the_newest_queued_keyframe() -> None:
    queue = PlayerQueue(QueueLimits(gop_drop_ms=1500, disconnect_ms=5000))
    verdicts = []
    for tag in stream(0, 2.1, gop_ms=1000):  # nobody reads
        verdicts.append(queue.offer(tag, CONFIG))
    assert Verdict.DROPPED in verdicts and queue.stats.gop_drops == 1
    out = drain(queue)
    # the config survives; media restarts at the keyframe of t=1000 (or the one at 2000)
    assert [t.data for t in out[:3]] == [c.data for c in CONFIG]
    first_media = out[3]
    assert first_media.tag_type == TagType.VIDEO and first_media.data[0] >> 4 == 1
    assert first_media.timestamp in (1000, 2000)
    assert not queue.skipping


def test_without_a_later_keyframe_the_queue_empties_and_skips_to_the_next_one() -> None:
    queue = PlayerQueue(QueueLimits(gop_drop_ms=1000, disconnect_ms=10_000))
    tags = stream(0, 4.9, gop_ms=4000)  # keyframes at 0 and 4000 only
    first_drop = None
    for tag in tags:
        verdict = queue.offer(tag, CONFIG)
        if verdict is Verdict.DROPPED and first_drop is None:
            first_drop = tag.timestamp
            assert queue.skipping  # nothing worth keeping: wait for (and ask for) a keyframe
        if first_drop is not None and tag.timestamp < 4000:
            assert queue.queued_tags == 3  # only the sequence headers
        if tag.timestamp == 4000 and tag.tag_type == TagType.VIDEO:
            assert verdict is Verdict.QUEUED and not queue.skipping
    assert first_drop is not None and 1000 <= first_drop < 1100
    out = drain(queue)
    media = [t for t in out[3:]]
    assert media[0].timestamp == 4000 and media[0].data[0] >> 4 == 1
    assert queue.stats.tags_dropped > 100


def test_a_stuck_player_is_disconnected_after_five_seconds_of_lag() -> None:
    queue = PlayerQueue()
    verdict = Verdict.QUEUED
    last = 0
    for tag in stream(0, 8.0):
        verdict = queue.offer(tag, CONFIG)
        last = tag.timestamp
        if tag.timestamp == 0:
            queue.take()  # the writer took the start and never finished writing it
        if verdict is Verdict.DISCONNECT:
            break
    assert verdict is Verdict.DISCONNECT
    assert 5000 < last <= 5100 and queue.lag_ms > 5000
    assert queue.stats.gop_drops >= 3  # it dropped to keyframes first
    assert queue.queued_bytes <= QueueLimits().gop_drop_bytes + 2000  # memory stayed bounded


def test_a_player_slower_than_the_stream_survives_by_dropping() -> None:
    queue = PlayerQueue()
    taken = 0
    for i, tag in enumerate(stream(0, 30.0)):
        assert queue.offer(tag, CONFIG) is not Verdict.DISCONNECT
        if i % 3 == 0:  # reads a third of what arrives
            taken += len(queue.take(max_bytes=1))
            queue.delivered()
    assert queue.stats.gop_drops > 5 and taken > 100
    assert queue.lag_ms < 5000


def test_too_many_bytes_disconnect_at_once() -> None:
    queue = PlayerQueue(QueueLimits(gop_drop_bytes=10 << 20, max_bytes=50_000))
    queue.offer(video(0, key=True), CONFIG)
    verdicts = [queue.offer(video(33 * i, size=20_000), CONFIG) for i in range(1, 4)]
    assert verdicts[-1] is Verdict.DISCONNECT


def test_take_batches_up_to_a_size_and_delivered_moves_the_position() -> None:
    queue = PlayerQueue()
    queue.offer(video(0, key=True), CONFIG)
    for i in range(1, 10):
        queue.offer(video(33 * i, size=5000), CONFIG)
    batch = queue.take(max_bytes=12_000)
    assert 1 <= len(batch) < 13 and sum(len(t.data) + 15 for t in batch) <= 12_000
    assert queue.position_ms == 0
    queue.delivered()
    assert queue.position_ms == batch[-1].timestamp
    big = queue.take(max_bytes=1)  # always at least one tag
    assert len(big) == 1
