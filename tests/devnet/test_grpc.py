"""gRPC GetOrchestrator on the orchestrator's HTTPS port, with a real grpcio client and TOFU pinning (§4)."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import grpc
import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet._keys import EthKey


def fetch_cert(url: str) -> bytes:
    """Trust-on-first-use, as py-1.0 does: read the certificate over an unverified TLS handshake."""
    host, port = url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
        assert tls.selected_alpn_protocol() == "h2"
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der).encode()


def get_orchestrator(url: str, request: pb.OrchestratorRequest, cert: bytes | None = None) -> Any:
    target = url.removeprefix("https://")
    creds = grpc.ssl_channel_credentials(root_certificates=cert or fetch_cert(url))
    options = [
        ("grpc.ssl_target_name_override", "localhost"),
        ("grpc.default_authority", "localhost"),
    ]
    with grpc.secure_channel(target, creds, options=options) as channel:
        call = channel.unary_unary(
            "/net.Orchestrator/GetOrchestrator",
            request_serializer=pb.OrchestratorRequest.SerializeToString,
            response_deserializer=pb.OrchestratorInfo.FromString,
        )
        return call(request, timeout=5)


def test_offchain_info_on_the_https_port(devnet: Any) -> None:
    url = devnet.orchestrators[0]
    info = get_orchestrator(url, pb.OrchestratorRequest())
    assert info.transcoder == url
    assert not info.HasField("ticket_params")
    assert info.auth_token.token
    assert info.auth_token.session_id
    assert info.hardware, "hardware is listed when no capabilities were requested"
    models = info.capabilities.constraints.PerCapability[35].models
    assert {"noop", "grayscale"} <= set(models)
    # The same port answers plain HTTPS too.
    r = httpx.get(f"{url}/process/token", verify=False)
    assert r.status_code == 400


def test_onchain_info_with_signer_signature(devnet_onchain: Any) -> None:
    signer = httpx.post(f"{devnet_onchain.signer}/sign-orchestrator-info", json={}).json()
    request = pb.OrchestratorRequest(
        address=bytes.fromhex(signer["address"][2:]),
        sig=bytes.fromhex(signer["signature"][2:]),
        ignoreCapacityCheck=True,
    )
    request.capabilities.capacities[35] = 1
    request.capabilities.constraints.PerCapability[35].models["noop"].SetInParent()
    info = get_orchestrator(devnet_onchain.orchestrators[1], request)
    assert info.price_info.pricePerUnit > 0
    assert info.ticket_params.recipient == info.address
    assert len(info.address) == 20
    assert not info.capabilities_prices, "capabilities_prices only when no caps were sent"
    assert info.auth_token.expiration > 0


def test_onchain_prices_list_byoc_as_capability_37(devnet_onchain: Any) -> None:
    signer = httpx.post(f"{devnet_onchain.signer}/sign-orchestrator-info", json={}).json()
    request = pb.OrchestratorRequest(
        address=bytes.fromhex(signer["address"][2:]), sig=bytes.fromhex(signer["signature"][2:])
    )
    info = get_orchestrator(devnet_onchain.orchestrators[0], request)
    byoc = {p.constraint for p in info.capabilities_prices if p.capability == 37}
    assert "text-reversal" in byoc


def test_onchain_bad_signature_is_a_grpc_error(devnet_onchain: Any) -> None:
    key = EthKey.generate()
    other = EthKey.generate()
    request = pb.OrchestratorRequest(
        address=key.address_bytes, sig=other.sign_hash_of(other.address)
    )
    with pytest.raises(grpc.RpcError) as info:
        get_orchestrator(devnet_onchain.orchestrators[0], request)
    assert "Invalid orchestrator request" in (info.value.details() or "")


def test_unknown_method_is_unimplemented(devnet: Any) -> None:
    url = devnet.orchestrators[0]
    creds = grpc.ssl_channel_credentials(root_certificates=fetch_cert(url))
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(url.removeprefix("https://"), creds, options=options) as channel:
        call = channel.unary_unary("/net.Orchestrator/Nope")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
