"""The application's shared objects, under typed keys (aiohttp ``web.AppKey``).

One place that names what handlers find on ``request.app``; typed keys let
mypy check each use, where string keys would be ``Any`` (and aiohttp warns
about them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from interlive.server.app import ControlPlane
    from interlive.server.live_api import LiveManager
    from interlive.server.playback import PlaybackHub
    from interlive.server.signaling_ws import SignalingHub

__all__ = ["LIVE", "METRICS_SOURCES", "MODES", "PLANE", "PLAYBACK", "SIGNALING"]

PLANE: web.AppKey[ControlPlane] = web.AppKey("plane")
#: ``{"whip": "publish", "whep": "subscribe"}``: the session mode of each URL kind
MODES: web.AppKey[dict[str, str]] = web.AppKey("modes")
LIVE: web.AppKey[LiveManager] = web.AppKey("live")
PLAYBACK: web.AppKey[PlaybackHub] = web.AppKey("playback")
SIGNALING: web.AppKey[SignalingHub] = web.AppKey("signaling")
#: extra Prometheus text appended to ``GET /metrics``
METRICS_SOURCES: web.AppKey[list[Callable[[], str]]] = web.AppKey("metrics_sources")
