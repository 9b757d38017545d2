"""Errors raised by the client SDK.

Two kinds, kept apart as h11 keeps local and remote protocol errors apart:

- :class:`ClientError`: the server refused a request. WHIP (RFC 9725 section 4)
  leaves the error body open; interlive's server answers every 4xx/5xx with
  ``{"error": {"code": str, "message": str}}``, which :meth:`ClientError.from_response`
  reads. Other bodies (a proxy's HTML page, plain text) still give a usable error
  whose code is ``http_<status>``.
- :class:`ProtocolError`: the server answered with a success status but broke the
  protocol (a ``201 Created`` without ``Location`` or without an SDP answer).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ClientError", "ProtocolError"]

_MAX_TEXT = 200


class ClientError(Exception):
    """An HTTP request to the WHIP/WHEP endpoint failed.

    ``status`` is the HTTP status, ``code`` the server's machine-readable code
    (``"unauthorized"``, ``"room_not_found"``…), ``message`` its human text.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_response(
        cls, status: int, body: bytes | str, content_type: str | None = None
    ) -> ClientError:
        """Build the error from a response's status and body.

        The JSON shape is tried whatever the ``Content-Type`` says; anything else
        falls back to ``code="http_<status>"`` and the start of the body as message.
        """
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        parsed = _parse_error_json(text)
        if parsed is not None:
            code, message = parsed
            return cls(status, code, message)
        message = " ".join(text.split())[:_MAX_TEXT]
        if not message:
            message = content_type or "empty body"
        return cls(status, f"http_{status}", message)


class ProtocolError(ClientError):
    """The server answered with success but broke RFC 9725 (or the WHEP draft)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "protocol_error", message)


def _parse_error_json(text: str) -> tuple[str, str] | None:
    try:
        document: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    error = document.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    message = error.get("message", "")
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    return code, message
