"""interlive's Python client SDK: WHIP publishing and WHEP playback on aiortc.

Used by tests, benchmarks and bots. Publish a test pattern to a room, then
subscribe and count the frames that arrive::

    import asyncio
    from interlive.client import TestPatternVideoTrack, WhepSubscriber, WhipPublisher
    from interlive.client import decode_frame_index

    async def main(base: str, host_token: str, viewer_token: str) -> None:
        async with WhipPublisher() as pub, WhepSubscriber(kinds=("video",)) as sub:
            await pub.publish(base, "demo", host_token, audio=None, video=TestPatternVideoTrack())
            await pub.wait_connected(timeout=10)
            await sub.subscribe(base, "demo", viewer_token)
            frames = await sub.recv_frames("video", 30, timeout=10)
            print(len(frames), "frames, last index", decode_frame_index(frames[-1]))

    asyncio.run(main("http://127.0.0.1:8080", HOST_JWT, VIEWER_JWT))

Modules: :mod:`~interlive.client.whip` (sessions), :mod:`~interlive.client.stage`
(a stage participant over WebSocket signaling), :mod:`~interlive.client.media`
(test sources, files, user frames), :mod:`~interlive.client.raw` (RTP packet
taps) and :mod:`~interlive.client.opus_fec` (Opus in-band FEC: the encoder and
decoder put in place of aiortc's), the two adapters over aiortc internals,
:mod:`~interlive.client.errors`.
"""

from .errors import ClientError, ProtocolError
from .media import (
    FileSource,
    FrameSourceTrack,
    MediaFrame,
    TestPatternVideoTrack,
    ToneAudioTrack,
    decode_frame_index,
    render_test_pattern,
    render_tone,
)
from .opus_fec import OpusFecState
from .raw import PacketTap, RtpPacketView, attach_packet_tap
from .stage import StageClient, StageError, ws_url
from .whip import (
    WhepSubscriber,
    WhipPublisher,
    default_configuration,
    video_codec_preferences,
    whep_url,
    whip_url,
)

__all__ = [
    "ClientError",
    "FileSource",
    "FrameSourceTrack",
    "MediaFrame",
    "OpusFecState",
    "PacketTap",
    "ProtocolError",
    "RtpPacketView",
    "StageClient",
    "StageError",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "WhepSubscriber",
    "WhipPublisher",
    "attach_packet_tap",
    "decode_frame_index",
    "default_configuration",
    "render_test_pattern",
    "render_tone",
    "video_codec_preferences",
    "whep_url",
    "whip_url",
    "ws_url",
]
