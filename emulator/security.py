"""TLS material and Azure AD tokens for the emulator.

azure-identity refuses plain-http authorities, so the emulator serves over TLS with a CA it generates
itself. The CA certificate is written to the state directory; point clients at it (`ML_CA_BUNDLE`).
Access tokens are compact JWTs signed with HS256 by a per-process random key: only the emulator
verifies them, and clients treat them as opaque.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_tls(state_dir: Path) -> TlsFiles:
    """Create (once) a local CA and a server certificate for localhost/127.0.0.1."""
    state_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server-key.pem")
    if all(p.exists() for p in (files.ca_cert, files.server_cert, files.server_key)):
        return files
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Studio classic emulator local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.server_key.chmod(0o600)
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return files


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies HS256 access tokens for one emulator process."""

    def __init__(self, issuer_base: str) -> None:
        self._key = secrets.token_bytes(32)
        self.issuer_base = issuer_base

    def issue(self, tenant: str, client_id: str, audience: str, lifetime_s: int = 3600) -> str:
        now = int(time.time())
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "aud": audience,
            "iss": f"{self.issuer_base}/{tenant}/",
            "appid": client_id,
            "tid": tenant,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
        }
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}"

    def verify(self, token: str, audience: str) -> dict[str, Any] | None:
        """Return the claims of a valid, unexpired token for `audience`, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        if claims.get("aud", "").rstrip("/") != audience.rstrip("/") or claims.get("exp", 0) < time.time():
            return None
        return claims


class TokenRejected(Exception):
    """ARM's 401: the bearer token is missing (AuthenticationFailed) or forged, expired or for
    another audience (InvalidAuthenticationToken). Each service renders it in ARM's error shape."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.status = 401
        self.code = code
        self.message = message


def bearer_claims(tokens: TokenIssuer, token: str | None, audience: str, *others: str) -> dict[str, Any]:
    """The claims of a bearer token ARM would accept for `audience` (or one of `others`); TokenRejected otherwise."""
    if not token:
        raise TokenRejected("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    claims = next((c for c in (tokens.verify(token, a) for a in (audience, *others)) if c is not None), None)
    if claims is None:
        raise TokenRejected(
            "InvalidAuthenticationToken", "The access token is invalid, expired, or not for this audience."
        )
    return claims
