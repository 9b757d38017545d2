"""DTLS-SRTP endpoint (RFC 5764, RFC 8827 §6.5), sans-IO over OpenSSL memory BIOs.

OpenSSL runs the handshake; this class only moves bytes. ``receive`` feeds a
datagram, ``datagrams_to_send`` drains what OpenSSL wrote, ``get_timer`` and
``handle_timer`` drive retransmission. Once the handshake completes and the
peer's certificate matches a fingerprint from its SDP, ``srtp_keys`` holds the
exported keying material split per RFC 5764 §4.2.

OpenSSL writes whole records into the memory BIO but a read may cut across
them, so the drained bytes are split on record boundaries and packed into
datagrams no larger than ``MAX_DATAGRAM``.

One impurity: OpenSSL times DTLS retransmissions on its own wall clock, so
``handle_timer`` retransmits only once real time has passed; ``now`` serves
the caller's scheduling (``get_timer``) and nothing else.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import struct
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

MAX_DATAGRAM = 1200
_RECORD_HEADER = 13

_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    name: str  # as in the use_srtp extension and pylibsrtp
    openssl_name: bytes
    key_length: int
    salt_length: int


AEAD_AES_128_GCM = SrtpProfile("AEAD_AES_128_GCM", b"SRTP_AEAD_AES_128_GCM", 16, 12)
AES128_CM_SHA1_80 = SrtpProfile("AES128_CM_SHA1_80", b"SRTP_AES128_CM_SHA1_80", 16, 14)
#: in preference order: GCM is cheaper here and authenticates with the cipher.
SRTP_PROFILES = (AEAD_AES_128_GCM, AES128_CM_SHA1_80)


class DtlsError(Exception):
    pass


class Certificate:
    """A self-signed ECDSA P-256 certificate, as WebRTC endpoints use."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def generate(cls, days: int = 30) -> Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, os.urandom(8).hex())])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        return certificate_fingerprint(self.cert, algorithm)

    def make_context(self, profiles: tuple[SrtpProfile, ...] = SRTP_PROFILES) -> SSL.Context:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_options(SSL.OP_NO_TICKET)
        # The peer is authenticated by its SDP fingerprint, not by a CA.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        ctx.use_certificate(self.cert)
        ctx.use_privatekey(self.key)
        ctx.set_cipher_list(
            b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
            b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
            b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA"
        )
        ctx.set_tlsext_use_srtp(b":".join(p.openssl_name for p in profiles))
        return ctx


#: FFmpeg's WHIP muxer (8.x) signs with a self-generated P-224 key, a curve the
#: OpenSSL bundled with cryptography (4.x) refuses in every role: it cannot be
#: allowed from here, so the failure says what to do.
WRONG_CURVE_HINT = (
    " (the peer's certificate uses an elliptic curve OpenSSL refuses, such as the P-224 key"
    " FFmpeg's whip muxer generates: give FFmpeg a P-256 certificate with"
    " -cert_file/-key_file; see docs/whip-whep.md)"
)


def certificate_fingerprint(cert: x509.Certificate, algorithm: str) -> str:
    digest = cert.fingerprint(_DIGESTS[algorithm]).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    profile: SrtpProfile
    #: key + salt for what we send, and for what we receive
    local: bytes
    remote: bytes


