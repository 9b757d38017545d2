"""Media formats between RTMP/FLV and RTP: H.264 RTP payloads, FLV tags, codec configs.

Every module here is sans-IO: it takes bytes and returns bytes, values and
counters.  The RTMP ingest and the HTTP-FLV/RTMP players drive them.

* :mod:`interlive.media.h264_rtp`: RFC 6184 packetizer/depacketizer and
  Annex B / AVCC NAL unit framing;
* :mod:`interlive.media.flv`: FLV file header, tags, VIDEODATA/AUDIODATA and
  a live :class:`~interlive.media.flv.FlvMuxer` (FLV spec v10.1, Annex E);
* :mod:`interlive.media.avc`: AVCDecoderConfigurationRecord, SPS fields and
  AAC AudioSpecificConfig.
"""

from __future__ import annotations

from .errors import MediaFormatError

__all__ = ["MediaFormatError"]
