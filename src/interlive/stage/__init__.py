"""The stage: rooms, roles, raise hand and promotion (连麦), active speaker, signaling.

Pure cores only: :mod:`.room` (the authoritative room state machine),
:mod:`.speaker` (active-speaker detection from RFC 6464 audio levels),
:mod:`.signaling` (the WebSocket JSON schema), :mod:`.negotiation` (the
server's offer/answer state on a peer connection, with glare) and
:mod:`.quality` (connection quality from loss and RTT).  The WebSocket endpoint, REST and
the SFU apply their outputs.
"""
