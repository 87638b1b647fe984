"""TLS material of the local cluster profile: a certificate authority of its own and one
certificate per server, made with `cryptography` into STATE_DIR (never committed).

Kafka (4.1) and PostgreSQL read PEM files directly, so no Java keystore is needed. Keys are EC
P-256, which every client involved (Java, librdkafka's OpenSSL, libpq) accepts. Certificates
name localhost, 127.0.0.1 and ::1, so clients verify the host name as they would in production.
A certificate is made again when it is missing, near its end, or not signed by the current CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS: Final = 3650
LEAF_DAYS: Final = 825
# A certificate this close to its end is made again at the next `platform up`.
RENEW_BEFORE: Final = dt.timedelta(days=30)
LOCAL_HOSTS: Final = ("localhost",)
LOCAL_IPS: Final = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class KeyPair:
    """A certificate (PEM, chain up to the CA excluded) and its unencrypted PKCS#8 key (PEM)."""

    certificate: Path
    key: Path


class LocalCA:
    """A certificate authority whose files live in one folder (the key readable by us only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.certificate = folder / "ca.crt"
        self.key = folder / "ca.key"

    def ensure(self) -> None:
        """Create the CA once; later calls reuse it, so issued certificates stay valid."""
        if self.certificate.exists() and self.key.exists() and not _ending(self.certificate):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weatherpipe local CA")])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.key, _pem_key(key))
        self.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, common_name: str) -> KeyPair:
        """The key pair `name` (files `<name>.crt`, `<name>.key`) for a server that is also a
        client (Kafka nodes talk to each other): subject CN=`common_name`, the local host names
        as subject alternative names. Made only when missing, ending, or from another CA."""
        pair = KeyPair(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        if pair.certificate.exists() and pair.key.exists() and self._signed_by_us(pair):
            return pair
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self.key} is not the EC key this module writes")
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in LOCAL_HOSTS]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOCAL_IPS]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(pair.key, _pem_key(key))
        pair.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def _signed_by_us(self, pair: KeyPair) -> bool:
        if _ending(pair.certificate):
            return False
        cert = x509.load_pem_x509_certificate(pair.certificate.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ending(certificate: Path) -> bool:
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    return cert.not_valid_after_utc - RENEW_BEFORE < _now()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (created with mode 600, never wider)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
