"""What the control process tells each media worker about how to treat media.

One frozen, picklable object travels from :class:`~interlive.config.ServerConfig`
through the worker process's arguments to every session, so a new knob is one
field here instead of a parameter threaded through five signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

#: What the server does for each viewer's lost packets (see docs/architecture.md):
#: ``policy`` chooses per viewer from its measured loss and RTT; the others force one
#: tool everywhere (``none`` repairs nothing), which the loss benchmark compares.
LossProtection = Literal["policy", "none", "nack", "fec", "red"]
LOSS_PROTECTION_CHOICES: Final[tuple[str, ...]] = get_args(LossProtection)


@dataclass(frozen=True, slots=True)
class MediaSettings:
    #: cap on the video bitrate asked of publishers through REMB, bits/s
    max_publish_bitrate: int = 2_500_000
    loss_protection: LossProtection = "policy"

    def __post_init__(self) -> None:
        if self.loss_protection not in LOSS_PROTECTION_CHOICES:
            raise ValueError(
                f"loss protection must be one of {', '.join(LOSS_PROTECTION_CHOICES)}, "
                f"got {self.loss_protection!r}"
            )
