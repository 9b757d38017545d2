"""What the control process tells each media worker about how to treat media.

One frozen, picklable object travels from :class:`~interlive.config.ServerConfig`
through the worker process's arguments to every session, so a new knob is one
field here instead of a parameter threaded through five signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlive.protection.policy import MAX_PLAYOUT_DELAY
from interlive.protection.viewer import (
    DEFAULT_MAX_PLAYOUT_DELAY,
    LOSS_PROTECTION_CHOICES,
    LossProtection,
)

__all__ = [
    "DEFAULT_MAX_PLAYOUT_DELAY",
    "LOSS_PROTECTION_CHOICES",
    "LossProtection",
    "MediaSettings",
]


@dataclass(frozen=True, slots=True)
class MediaSettings:
    #: cap on the video bitrate asked of publishers through REMB, bits/s
    max_publish_bitrate: int = 2_500_000
    loss_protection: LossProtection = "policy"
    #: the longest render delay the policy may ask of a lossy viewer, seconds (0: never)
    max_playout_delay: float = DEFAULT_MAX_PLAYOUT_DELAY

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_playout_delay <= MAX_PLAYOUT_DELAY:
            raise ValueError(
                f"--max-playout-delay must be 0..{MAX_PLAYOUT_DELAY * 1000:g} ms, "
                f"got {self.max_playout_delay * 1000:g}"
            )
        if self.loss_protection not in LOSS_PROTECTION_CHOICES:
            raise ValueError(
                f"loss protection must be one of {', '.join(LOSS_PROTECTION_CHOICES)}, "
                f"got {self.loss_protection!r}"
            )
