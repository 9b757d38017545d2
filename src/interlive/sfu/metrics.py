"""Counters a media worker keeps; the control process exposes them at /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class WorkerCounters:
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    keyframe_requests: int = 0
    #: sequence numbers NACKed to publishers / NACKed by subscribers
    nacks_sent: int = 0
    nacks_received: int = 0
    #: packets resent to subscribers (RTX or plain)
    retransmissions_sent: int = 0
    #: publisher RTX packets turned back into media
    rtx_received: int = 0
    #: audio packets sent to viewers wrapped in RED because of their loss
    red_sent: int = 0
    #: ULPFEC packets sent to viewers whose loss and RTT call for it
    fec_sent: int = 0
    #: ULPFEC packets received from publishers, and media packets rebuilt from them
    fec_received: int = 0
    fec_recovered: int = 0
    #: dropped datagrams and packets by reason
    drops: Counter[str] = field(default_factory=Counter)

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] += n
