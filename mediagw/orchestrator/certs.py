"""The orchestrator's TLS certificate, generated at every start (transcode spec §2.1).

As go-livepeer's ``server/cert.go``: ECDSA P-256, self-signed, CA, key usage CertSign +
DigitalSignature, ExtKeyUsage ServerAuth, valid 8765 hours, empty subject, one DNS SAN = the
service host, even when it is an IP address (so "127.0.0.1" is a DNS name, not an IP SAN).

notBefore is backdated by ``CLOCK_SKEW``: a certificate valid only from its creation instant
(as this one was until a CI run failed on it) is "not yet valid" to a peer whose clock runs even
a second behind, or after a clock step. notAfter stays 8765 hours after creation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = ["CERT_VALIDITY", "CLOCK_SKEW", "Certificate", "generate_certificate"]

CERT_VALIDITY = datetime.timedelta(hours=8765)
CLOCK_SKEW = datetime.timedelta(hours=1)  # as public CAs backdate


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path
    cert_pem: bytes
    dns_names: tuple[str, ...]


def generate_certificate(host: str, work_dir: Path, now: float) -> Certificate:
    """Write ``cert.pem`` / ``key.pem`` into ``work_dir`` (blocking file and CPU work)."""
    names = (host,)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([])
    created = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(created - CLOCK_SKEW)
        .not_valid_after(created + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(  # critical because the subject is empty (RFC 5280, as Go does)
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path, key_path = work_dir / "cert.pem", work_dir / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    return Certificate(cert_path, key_path, cert_pem, names)
