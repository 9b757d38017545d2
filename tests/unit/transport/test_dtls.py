from __future__ import annotations

import time

import pytest

from interlive.transport.dtls import (
    AES128_CM_SHA1_80,
    Certificate,
    DtlsEndpoint,
    DtlsError,
    DtlsState,
    pack_datagrams,
    split_records,
)
from interlive.transport.srtp import SrtpContext, SrtpError


def _pair(
    server_profiles: tuple = (), fingerprint_ok: bool = True
) -> tuple[DtlsEndpoint, DtlsEndpoint]:
    a, b = Certificate.generate(), Certificate.generate()
    server_fp = b.fingerprint() if fingerprint_ok else Certificate.generate().fingerprint()
    ctx = a.make_context(server_profiles) if server_profiles else a.make_context()
    server = DtlsEndpoint(ctx, is_server=True, remote_fingerprints=[("sha-256", server_fp)])
    client = DtlsEndpoint(
        b.make_context(), is_server=False, remote_fingerprints=[("sha-256", a.fingerprint())]
    )
    return server, client


def _run(
    server: DtlsEndpoint, client: DtlsEndpoint, drop_first_server_flight: bool = False
) -> None:
    client.start(0.0)
    now = 0.0
    dropped = False
    for _ in range(20):
        for d in client.datagrams_to_send():
            server.receive(d, now)
        out = server.datagrams_to_send()
        if drop_first_server_flight and out and not dropped:
            dropped = True
            out = []
        for d in out:
            client.receive(d, now)
        now += 0.5
        for ep in (server, client):
            t = ep.get_timer()
            if t is not None and now >= t:
                ep.handle_timer(now)


def test_handshake_exports_matching_keys_and_prefers_gcm() -> None:
    server, client = _pair()
    _run(server, client)
    assert server.state is DtlsState.CONNECTED and client.state is DtlsState.CONNECTED
    assert server.srtp_keys is not None and client.srtp_keys is not None
    assert server.srtp_keys.profile.name == "AEAD_AES_128_GCM"
    assert server.srtp_keys.local == client.srtp_keys.remote
    assert server.srtp_keys.remote == client.srtp_keys.local
    rtp = bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5]) + b"payload"
    s, c = SrtpContext(server.srtp_keys), SrtpContext(client.srtp_keys)
    assert c.unprotect_rtp(s.protect_rtp(rtp)) == rtp
    with pytest.raises(SrtpError):
        c.unprotect_rtp(s.protect_rtp(rtp)[:-1] + b"\x00")


def test_aes_cm_accepted() -> None:
    server, client = _pair(server_profiles=(AES128_CM_SHA1_80,))
    _run(server, client)
    assert server.srtp_keys is not None and server.srtp_keys.profile.name == "AES128_CM_SHA1_80"


def test_lost_flight_is_retransmitted_on_timer() -> None:
    # OpenSSL runs DTLS retransmission timers on its own wall clock (see dtls.py),
    # so this test steps in real time, bounded by a deadline.
    server, client = _pair()
    client.start(time.monotonic())
    for d in client.datagrams_to_send():
        server.receive(d, time.monotonic())
    lost = server.datagrams_to_send()  # the server's first flight never arrives
    assert lost and server.get_timer() is not None
    deadline = time.monotonic() + 5.0
    while client.state is not DtlsState.CONNECTED and time.monotonic() < deadline:
        now = time.monotonic()
        for ep in (server, client):
            t = ep.get_timer()
            if t is not None and now >= t:
                ep.handle_timer(now)
        for d in client.datagrams_to_send():
            server.receive(d, now)
        for d in server.datagrams_to_send():
            client.receive(d, now)
        time.sleep(0.05)
    assert server.state is DtlsState.CONNECTED and client.state is DtlsState.CONNECTED


def test_fingerprint_mismatch_fails() -> None:
    server, client = _pair(fingerprint_ok=False)
    _run(server, client)
    assert server.state is DtlsState.FAILED
    assert server.failure is not None and "fingerprint" in server.failure
    assert server.srtp_keys is None


def test_garbage_fails_cleanly() -> None:
    server, _ = _pair()
    server.receive(b"\x16\xfe\xfd" + b"\x00" * 40, 0.0)
    server.receive(b"\x17" * 5, 0.0)
    assert server.state in (DtlsState.FAILED, DtlsState.CONNECTING)
    assert server.srtp_keys is None


def test_record_splitting_and_packing() -> None:
    rec = lambda n: b"\x16\xfe\xfd" + b"\x00" * 8 + n.to_bytes(2, "big") + b"x" * n  # noqa: E731
    records = [rec(500), rec(600), rec(100)]
    assert split_records(b"".join(records)) == records
    assert pack_datagrams(records, limit=1200) == [records[0] + records[1], records[2]]
    with pytest.raises(DtlsError):
        split_records(rec(10)[:-1])
