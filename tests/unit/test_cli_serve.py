"""``interlive serve`` refuses bad media options before it starts anything."""

from __future__ import annotations

import pytest

from interlive.cli import main
from interlive.worker.settings import MediaSettings


@pytest.mark.parametrize("value", ["-5", "10001"])
def test_max_playout_delay_out_of_range_is_a_clear_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--max-playout-delay", value]) == 2
    err = capsys.readouterr().err
    assert f"--max-playout-delay must be 0..10000 ms, got {value}" in err


def test_media_settings_check_the_delay_in_seconds() -> None:
    assert MediaSettings(max_playout_delay=10.0).max_playout_delay == 10.0
    with pytest.raises(ValueError, match="got 10001"):
        MediaSettings(max_playout_delay=10.001)
