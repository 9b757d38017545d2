"""``interlive serve``: start the media workers and the HTTP control plane."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from interlive.auth import resolve_secret
from interlive.config import ServerConfig
from interlive.server.app import create_app
from interlive.server.keys import METRICS_SOURCES, PLANE
from interlive.server.playback import PlaybackHub
from interlive.server.playback import register_routes as register_playback
from interlive.server.rtmp_edge import RtmpEdge
from interlive.server.webhooks import check_url
from interlive.server.workers import WorkerPool

log = logging.getLogger("interlive")


async def serve(config: ServerConfig) -> None:
    for url in config.webhooks:  # before any worker starts: a typo is a clear error
        try:
            check_url(url)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
    secret, source = resolve_secret(config.secret, config.data_dir, create=True)
    pool = WorkerPool(config)
    try:
        await pool.start()
    except (RuntimeError, TimeoutError):
        await pool.stop()
        raise
    app = create_app(config, pool, secret)
    playback = PlaybackHub(app[PLANE])
    register_playback(app, playback)
    rtmp = RtmpEdge(config, app[PLANE], playback=playback) if config.rtmp_port else None
    metrics_sources = app.setdefault(METRICS_SOURCES, [])
    metrics_sources.append(playback.render_metrics)
    if rtmp is not None:
        metrics_sources.append(rtmp.render_metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.http_port)
    await site.start()
    ports = ", ".join(str(w.port) for w in pool.workers)
    log.info("secret: %s", source)
    log.info(
        "media: %d worker(s), UDP port(s) %s, announcing %s",
        len(pool.workers),
        ports,
        config.candidate_ip(),
    )
    log.info(
        "listening on http://%s:%d (WHIP: POST /whip/{room}, WHEP: POST /whep/{room})",
        config.host,
        config.http_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if rtmp is not None:
            await rtmp.start()
            log.info(
                "RTMP ingest on rtmp://%s:%d/live/{room}/{identity}?token=...",
                config.host,
                rtmp.port,
            )
        await stop.wait()
    finally:
        log.info("shutting down")
        if rtmp is not None:
            await rtmp.stop()
        await playback.stop()
        await runner.cleanup()
        await pool.stop()
