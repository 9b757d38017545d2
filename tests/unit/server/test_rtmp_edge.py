"""The RTMP edge's configuration and metrics (its media paths run in tests/integration)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from interlive.bench.system import Metrics
from interlive.cli import build_parser
from interlive.config import ServerConfig
from interlive.server.rtmp_edge import RtmpEdge


def test_serve_puts_rtmp_on_1935_unless_told() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).rtmp_port == 1935
    assert parser.parse_args(["serve", "--rtmp-port", "0"]).rtmp_port == 0
    assert ServerConfig().rtmp_port == 1935


def _edge(udp_bind: str = "127.0.0.1") -> RtmpEdge:
    plane = SimpleNamespace(pool=SimpleNamespace(listeners=[]))
    return RtmpEdge(ServerConfig(udp_bind=udp_bind), cast(Any, plane))


def test_the_edge_listens_to_the_workers_events() -> None:
    edge = _edge()
    assert edge._on_worker_event in edge.plane.pool.listeners


def test_media_goes_to_the_workers_bind_address_or_loopback() -> None:
    assert _edge("10.0.0.5").media_host == "10.0.0.5"
    assert _edge("0.0.0.0").media_host == "127.0.0.1"


def test_metrics_are_valid_prometheus_text_with_reasons_as_labels() -> None:
    edge = _edge()
    edge.stats.reject("bad_token")
    edge.stats.reject("bad_token")
    edge.stats.close("stalled")
    edge.stats.transcode_seconds = 0.25
    text = edge.render_metrics()
    metrics = Metrics.parse(text)
    assert metrics.by_label("interlive_rtmp_rejected_total", "reason") == {"bad_token": 2.0}
    assert metrics.by_label("interlive_rtmp_closed_total", "reason") == {"stalled": 1.0}
    assert metrics.total("interlive_rtmp_audio_transcode_seconds_total") == 0.25
    assert metrics.total("interlive_rtmp_publishers") == 0
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families)) and all(
        f.startswith("interlive_rtmp_") for f in families
    )
