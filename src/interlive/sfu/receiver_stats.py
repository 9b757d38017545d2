"""Reception statistics of one inbound RTP stream (RFC 3550 §6.4.1, A.3, A.8).

Fed the extended sequence number, RTP timestamp and arrival time of every
packet; produces the numbers of a report block: fraction lost since the last
report, cumulative loss, extended highest sequence, interarrival jitter, and
LSR/DLSR from the last sender report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReceptionReport:
    fraction_lost: int  # 0..255
    packets_lost: int  # cumulative, clamped to signed 24 bits
    highest_sequence: int  # extended, low 32 bits
    jitter: int  # timestamp units
    lsr: int
    dlsr: int  # 1/65536 s


class ReceiverStats:
    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.base_seq: int | None = None
        self.max_seq = 0
        self.received = 0
        self.bytes = 0
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._last_sr_compact = 0
        self._last_sr_arrival: float | None = None
        #: (ntp, rtp timestamp, arrival) of the last sender report: the clock mapping
        self.last_sr: tuple[int, int, float] | None = None

    def on_packet(self, ext_seq: int, timestamp: int, arrival: float, size: int) -> None:
        if self.base_seq is None:
            self.base_seq = ext_seq
            self.max_seq = ext_seq
        elif ext_seq > self.max_seq:
            self.max_seq = ext_seq
        self.received += 1
        self.bytes += size
        transit = arrival * self.clock_rate - timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            # Timestamps of one frame repeat; a wrap shows as a huge d: skip it.
            if d < self.clock_rate * 10:
                self._jitter += (d - self._jitter) / 16.0
        self._last_transit = transit

    def on_sender_report(self, ntp: int, rtp_timestamp: int, arrival: float) -> None:
        self._last_sr_compact = (ntp >> 16) & 0xFFFFFFFF
        self._last_sr_arrival = arrival
        self.last_sr = (ntp, rtp_timestamp, arrival)

    @property
    def expected(self) -> int:
        return 0 if self.base_seq is None else self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def report(self, now: float) -> ReceptionReport:
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lost = max(-(1 << 23), min((1 << 23) - 1, self.lost))
        dlsr = 0
        if self._last_sr_arrival is not None:
            dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
        return ReceptionReport(
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.max_seq & 0xFFFFFFFF,
            jitter=int(self._jitter),
            lsr=self._last_sr_compact,
            dlsr=dlsr,
        )
