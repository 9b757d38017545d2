from __future__ import annotations

import pytest
from aioice import stun

from interlive.transport.ice import IceEvent, IceLiteResponder, StunError, stun_username

ADDR = ("192.0.2.2", 5000)


def _request(
    username: str, pwd: str, *, use_candidate: bool = False, controlled: bool = False
) -> bytes:
    m = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    m.attributes["USERNAME"] = username
    m.attributes["PRIORITY"] = 1
    if controlled:
        m.attributes["ICE-CONTROLLED"] = 1
    else:
        m.attributes["ICE-CONTROLLING"] = 1
    if use_candidate:
        m.attributes["USE-CANDIDATE"] = None
    m.add_message_integrity(pwd.encode())
    return bytes(m)


def test_answers_and_nominates() -> None:
    ice = IceLiteResponder("srv1", "serverpassword0123456789", "cli1")
    r = ice.handle_request(_request("srv1:cli1", "serverpassword0123456789"), ADDR, 1.0)
    assert r.event is IceEvent.NEW_ADDRESS and ice.selected is None
    response = stun.parse_message(r.response)
    assert response.message_class == stun.Class.RESPONSE
    assert response.attributes["XOR-MAPPED-ADDRESS"] == ADDR
    assert "FINGERPRINT" in response.attributes
    assert response.check_message_integrity(b"serverpassword0123456789")
    r = ice.handle_request(
        _request("srv1:cli1", "serverpassword0123456789", use_candidate=True), ADDR, 2.0
    )
    assert r.event is IceEvent.NOMINATED and ice.selected == ADDR
    assert not ice.consent_expired(31.0) and ice.consent_expired(32.1)


@pytest.mark.parametrize(
    "data",
    [
        _request("srv1:cli1", "wrong-password-xxxxxxxxxx"),
        _request("other:cli1", "serverpassword0123456789"),
        _request("srv1:intruder", "serverpassword0123456789"),
        _request("srv1:cli1", "serverpassword0123456789", controlled=True),
        b"\x00\x01\x00\x00garbage",
        b"",
    ],
)
def test_rejects(data: bytes) -> None:
    ice = IceLiteResponder("srv1", "serverpassword0123456789", "cli1")
    with pytest.raises(StunError):
        ice.handle_request(data, ADDR, 0.0)
    assert ice.addresses == set()


def test_username_for_routing() -> None:
    assert stun_username(_request("srv1:cli1", "p" * 22)) == "srv1:cli1"
    assert stun_username(b"\x00\x01junk") is None


def test_restart_switches_credentials() -> None:
    ice = IceLiteResponder("srv1", "serverpassword0123456789", "cli1")
    ice.restart("srv2", "anotherpassword012345678", "cli2")
    with pytest.raises(StunError):
        ice.handle_request(_request("srv1:cli1", "serverpassword0123456789"), ADDR, 0.0)
    ice.handle_request(_request("srv2:cli2", "anotherpassword012345678"), ADDR, 0.0)
