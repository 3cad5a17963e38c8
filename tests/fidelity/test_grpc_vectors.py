"""gRPC ``GetOrchestrator`` vectors (go-livepeer server/rpc_test.go, server/rpc.go, server/cert.go at 176aa415).

Run against the devnet's orchestrators on their HTTPS port; the client side is ``livepeer.client``'s
``OrchInfoClient`` (TOFU-pinned grpcio), which is what ``Gateway`` uses.
"""

from __future__ import annotations

import datetime
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from livepeer.client._errors import ConnectionError as ClientConnectionError
from livepeer.client._orchinfo import OrchInfoClient
from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet._grpc import serve_unary
from livepeer.devnet._keys import EthKey
from livepeer.runner.hosting import TLSFiles, hosted


@pytest.fixture
def fid_orchinfo() -> Iterator[OrchInfoClient]:
    client = OrchInfoClient()
    yield client
    client.close()


def _info(client: OrchInfoClient, url: str, request: pb.OrchestratorRequest) -> pb.OrchestratorInfo:
    caps = request.capabilities.SerializeToString() if request.HasField("capabilities") else None
    raw = client.get(url, request.address, request.sig, caps, 10)
    return pb.OrchestratorInfo.FromString(raw)


def _signed(net: Any) -> tuple[bytes, bytes]:
    pair = httpx.post(f"{net.signer}/sign-orchestrator-info", json={}).json()
    return bytes.fromhex(pair["address"][2:]), bytes.fromhex(pair["signature"][2:])


def _lv2v_caps(model: str) -> pb.Capabilities:
    caps = pb.Capabilities()
    caps.constraints.PerCapability[35].models[model].SetInParent()
    return caps


def test_valid_sig_returns_transcoder_ticket_params_price_and_auth_token(
    devnet_onchain: Any, fid_orchinfo: OrchInfoClient
) -> None:
    # go: server/rpc_test.go TestGetOrchestrator_GivenValidSig_ReturnsTranscoderURI,
    # ..._ReturnsOrchTicketParams, ..._ReturnsOrchPriceInfo, ..._ReturnsAuthToken (30 min validity)
    address, sig = _signed(devnet_onchain)
    url = devnet_onchain.orchestrators[0]
    before = time.time()
    info = _info(fid_orchinfo, url, pb.OrchestratorRequest(address=address, sig=sig))
    assert info.transcoder == url
    assert info.HasField("ticket_params")
    assert info.price_info.pricePerUnit > 0
    assert info.auth_token.token
    assert info.auth_token.session_id
    assert before + 30 * 60 - 5 <= info.auth_token.expiration <= time.time() + 30 * 60 + 1


def test_invalid_sig_is_an_error_naming_the_sig(
    devnet_onchain: Any, fid_orchinfo: OrchInfoClient
) -> None:
    # go: server/rpc_test.go TestGetOrchestrator_GivenInvalidSig_ReturnsError (rpc.go:527-531, 679-685)
    key, other = EthKey.generate(), EthKey.generate()
    request = pb.OrchestratorRequest(
        address=key.address_bytes, sig=other.sign_hash_of(other.address)
    )
    with pytest.raises(ClientConnectionError) as err:
        _info(fid_orchinfo, devnet_onchain.orchestrators[0], request)
    assert "Invalid orchestrator request" in str(err.value)
    assert "sig" in str(err.value)


def test_with_caps_no_capabilities_prices_no_hardware(
    devnet_onchain: Any, fid_orchinfo: OrchInfoClient
) -> None:
    # go: server/rpc_test.go TestGetOrchestrator_NoCapabilitiesPrices_NoHardware and
    # TestOrchestratorInfoWithCaps_NonNilEmptyCaps_DoesNotIncludeCapabilitiesPrices
    address, sig = _signed(devnet_onchain)
    url = devnet_onchain.orchestrators[0]
    plain = _info(fid_orchinfo, url, pb.OrchestratorRequest(address=address, sig=sig))
    assert plain.capabilities_prices
    assert plain.hardware
    for caps in (_lv2v_caps("noop"), pb.Capabilities()):
        request = pb.OrchestratorRequest(address=address, sig=sig, ignoreCapacityCheck=True)
        request.capabilities.CopyFrom(caps)
        request.capabilities.SetInParent()  # present even when empty (a non-nil Go pointer)
        info = _raw_get(fid_orchinfo, url, request)
        assert not info.capabilities_prices
        assert not info.hardware


