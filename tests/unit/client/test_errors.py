"""ClientError parsing of the server's JSON error body and of foreign bodies."""

from __future__ import annotations

import json

import pytest

from interlive.client import ClientError, ProtocolError


def test_json_error_body_gives_code_and_message() -> None:
    body = json.dumps({"error": {"code": "unauthorized", "message": "token expired"}})
    error = ClientError.from_response(401, body.encode(), "application/json")
    assert (error.status, error.code, error.message) == (401, "unauthorized", "token expired")
    assert "401" in str(error)
    assert "unauthorized" in str(error)


def test_json_is_read_whatever_the_content_type() -> None:
    body = b'{"error": {"code": "room_not_found", "message": "no room x"}}'
    error = ClientError.from_response(404, body, "text/plain")
    assert (error.code, error.message) == ("room_not_found", "no room x")


def test_missing_message_is_empty() -> None:
    error = ClientError.from_response(409, b'{"error": {"code": "conflict"}}')
    assert (error.code, error.message) == ("conflict", "")


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Bad Gateway</body></html>",
        b'{"error": "a string, not an object"}',
        b'{"error": {"code": 7, "message": "code is not a string"}}',
        b"[1, 2, 3]",
        b"\xff\xfe not utf-8",
    ],
)
def test_other_bodies_fall_back_to_http_status_code(body: bytes) -> None:
    error = ClientError.from_response(502, body, "text/html")
    assert error.status == 502
    assert error.code == "http_502"
    assert error.message


def test_long_text_is_shortened_and_whitespace_collapsed() -> None:
    error = ClientError.from_response(500, "line one\n\n   line two " + "x" * 1000)
    assert error.message.startswith("line one line two x")
    assert len(error.message) <= 200


def test_empty_body_names_the_content_type() -> None:
    error = ClientError.from_response(403, b"", "application/json")
    assert (error.code, error.message) == ("http_403", "application/json")


def test_protocol_error_is_a_client_error() -> None:
    error = ProtocolError(201, "201 Created without a Location header")
    assert isinstance(error, ClientError)
    assert (error.status, error.code) == (201, "protocol_error")