class DtlsState(Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


def split_records(data: bytes) -> list[bytes]:
    """Split a byte run into DTLS records (RFC 6347 §4.1), raising DtlsError if truncated."""
    records = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < _RECORD_HEADER:
            raise DtlsError("truncated DTLS record header")
        (length,) = struct.unpack_from("!H", data, pos + 11)
        end = pos + _RECORD_HEADER + length
        if end > len(data):
            raise DtlsError("truncated DTLS record")
        records.append(data[pos:end])
        pos = end
    return records


def pack_datagrams(records: list[bytes], limit: int = MAX_DATAGRAM) -> list[bytes]:
    datagrams: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > limit:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams


class DtlsEndpoint:
    """One DTLS association, server ("passive") or client ("active") role."""

    def __init__(
        self,
        context: SSL.Context,
        *,
        is_server: bool,
        remote_fingerprints: list[tuple[str, str]],
    ) -> None:
        self.is_server = is_server
        self.state = DtlsState.NEW
        self.srtp_keys: SrtpKeys | None = None
        self.failure: str | None = None
        self._remote_fingerprints = [
            (alg.lower(), value.upper()) for alg, value in remote_fingerprints
        ]
        self._ssl = SSL.Connection(context, None)
        if is_server:
            self._ssl.set_accept_state()
        else:
            self._ssl.set_connect_state()
        self._outgoing: list[bytes] = []
        self._timer_base: float | None = None
        self._timeout: float | None = None

    # --- input -----------------------------------------------------------
    def start(self, now: float) -> None:
        """Begin the handshake (sends ClientHello in the client role)."""
        if self.state is DtlsState.NEW:
            self.state = DtlsState.CONNECTING
            self._step(now)

    def receive(self, data: bytes, now: float) -> None:
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return
        if self.state is DtlsState.NEW:
            self.state = DtlsState.CONNECTING
        try:
            self._ssl.bio_write(data)
        except SSL.Error as exc:
            self._fail(f"DTLS input rejected: {exc}")
            return
        self._step(now)

    def handle_timer(self, now: float) -> None:
        if self.state is not DtlsState.CONNECTING or self._timeout is None:
            return
        if self._timer_base is not None and now >= self._timer_base + self._timeout:
            try:
                self._ssl.DTLSv1_handle_timeout()
            except SSL.Error as exc:
                self._fail(f"DTLS retransmission failed: {exc}")
                return
            self._drain()
            self._arm(now)

    def close(self) -> None:
        if self.state is DtlsState.CONNECTED:
            with contextlib.suppress(SSL.Error):
                self._ssl.shutdown()
            self._drain()
        self.state = DtlsState.CLOSED

    # --- output ----------------------------------------------------------
    def datagrams_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        if self.state is not DtlsState.CONNECTING or self._timeout is None:
            return None
        assert self._timer_base is not None
        return self._timer_base + self._timeout

    # --- internals ---------------------------------------------------------
    def _step(self, now: float) -> None:
        if self.state is DtlsState.CONNECTING:
            try:
                self._ssl.do_handshake()
            except SSL.WantReadError:
                self._drain()
                self._arm(now)
                return
            except SSL.Error as exc:
                self._drain()  # the alert, if OpenSSL wrote one
                reason = _describe(exc)
                hint = WRONG_CURVE_HINT if "wrong curve" in reason else ""
                self._fail(f"DTLS handshake failed: {reason}{hint}")
                return
            self._drain()
            self._on_handshake_done()
        elif self.state is DtlsState.CONNECTED:
            # Post-handshake records: alerts (close_notify) or retransmitted flights.
            try:
                self._ssl.recv(1500)
            except SSL.ZeroReturnError:
                self.state = DtlsState.CLOSED
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                self._fail(f"DTLS error after handshake: {_describe(exc)}")
            self._drain()

    def _arm(self, now: float) -> None:
        timeout = self._ssl.DTLSv1_get_timeout()
        self._timeout = timeout
        self._timer_base = now if timeout is not None else None

    def _drain(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self._ssl.bio_read(65536)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            pending += chunk
        if pending:
            self._outgoing.extend(pack_datagrams(split_records(pending)))

    def _on_handshake_done(self) -> None:
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        if cert is None:
            self._fail("peer sent no certificate")
            return
        checked = 0
        for algorithm, value in self._remote_fingerprints:
            if algorithm in _DIGESTS:
                checked += 1
                if certificate_fingerprint(cert, algorithm) != value:
                    self._fail(f"peer certificate does not match its {algorithm} fingerprint")
                    return
        if not checked:
            self._fail("no supported fingerprint algorithm in the remote description")
            return
        selected = self._ssl.get_selected_srtp_profile()
        profile = next((p for p in SRTP_PROFILES if p.openssl_name == selected), None)
        if profile is None:
            self._fail("no SRTP protection profile negotiated")
            return
        material = self._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
        )
        k, s = profile.key_length, profile.salt_length
        client_key = material[0:k] + material[2 * k : 2 * k + s]
        server_key = material[k : 2 * k] + material[2 * k + s : 2 * k + 2 * s]
        if self.is_server:
            self.srtp_keys = SrtpKeys(profile, local=server_key, remote=client_key)
        else:
            self.srtp_keys = SrtpKeys(profile, local=client_key, remote=server_key)
        self.state = DtlsState.CONNECTED
        self._timeout = None

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self.failure = reason


def _describe(exc: SSL.Error) -> str:
    parts = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and len(item) == 3:
            parts.append(str(item[2]))
    return ", ".join(parts) or repr(exc)
