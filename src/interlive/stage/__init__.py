"""The stage: rooms, roles, raise hand and promotion (连麦), active speaker, signaling.

Pure cores only: :mod:`.room` (the authoritative room state machine),
:mod:`.speaker` (active-speaker detection from RFC 6464 audio levels) and
:mod:`.signaling` (the WebSocket JSON schema).  The WebSocket endpoint, REST and
the SFU apply their outputs.
"""
