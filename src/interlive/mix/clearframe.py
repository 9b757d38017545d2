"""Clear-frame gate for one video input: never compose a corrupted picture.

A lost reference frame corrupts silently: libvpx keeps decoding the frames
that depend on it without an error, into smeared garbage, and even a
sharpness score goes *up* (measured here: variance of the Laplacian 78 ->
2245 at 9-17 dB PSNR).  Looking at pixels cannot tell; the gate tracks the
dependency chain instead, as libwebrtc's frame buffer does, and answers per
decoded frame whether it may be shown, or whether the last clean frame must
stay on screen and a keyframe be requested from the publisher.

Facts per frame (:class:`FrameFacts`), supplied by the mixer from the RTP
layer and the decoder, in decode order:

* ``keyframe``: decodable on its own; refreshes every reference.
* ``gap_before``: media was lost (not repaired by NACK/FEC) since the
  previous frame, or this frame itself is incomplete.  The lost data may have
  been a reference.
* ``depends_on_previous``: this frame may reference what came before it.
  Set it False only when the frame provably does not use anything that may
  have been lost, e.g. a keyframe, or a frame whose codec descriptor shows the
  loss was confined to frames nothing references (the top temporal layer).
* ``decode_error``: the decoder raised or returned no picture.

Theory of operation
-------------------
The chain is ``NONE`` (no keyframe yet), ``INTACT`` or ``BROKEN``:

=========  ====================================================  ========  ======
chain      frame                                                 next      show
=========  ====================================================  ========  ======
any        keyframe, decoded                                     INTACT    yes
any        keyframe, decode error                                BROKEN*   no
INTACT     delta, decoded, no gap (or gap but independent)       INTACT    yes
INTACT     delta with a gap and depends on previous              BROKEN    no
INTACT     delta, decode error                                   BROKEN    no
NONE       delta                                                 NONE      no
BROKEN     delta                                                 BROKEN    no
=========  ====================================================  ========  ======

(* ``NONE`` stays ``NONE`` when no clean frame was ever shown.)  Every frame
that leaves the chain ``NONE`` or ``BROKEN`` wants a keyframe; requests go
out at most once per ``keyframe_interval`` (:meth:`ClearFrameGate.on_frame`
and :meth:`ClearFrameGate.poll` return True when one should be sent now).

What the compositor shows (:meth:`ClearFrameGate.display`): ``LIVE`` while
the chain is intact and a clean frame came within ``stall_after``;
``FROZEN`` (the last clean frame, held) when the chain is broken or the input
stalled; ``PLACEHOLDER`` (a tile with the participant's name) when no clean
frame ever came or the last one is ``freeze_timeout`` old.  A decoded clean
frame returns to ``LIVE`` from any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Chain", "ClearFrameGate", "Display", "FrameFacts", "GateConfig", "Verdict"]


class Chain(Enum):
    NONE = "none"  # no clean keyframe yet
    INTACT = "intact"
    BROKEN = "broken"


class Display(Enum):
    LIVE = "live"  # compose the newest clean frame
    FROZEN = "frozen"  # keep composing the last clean frame
    PLACEHOLDER = "placeholder"  # a tile with the participant's name


@dataclass(frozen=True, slots=True)
class FrameFacts:
    keyframe: bool
    gap_before: bool = False
    depends_on_previous: bool = True
    decode_error: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    show: bool  # compose this decoded frame (it becomes the last clean frame)
    request_keyframe: bool  # send a keyframe request (PLI) to the publisher now


@dataclass(frozen=True, slots=True)
class GateConfig:
    keyframe_interval: float = 1.0  # at most one keyframe request per this many seconds
    stall_after: float = 0.5  # no clean frame for this long: FROZEN
    freeze_timeout: float = 3.0  # no clean frame for this long: PLACEHOLDER

    def __post_init__(self) -> None:
        if not 0 < self.stall_after <= self.freeze_timeout or self.keyframe_interval <= 0:
            raise ValueError("need 0 < stall_after <= freeze_timeout and keyframe_interval > 0")


class ClearFrameGate:
    """Decides per decoded frame: show, or hold the last clean one; see the module docstring."""

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        self.chain = Chain.NONE
        self.last_clean: float | None = None  # when the last clean frame was shown
        self._last_request: float | None = None
        self.keyframe_requests = 0
        self.frames_held = 0  # decoded frames not shown because the chain was broken

    def on_frame(self, facts: FrameFacts, now: float) -> Verdict:
        """Gate one decoded (or failed) frame, in decode order."""
        if facts.keyframe:
            clean = not facts.decode_error
        else:
            broken_by_gap = facts.gap_before and facts.depends_on_previous
            clean = self.chain is Chain.INTACT and not broken_by_gap and not facts.decode_error
        if clean:
            self.chain = Chain.INTACT
            self.last_clean = now
            return Verdict(show=True, request_keyframe=False)
        if self.chain is Chain.INTACT:
            self.chain = Chain.BROKEN
        self.frames_held += 1
        return Verdict(show=False, request_keyframe=self._request(now))

    def poll(self, now: float) -> bool:
        """True when a keyframe request is due while waiting for one (call on a timer)."""
        if self.chain is Chain.INTACT:
            return False
        return self._request(now)

    def _request(self, now: float) -> bool:
        last = self._last_request
        if last is not None and now - last < self.config.keyframe_interval:
            return False
        self._last_request = now
        self.keyframe_requests += 1
        return True

    def next_poll(self) -> float | None:
        """When :meth:`poll` may next return True (None while the chain is intact)."""
        if self.chain is Chain.INTACT:
            return None
        if self._last_request is None:
            return float("-inf")
        return self._last_request + self.config.keyframe_interval

    def display(self, now: float) -> Display:
        """What the compositor should show for this input at ``now``."""
        if self.last_clean is None:
            return Display.PLACEHOLDER
        age = now - self.last_clean
        if age >= self.config.freeze_timeout:
            return Display.PLACEHOLDER
        if self.chain is Chain.BROKEN or age >= self.config.stall_after:
            return Display.FROZEN
        return Display.LIVE
