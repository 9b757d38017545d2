"""Who may make the next offer on a participant's peer connection: the server's side.

Both ends of a signaling (``/ws``) peer connection make offers: the client when
it adds or removes its own tracks (or restarts ICE), the server when stage
tracks appear and go.  :class:`Negotiation` is the server's offer/answer state
for one connection (JSEP's signaling states, RFC 8829/9429 §4.1.8, seen from
the server), sans-IO: the adapter asks it before each step and tells it what
happened.

Theory of operation
-------------------
*States.*  ``stable`` (no offer outstanding) or ``have-local-offer`` (the server
sent offer :attr:`Negotiation.outstanding` and waits for the answer that names
it).  The server makes at most one offer at a time; a wish to renegotiate while
one is outstanding is remembered (:attr:`Negotiation.needed`) and acted on once
the connection is stable again.

*Glare.*  The client's offer always wins: the server is the *polite* peer of
the W3C "perfect negotiation" pattern.  If a client offer arrives while the
server's is outstanding, the server rolls its own back (the media worker drops
the proposal; nothing of it was applied), answers the client, and offers again
afterwards if still needed.  The client, the impolite peer, ignores a server
offer that reaches it while its own offer is outstanding; an ``answer`` naming
an offer that is no longer outstanding is refused and changes nothing.

*Resets.*  A resumed connection starts stable with a renegotiation pending: the
client may have missed the last offer.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Negotiation", "SignalingState"]


class SignalingState(StrEnum):
    STABLE = "stable"
    HAVE_LOCAL_OFFER = "have-local-offer"


class Negotiation:
    """The server side of one peer connection's offers.  See the module docstring."""

    def __init__(self, prefix: str = "srv-") -> None:
        self.state = SignalingState.STABLE
        #: the id of the server's offer awaiting an answer
        self.outstanding: str | None = None
        #: a renegotiation is wanted once the connection is stable
        self.needed = False
        self._prefix = prefix
        self._count = 0

    def want_offer(self) -> bool:
        """The server wants to renegotiate: True if it may make its offer now."""
        self.needed = True
        return self.state is SignalingState.STABLE

    def offer_made(self) -> str:
        """The server is sending an offer: its id, for the client's answer to name."""
        if self.state is not SignalingState.STABLE:
            raise RuntimeError("an offer is already outstanding")
        self._count += 1
        self.outstanding = f"{self._prefix}{self._count}"
        self.state = SignalingState.HAVE_LOCAL_OFFER
        self.needed = False
        return self.outstanding

    def nothing_to_offer(self) -> None:
        """The server looked and found nothing to change."""
        self.needed = False

    def client_offer(self) -> bool:
        """A client offer arrived; True if it crossed the server's (roll the server's back)."""
        if self.state is SignalingState.STABLE:
            return False
        self.state = SignalingState.STABLE
        self.outstanding = None
        self.needed = True
        return True

    def answer(self, offer_id: object) -> bool:
        """A client answer naming ``offer_id``: True if it answers the outstanding offer."""
        if self.state is not SignalingState.HAVE_LOCAL_OFFER or offer_id != self.outstanding:
            return False
        self.state = SignalingState.STABLE
        self.outstanding = None
        return True

    def abandon(self) -> None:
        """The outstanding offer failed (the worker refused the answer): start over later."""
        self.state = SignalingState.STABLE
        self.outstanding = None
        self.needed = True

    def reset(self) -> None:
        """A resumed connection: stable, and renegotiate to be sure the client is up to date."""
        self.abandon()

    @property
    def offer_due(self) -> bool:
        """Stable with a renegotiation wanted: the adapter should make an offer now."""
        return self.state is SignalingState.STABLE and self.needed