def test_no_live_video_capacity(devnet_factory: Any, fid_orchinfo: OrchInfoClient) -> None:
    # go: server/rpc_test.go TestGetOrchestrator_NoLiveVideoCapacity_WithAndWithoutServiceURI (rpc.go:540-570)
    net = devnet_factory()
    url = net.orchestrators[0]
    unknown = pb.OrchestratorRequest()
    unknown.capabilities.CopyFrom(_lv2v_caps("modelX"))
    with pytest.raises(ClientConnectionError, match="Invalid orchestrator request"):
        # OrchInfoClient always sets ignoreCapacityCheck; send the raw request through grpcio instead.
        _raw_get(fid_orchinfo, url, unknown)
    known = pb.OrchestratorRequest()
    known.capabilities.CopyFrom(_lv2v_caps("noop"))
    assert _raw_get(fid_orchinfo, url, known).transcoder == url
    net.faults(0).update({"no_capacity": True})
    with pytest.raises(ClientConnectionError, match="Invalid orchestrator request"):
        _raw_get(fid_orchinfo, url, known)
    # Without LV2V constraints, or with ignoreCapacityCheck, nothing is checked.
    assert _raw_get(fid_orchinfo, url, pb.OrchestratorRequest()).transcoder == url
    known.ignoreCapacityCheck = True
    assert _raw_get(fid_orchinfo, url, known).transcoder == url


def _raw_get(
    client: OrchInfoClient, url: str, request: pb.OrchestratorRequest
) -> pb.OrchestratorInfo:
    import grpc

    stub = client._channel(url, 10).unary_unary("/net.Orchestrator/GetOrchestrator")
    try:
        return pb.OrchestratorInfo.FromString(stub(request.SerializeToString(), timeout=10))
    except grpc.RpcError as exc:
        raise ClientConnectionError(f"{exc.code()}: {exc.details()}") from None


def test_same_port_serves_https(devnet: Any, fid_orchinfo: OrchInfoClient) -> None:
    # go: server/rpc.go ServeHTTP (application/grpc on HTTP/2 -> gRPC, the rest -> the HTTP mux)
    url = devnet.orchestrators[0]
    assert _info(fid_orchinfo, url, pb.OrchestratorRequest()).transcoder == url
    r = httpx.get(f"{url}/discovery", verify=False)
    assert r.status_code in (200, 404)


def _upstream_cert(host: str) -> TLSFiles:
    """server/cert.go:20-43: ECDSA P-256, self-signed CA, DNSNames=[service host], empty subject, no IP SAN."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=8765))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = []
    for data, suffix in (
        (cert.public_bytes(serialization.Encoding.PEM), ".crt"),
        (
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            ".key",
        ),
    ):
        with tempfile.NamedTemporaryFile(delete=False, suffix=suffix) as f:
            f.write(data)
            files.append(f.name)
    return TLSFiles(certfile=files[0], keyfile=files[1])


async def _fake_orch(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handler(raw: bytes) -> bytes:
        return bytes(
            pb.OrchestratorInfo(transcoder="https://orch.example:8935").SerializeToString()
        )

    await serve_unary(scope, receive, send, {"/net.Orchestrator/GetOrchestrator": handler})


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_client_pins_an_upstream_shaped_certificate(host: str) -> None:
    # go: server/cert.go:20-43 and server/cert_test.go TestRPCCert (DNSNames[0] == service host, even an IP
    # address). The devnet's own certificate adds a CN and an IP SAN; this checks the client does not need
    # them: the orchestrator at an IP address has only a DNS SAN spelling that address.
    async with hosted(_fake_orch, tls=_upstream_cert(host)) as srv:
        client = OrchInfoClient()
        try:
            raw = await anyio.to_thread.run_sync(lambda: client.get(srv.url, b"", b"", None, 10))
        finally:
            # Close before the server stops: hypercorn on asyncio waits for idle TLS clients to leave.
            client.close()
    assert pb.OrchestratorInfo.FromString(raw).transcoder == "https://orch.example:8935"


def test_restart_rotates_the_certificate(devnet_factory: Any, fid_orchinfo: OrchInfoClient) -> None:
    # go: server/cert.go:74+ (a new key/cert when missing: every fresh orchestrator has its own). The
    # client's pin store refuses the new certificate; a new client (a new Gateway) trusts it again.
    from livepeer.client._errors import CertificateError

    net = devnet_factory()
    url = net.orchestrators[0]
    assert _info(fid_orchinfo, url, pb.OrchestratorRequest()).transcoder == url
    net.restart(0)
    with pytest.raises(CertificateError):
        _info(fid_orchinfo, url, pb.OrchestratorRequest())
    fresh = OrchInfoClient()
    try:
        assert _info(fresh, url, pb.OrchestratorRequest()).transcoder == url
    finally:
        fresh.close()
