"""Server configuration: embedded defaults, overridable by flags and environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from interlive.worker.settings import DEFAULT_MAX_PLAYOUT_DELAY, LossProtection, MediaSettings


def default_data_dir() -> Path:
    env = os.environ.get("INTERLIVE_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "interlive"


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    #: worker i listens on udp_port + i
    udp_port: int = 40000
    #: the address put in ICE candidates; defaults to the UDP bind address
    announced_ip: str | None = None
    #: bind the address peers send to: replies must come from it (ICE checks the source)
    udp_bind: str = "127.0.0.1"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    data_dir: Path = field(default_factory=default_data_dir)
    secret: str | None = None
    #: cap on the video bitrate asked of publishers through REMB, bits/s
    max_publish_bitrate: int = 2_500_000
    #: viewer-leg loss repair: "policy" (per viewer) or one forced tool (see MediaSettings)
    loss_protection: LossProtection = "policy"
    #: the longest render delay the policy may ask of a lossy viewer, seconds (0: never)
    max_playout_delay: float = DEFAULT_MAX_PLAYOUT_DELAY
    log_level: str = "info"
    dev: bool = False
    #: URLs that receive the rooms' events as signed JSON POSTs (server/webhooks.py)
    webhooks: tuple[str, ...] = ()
    #: RTMP ingest (server/rtmp_edge.py) on ``host``; 0 turns it off
    rtmp_port: int = 1935

    def media_settings(self) -> MediaSettings:
        return MediaSettings(
            max_publish_bitrate=self.max_publish_bitrate,
            loss_protection=self.loss_protection,
            max_playout_delay=self.max_playout_delay,
        )

    def candidate_ip(self) -> str:
        if self.announced_ip:
            return self.announced_ip
        return "127.0.0.1" if self.udp_bind in ("0.0.0.0", "") else self.udp_bind
