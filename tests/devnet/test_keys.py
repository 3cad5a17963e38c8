"""Keys and certificates: go-livepeer's signature scheme (§5.1) and the self-signed orchestrator certificate (§4)."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from livepeer.devnet._keys import _SECP256K1_N, EthKey, recover_hash_signer, self_signed_cert


def test_signature_round_trip_and_eip55_sensitivity() -> None:
    key = EthKey.generate()
    sig = key.sign_hash_of(key.address)
    assert len(sig) == 65
    assert sig[64] in (27, 28)
    assert recover_hash_signer(key.address, sig) == key.address
    assert recover_hash_signer(key.address.lower(), sig) != key.address


def test_high_s_and_bad_v_are_rejected() -> None:
    key = EthKey.generate()
    sig = key.sign_hash_of("{}")
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high = r + (_SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # same point, high s
    assert recover_hash_signer("{}", high) is None
    assert recover_hash_signer("{}", sig[:64] + bytes([30])) is None
    assert recover_hash_signer("{}", sig[:64]) is None
    # go's ecrecover: "signature v value must be 27 or 28" (crypto/verify.go:38-41 at 176aa415).
    assert recover_hash_signer("{}", sig[:64] + bytes([v - 27])) is None


def test_certificate_is_p256_with_localhost_and_loopback_sans_and_fresh_each_time() -> None:
    first, second = self_signed_cert(), self_signed_cert()
    try:
        cert = x509.load_pem_x509_certificate(first.cert_pem)
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
        assert first.cert_pem != second.cert_pem
    finally:
        first.remove()
        second.remove()
