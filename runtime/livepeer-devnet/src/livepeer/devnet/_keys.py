"""Throwaway Ethereum keys (EIP-191 signatures as go-livepeer makes them) and self-signed TLS certificates.

``key = EthKey.generate(); key.sign_hash_of(key.address)`` is exactly what a remote signer returns from
``/sign-orchestrator-info`` (PROTOCOL.md §5.1): personal_sign over the 32-byte keccak256 of the text.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass

from livepeer.runner.hosting import TLSFiles

__all__ = [
    "EthKey",
    "TempCert",
    "recover_hash_signer",
    "recover_message_signer",
    "self_signed_cert",
]

# secp256k1 group order; go-livepeer (like geth) rejects "high-s" signatures.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def keccak(data: bytes) -> bytes:
    from eth_utils.crypto import keccak as _keccak

    return bytes(_keccak(data))


@dataclass(frozen=True)
class EthKey:
    """A secp256k1 key; ``address`` is EIP-55 checksummed."""

    private_key: bytes
    address: str

    @classmethod
    def generate(cls) -> EthKey:
        from eth_account import Account

        account = Account.create()
        return cls(private_key=bytes(account.key), address=str(account.address))

    @property
    def address_bytes(self) -> bytes:
        return bytes.fromhex(self.address[2:])

    def sign_hash_of(self, data: str | bytes) -> bytes:
        """65-byte ``r||s||v`` (v in 27/28): personal_sign of keccak256(data), go-livepeer's ``Sign``."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        raw = data.encode() if isinstance(data, str) else data
        signed = Account.sign_message(encode_defunct(primitive=keccak(raw)), self.private_key)
        return bytes(signed.signature)

    def sign_raw(self, message: bytes) -> bytes:
        """personal_sign of ``message`` as given (no pre-hash)."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        return bytes(
            Account.sign_message(encode_defunct(primitive=message), self.private_key).signature
        )


def recover_hash_signer(data: str | bytes, signature: bytes) -> str | None:
    """EIP-55 address that personal-signed keccak256(``data``), or None if the signature is invalid."""
    raw = data.encode() if isinstance(data, str) else data
    return recover_message_signer(keccak(raw), signature)


def recover_message_signer(message: bytes, signature: bytes) -> str | None:
    """EIP-55 address whose personal_sign of ``message`` (as given) is ``signature``, or None.

    Accepts exactly what go-livepeer's ``crypto.VerifySig`` accepts (crypto/verify.go:28-55 at 176aa415):
    65 bytes, s at most half the group order, v 27 or 28 (0/1 are refused there, so here too).
    """
    if len(signature) != 65:
        return None
    if signature[64] not in (27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if s > _SECP256K1_N // 2:
        return None
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        return str(Account.recover_message(encode_defunct(primitive=message), signature=signature))
    except Exception:  # eth-keys raises several types for malformed signatures
        return None


@dataclass(frozen=True)
class TempCert:
    """PEM files on disk for one listener; ``remove()`` deletes them."""

    files: TLSFiles
    cert_pem: bytes

    def remove(self) -> None:
        for path in (self.files.certfile, self.files.keyfile):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def self_signed_cert(host: str = "localhost") -> TempCert:
    """A fresh ECDSA P-256 certificate (SAN DNS ``localhost`` + IP 127.0.0.1), like go-livepeer's cert.go."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [x509.DNSName(host)]
    if host != "localhost":
        sans.append(x509.DNSName("localhost"))
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_fd, cert_path = tempfile.mkstemp(prefix="lp-devnet-", suffix=".crt")
    key_fd, key_path = tempfile.mkstemp(prefix="lp-devnet-", suffix=".key")
    with os.fdopen(cert_fd, "wb") as f:
        f.write(cert_pem)
    with os.fdopen(key_fd, "wb") as f:
        f.write(key_pem)
    return TempCert(files=TLSFiles(certfile=cert_path, keyfile=key_path), cert_pem=cert_pem)
