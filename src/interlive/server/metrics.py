"""Prometheus text exposition (format 0.0.4) of the workers' counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_COUNTERS = {
    "packets_in": ("interlive_packets_received_total", "UDP datagrams received by media workers"),
    "bytes_in": ("interlive_bytes_received_total", "UDP bytes received by media workers"),
    "packets_out": ("interlive_packets_sent_total", "SRTP packets sent by media workers"),
    "bytes_out": ("interlive_bytes_sent_total", "SRTP bytes sent by media workers"),
    "rtcp_in": ("interlive_rtcp_received_total", "RTCP compound packets received"),
    "rtcp_out": ("interlive_rtcp_sent_total", "RTCP compound packets sent"),
    "keyframe_requests": ("interlive_keyframe_requests_total", "PLIs sent to publishers"),
    "nacks_sent": ("interlive_nacks_sent_total", "Sequence numbers NACKed to publishers"),
    "nacks_received": ("interlive_nacks_received_total", "Sequence numbers NACKed by subscribers"),
    "retransmissions_sent": (
        "interlive_retransmissions_sent_total",
        "Packets resent to subscribers answering their NACKs",
    ),
    "rtx_received": (
        "interlive_rtx_received_total",
        "Publisher RTX packets turned back into media",
    ),
    "red_sent": (
        "interlive_red_packets_sent_total",
        "Audio packets sent in RED (RFC 2198) to viewers whose loss calls for it",
    ),
    "fec_sent": (
        "interlive_fec_packets_sent_total",
        "ULPFEC (RFC 5109) packets sent to viewers whose loss and RTT call for it",
    ),
    "fec_received": (
        "interlive_fec_packets_received_total",
        "ULPFEC packets received from publishers",
    ),
    "fec_recovered": (
        "interlive_fec_recovered_total",
        "Publisher packets lost on the way and rebuilt from their ULPFEC",
    ),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(workers: Iterable[Mapping[str, Any]], extra: Mapping[str, float]) -> str:
    stats = list(workers)
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("interlive_sessions", "gauge", "Peer sessions (WHIP, WHEP) per media worker")
    for s in stats:
        lines.append(f'interlive_sessions{{worker="{s["index"]}"}} {s["sessions"]}')
    family("interlive_rooms", "gauge", "Rooms hosted per media worker")
    for s in stats:
        lines.append(f'interlive_rooms{{worker="{s["index"]}"}} {s["rooms"]}')
    for key, (name, help_text) in _COUNTERS.items():
        family(name, "counter", help_text)
        for s in stats:
            lines.append(f'{name}{{worker="{s["index"]}"}} {s[key]}')
    family(
        "interlive_viewer_streams_by_protection",
        "gauge",
        "Streams sent to viewers, by the loss repair their protection policy chose",
    )
    for s in stats:
        for tool, count in sorted(s.get("protection", {}).items()):
            lines.append(
                f'interlive_viewer_streams_by_protection{{worker="{s["index"]}",'
                f'tool="{_escape(tool)}"}} {count}'
            )
    family("interlive_dropped_packets_total", "counter", "Datagrams or packets dropped, by reason")
    for s in stats:
        for reason, count in sorted(s["drops"].items()):
            lines.append(
                f'interlive_dropped_packets_total{{worker="{s["index"]}",reason="{_escape(reason)}"}}'
                f" {count}"
            )
    family("interlive_worker_cpu_seconds_total", "counter", "CPU time used by each media worker")
    for s in stats:
        lines.append(
            f'interlive_worker_cpu_seconds_total{{worker="{s["index"]}"}} {s["cpu_seconds"]:.3f}'
        )
    for name, value in extra.items():
        family(name, "gauge", name.replace("_", " "))
        lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"
