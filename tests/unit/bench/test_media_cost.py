"""``interlive bench media``: the SNR, the speech-like input, the report, and a smoke run.

Correctness only: the numbers belong to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from interlive.bench import media_cost
from interlive.bench.media_cost import (
    SECTION,
    CpuCase,
    FecCase,
    MediaResults,
    render_run,
    run,
    snr_db,
    speech_like,
)

# --- snr_db -------------------------------------------------------------------------------


def test_snr_of_a_signal_against_itself_is_infinite() -> None:
    x = np.array([1, -2, 3, 4], dtype=np.int16)
    assert snr_db(x, x) == math.inf


def test_snr_is_signal_power_over_error_power() -> None:
    # signal power 4 * 100 = 400, error power 4 * 1 = 4: 20 dB
    reference = np.array([10.0, -10.0, 10.0, -10.0])
    assert snr_db(reference, reference + 1.0) == pytest.approx(20.0)
    # an error as large as the signal (silence instead of it): 0 dB
    assert snr_db(reference, np.zeros(4)) == pytest.approx(0.0)
    # half the amplitude: error power a quarter of the signal's, 10 log10(4)
    assert snr_db(reference, reference / 2) == pytest.approx(10 * math.log10(4))


def test_snr_of_a_sine_with_known_noise() -> None:
    t = np.arange(48_000) / 48_000
    sine = 1000 * np.sin(2 * math.pi * 440 * t)  # power 1000^2 / 2
    square = np.where(np.arange(48_000) % 2, 10.0, -10.0)  # power 100
    assert snr_db(sine, sine + square) == pytest.approx(10 * math.log10(5000), abs=1e-6)


def test_snr_refuses_mismatched_lengths_and_a_silent_reference() -> None:
    with pytest.raises(ValueError, match="samples"):
        snr_db(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="silent"):
        snr_db(np.zeros(4), np.ones(4))


# --- the input --------------------------------------------------------------------------


def test_speech_like_audio_is_seeded_bounded_and_has_pauses() -> None:
    a = speech_like(2.0, 48_000, seed=3)
    assert a.dtype == np.int16 and a.size == 96_000
    assert np.array_equal(a, speech_like(2.0, 48_000, seed=3))
    assert not np.array_equal(a, speech_like(2.0, 48_000, seed=4))
    assert int(np.max(np.abs(a))) == round(0.5 * 32767)  # peaks at -6 dBFS
    assert np.any(a[:480] != 0)  # it opens with a syllable
    frames = a[: 96_000 // 960 * 960].reshape(-1, 960)
    silent = int(np.sum(~frames.any(axis=1)))
    assert 0 < silent < len(frames)  # pauses, but not only pauses


# --- the report ---------------------------------------------------------------------------


def _results() -> MediaResults:
    return MediaResults(
        seconds=10.0,
        rounds=3,
        cpu=(
            CpuCase("AAC → Opus", 10.0, (0.2, 0.25, 0.21)),
            CpuCase("FLV feed", 10.0, (0.6, 0.5, 0.55)),
        ),
        fec=(
            FecCase(
                loss=0.1,
                hint=10,
                frames=500,
                lost=50,
                recovered_fec=45,
                lbrr_packets=400,
                snr_fec=25.04,
                snr_plc=12.0,
                snr_fec_lost=15.55,
                snr_plc_lost=math.nan,
            ),
        ),
        video_kbps=1084.9,
        seed=1,
    )


def test_cpu_case_median_is_in_ms_per_second_of_media() -> None:
    assert CpuCase("x", 10.0, (0.2, 0.25, 0.21)).median_ms_per_s == pytest.approx(21.0)
    assert CpuCase("x", 2.0, (0.3, 0.1)).median_ms_per_s == pytest.approx(150.0)  # upper median
    assert FecCase(0.1, 10, 10, 0, 0, 0, 0.0, 0.0, 0.0, 0.0).recovered_share == 0.0


def test_report_renders_command_context_and_both_tables() -> None:
    text = render_run(
        _results(),
        command="interlive bench media --seconds 10 --rounds 3",
        when=datetime(2026, 11, 24, 21, 5, tzinfo=UTC),
        machine="2 x Some CPU",
        commit="abc1234",
        load=(5.35, 5.5),
    )
    assert text == (
        "### Run of 2026-11-24 21:05 UTC (commit abc1234)\n"
        "\n"
        "`interlive bench media --seconds 10 --rounds 3`: 10 s of media per case, 3 interleaved "
        "rounds; 2 x Some CPU; load average 5.35 before, 5.50 after (a shared machine).\n"
        "\n"
        "| case | CPU ms per s of media (median) | share of one core | all rounds (ms per s) |\n"
        "|---|--:|--:|---|\n"
        "| AAC → Opus | 21.0 | 2.1 % | 20.0, 25.0, 21.0 |\n"
        "| FLV feed | 55.0 | 5.5 % | 60.0, 50.0, 55.0 |\n"
        "\n"
        "Video input: 1,085 kbit/s of H.264.\n"
        "\n"
        "| frame loss | loss hint | lost frames | rebuilt from LBRR | packets with LBRR "
        "| SNR with FEC (dB) | SNR with PLC only (dB) | lost frames: FEC / PLC (dB) |\n"
        "|--:|--:|--:|--:|--:|--:|--:|--:|\n"
        "| 10 % | 10 % | 50 of 500 | 90 % | 80 % | 25.0 | 12.0 | 15.6 / n/a |\n"
    )


def test_output_adds_the_section_once_then_appends_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(media_cost, "run", lambda seconds, rounds: _results())
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    args = argparse.Namespace(seconds=10.0, rounds=3, output=str(doc))
    assert media_cost.main(args) == 0
    assert media_cost.main(args) == 0
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n" + SECTION + "\n")
    assert text.count(SECTION) == 1
    assert text.count("### Run of ") == 2
    assert text.count(f"`interlive bench media --seconds 10 --rounds 3 --output {doc}`") == 2
    assert "| FLV feed | 55.0 |" in capsys.readouterr().out


# --- a smoke run ---------------------------------------------------------------------------


def test_a_tiny_run_measures_every_case_and_fec_beats_concealment() -> None:
    results = run(0.2, 1, seed=2)  # seed 2 loses frames at both rates in 10 frames
    assert [c.name for c in results.cpu] == [
        "AAC → Opus (AacToOpus, RTMP ingest)",
        "Opus → AAC (OpusFecDecoder + OpusToAac)",
        "OpusToAac only (AAC encode)",
        "FLV feed (RtpFlvSource, H.264 + Opus → FLV tags)",
    ]
    for case in results.cpu:
        assert len(case.cpu_seconds) == 1 and case.cpu_seconds[0] > 0
        assert 0.15 <= case.media_seconds <= 0.25
        assert 0 < case.median_ms_per_s < 10_000
    assert results.video_kbps > 100
    assert [f.loss for f in results.fec] == [0.1, 0.2]
    assert [f.hint for f in results.fec] == [10, 20]  # as the SDK's LossHintFilter gives it
    for f in results.fec:
        assert f.frames == 10 and 0 < f.lost < f.frames
        assert 0 < f.recovered_fec <= f.lost
        assert f.snr_fec > f.snr_plc > 0
