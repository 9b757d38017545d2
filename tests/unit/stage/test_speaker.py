from __future__ import annotations

from collections.abc import Callable

import pytest

from interlive.stage.model import ActiveSpeakerChanged
from interlive.stage.speaker import ActiveSpeakerDetector, SpeakerConfig

PACKET = 0.02  # 20 ms audio packets
SILENT = 127

#: level(identity, t) -> (RFC 6464 level, vad) or None when no packet is sent.
Script = Callable[[str, float], tuple[int, bool] | None]


def run(
    script: Script,
    identities: list[str],
    duration: float,
    detector: ActiveSpeakerDetector | None = None,
) -> list[tuple[float, str | None]]:
    """Feed 20 ms packets and tick every 100 ms; the (time, speaker) changes."""
    det = detector or ActiveSpeakerDetector()
    changes: list[tuple[float, str | None]] = []
    steps = round(duration / PACKET)
    per_tick = round(det.config.interval / PACKET)
    for n in range(steps + 1):
        t = n * PACKET
        for identity in identities:
            sample = script(identity, t)
            if sample is not None:
                det.observe(identity, sample[0], sample[1], t)
        if n % per_tick == 0:
            change = det.tick(t)
            if change is not None:
                changes.append((round(t, 2), change.identity))
    return changes


def talk(level: int = 30) -> tuple[int, bool]:
    return (level, True)


QUIET = (SILENT, False)


def test_two_talkers_alternating_switch_once_per_turn() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        turn = int(t // 3) % 2  # A talks 0-3 s, B 3-6 s, A 6-9 s, B 9-12 s
        speaking = "a" if turn == 0 else "b"
        return talk() if identity == speaking else QUIET

    changes = run(script, ["a", "b"], 12.0)
    assert [who for _, who in changes] == ["a", "b", "a", "b"]
    dwell = SpeakerConfig().dwell
    for (t, _), turn_start in zip(changes, [0.0, 3.0, 6.0, 9.0], strict=True):
        assert turn_start + dwell <= t <= turn_start + dwell + 0.5


def test_brief_noise_bursts_do_not_switch() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        if identity == "a":
            return talk(35)
        # b: a 150 ms loud burst (cough, door) at the start of every second
        return talk(10) if t >= 1.0 and (t % 1.0) < 0.15 else QUIET

    changes = run(script, ["a", "b"], 8.0)
    assert [who for _, who in changes] == ["a"]


def test_a_clearly_louder_talker_takes_over_after_the_dwell() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        if identity == "a":
            return talk(40)
        return talk(15) if t >= 2.0 else QUIET

    changes = run(script, ["a", "b"], 5.0)
    assert [who for _, who in changes] == ["a", "b"]
    assert changes[1][0] >= 2.0 + SpeakerConfig().dwell


def test_equally_loud_overlap_does_not_flicker() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        if identity == "a":
            return talk(30)
        # b talks as loud as a, with small wobbles, from 1 s on
        return talk(28 + int(t * 50) % 5) if t >= 1.0 else QUIET

    changes = run(script, ["a", "b"], 6.0)
    assert [who for _, who in changes] == ["a"]


def test_silence_ends_the_active_speaker_after_hold() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        return talk() if t < 2.0 else QUIET

    changes = run(script, ["a"], 6.0)
    assert [who for _, who in changes] == ["a", None]
    hold = SpeakerConfig().hold
    assert 2.0 + hold <= changes[1][0] <= 2.0 + hold + 0.6


def test_dtx_silence_without_packets_decays() -> None:
    def script(identity: str, t: float) -> tuple[int, bool] | None:
        return talk() if t < 2.0 else None  # the sender stops sending (DTX)

    changes = run(script, ["a"], 6.0)
    assert [who for _, who in changes] == ["a", None]


def test_noise_without_vad_never_counts() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        return (20, False)  # loud but the sender's VAD says it is not voice

    assert run(script, ["a"], 4.0) == []


def test_short_pauses_between_words_keep_the_speaker() -> None:
    def script(identity: str, t: float) -> tuple[int, bool]:
        if identity == "a":
            return talk(30) if (t % 0.8) < 0.55 else QUIET  # 250 ms gaps
        return talk(60) if t >= 1.0 else QUIET  # quieter background talker

    changes = run(script, ["a", "b"], 6.0)
    assert [who for _, who in changes] == ["a"]


def test_remove_the_active_speaker() -> None:
    det = ActiveSpeakerDetector()
    run(lambda i, t: talk(), ["a"], 2.0, det)
    assert det.active == "a"
    assert det.remove("b", 2.0) is None
    assert det.remove("a", 2.0) == ActiveSpeakerChanged(None)
    assert det.active is None and det.loudness("a", 2.0) == 0.0


def test_bad_input() -> None:
    det = ActiveSpeakerDetector()
    with pytest.raises(ValueError):
        det.observe("a", 128, True, 0.0)
    with pytest.raises(ValueError):
        det.observe("a", -1, True, 0.0)
    with pytest.raises(ValueError):
        SpeakerConfig(on=10, off=20)
    with pytest.raises(ValueError):
        SpeakerConfig(tau=0)
