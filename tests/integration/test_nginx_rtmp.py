"""The latency benchmark's baseline: nginx-rtmp relays an ffmpeg push to an RTMP player."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from interlive.bench.nginx_rtmp import NginxRtmpError, nginx_config, nginx_rtmp
from tests.helpers.rtmp import ffmpeg_publisher


def test_the_config_is_self_contained(tmp_path: Path) -> None:
    module = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    conf = nginx_config(19350, tmp_path, module)
    assert f"load_module {module};" in conf
    assert "listen 127.0.0.1:19350;" in conf and "application live" in conf
    assert str(tmp_path) in conf and "/var/" not in conf  # nothing outside the temp dir


def test_nginx_relays_an_ffmpeg_push_to_ffprobe(tmp_path: Path) -> None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.fail("ffprobe is missing: install ffmpeg (scripts/setup.sh test)", pytrace=False)
    with contextlib.ExitStack() as stack:
        try:
            nginx = stack.enter_context(nginx_rtmp())
        except NginxRtmpError as exc:
            pytest.fail(str(exc), pytrace=False)
        url = nginx.url("cohost")
        with ffmpeg_publisher(url, tmp_path, seconds=30) as ffmpeg:
            deadline = time.monotonic() + 25
            probe: dict[str, Any] = {}
            while time.monotonic() < deadline:
                result = subprocess.run(
                    [ffprobe, "-v", "error", "-rw_timeout", "10000000", "-show_entries",
                     "stream=codec_type,codec_name,width,height", "-of", "json", url],
                    capture_output=True, text=True, timeout=30,
                )  # fmt: skip
                if result.returncode == 0:
                    probe = json.loads(result.stdout)
                    break
                time.sleep(0.5)  # the push may not be up yet
            assert ffmpeg.running(), ffmpeg.log()
        streams = {s["codec_type"]: s for s in probe.get("streams", [])}
        assert streams["video"]["codec_name"] == "h264", (probe, nginx.log())
        assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
        assert streams["audio"]["codec_name"] == "aac"
    assert nginx.process.poll() is not None  # stopped with the context
