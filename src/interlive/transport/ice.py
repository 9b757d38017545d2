"""ICE-lite responder (RFC 8445 §2.5, RFC 8489 STUN, RFC 7675 consent freshness).

The server never sends connectivity checks: it answers the browser's Binding
requests, learns the browser's address from them, and treats an address as
selected once a request carrying USE-CANDIDATE arrives (the controlling agent
nominates). Consent is fresh while authenticated requests keep arriving; a
peer that stays silent for ``consent_timeout`` seconds is gone.

Sans-IO: ``handle_request`` takes a datagram, the source address and ``now``
and returns the response bytes plus what happened. STUN wire encoding is
aioice's (a small, well-tested codec); everything else is here.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from enum import Enum

from aioice import stun

Address = tuple[str, int]

CONSENT_TIMEOUT = 30.0
_ALPHABET = string.ascii_letters + string.digits


def random_ice_string(length: int) -> str:
    """An ICE ufrag (>= 4 chars) or password (>= 22 chars), RFC 8839 §5.4."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class StunError(ValueError):
    """A datagram that looked like STUN but is not a usable Binding request."""


def stun_username(data: bytes) -> str | None:
    """The USERNAME of a STUN message, or None: used to route before any session is known."""
    try:
        message = stun.parse_message(data)
    except Exception:  # aioice raises ValueError, struct.error, UnicodeDecodeError
        return None
    username = message.attributes.get("USERNAME")
    return username if isinstance(username, str) else None


class IceEvent(Enum):
    NONE = "none"
    #: first authenticated request from a new address
    NEW_ADDRESS = "new-address"
    #: the controlling peer nominated this address (USE-CANDIDATE)
    NOMINATED = "nominated"


@dataclass(frozen=True, slots=True)
class IceResult:
    response: bytes
    event: IceEvent


class IceLiteResponder:
    """Answers one peer's connectivity checks for one set of local credentials."""

    def __init__(self, local_ufrag: str, local_pwd: str, remote_ufrag: str | None = None) -> None:
        self.local_ufrag = local_ufrag
        self.local_pwd = local_pwd
        self.remote_ufrag = remote_ufrag
        self._key = local_pwd.encode()
        self.selected: Address | None = None
        self.addresses: set[Address] = set()
        self.last_consent: float | None = None

    def restart(self, local_ufrag: str, local_pwd: str, remote_ufrag: str | None) -> None:
        """ICE restart (RFC 8445 §9): new credentials; media keeps its path until re-nominated."""
        self.local_ufrag = local_ufrag
        self.local_pwd = local_pwd
        self.remote_ufrag = remote_ufrag
        self._key = local_pwd.encode()

    def handle_request(self, data: bytes, addr: Address, now: float) -> IceResult:
        try:
            message = stun.parse_message(data)
        except Exception as exc:  # aioice raises several exception types on garbage
            raise StunError(f"malformed STUN: {exc}") from exc
        if message.message_class != stun.Class.REQUEST:
            raise StunError("not a STUN request")
        if message.message_method != stun.Method.BINDING:
            raise StunError(f"unsupported STUN method {message.message_method}")
        username = message.attributes.get("USERNAME")
        if not isinstance(username, str) or ":" not in username:
            raise StunError("Binding request without USERNAME")
        local, _, remote = username.partition(":")
        if local != self.local_ufrag:
            raise StunError("USERNAME does not name this session")
        if self.remote_ufrag is not None and remote != self.remote_ufrag:
            raise StunError("USERNAME remote fragment does not match the offer")
        if not message.check_message_integrity(self._key):
            raise StunError("bad MESSAGE-INTEGRITY")
        if "ICE-CONTROLLED" in message.attributes:
            # We are lite, so the peer must be controlling (RFC 8445 §6.1.1).
            raise StunError("peer claims the controlled role against an ICE-lite agent")

        event = IceEvent.NONE
        if addr not in self.addresses:
            self.addresses.add(addr)
            event = IceEvent.NEW_ADDRESS
        if "USE-CANDIDATE" in message.attributes and self.selected != addr:
            self.selected = addr
            event = IceEvent.NOMINATED
        if addr == self.selected or self.selected is None:
            self.last_consent = now

        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = addr
        response.add_message_integrity(self._key)
        return IceResult(bytes(response), event)

    def consent_expired(self, now: float, timeout: float = CONSENT_TIMEOUT) -> bool:
        return self.last_consent is not None and now - self.last_consent > timeout
