"""gRPC ``net.Orchestrator/GetOrchestrator`` with trust-on-first-use certificate pinning.

Orchestrators use self-signed certificates: we fetch the certificate once per ``host:port`` with an
unverified handshake, check it against the Gateway's pins (shared with HTTPS, see ``_transport``), and use
it as the gRPC root. A later verification failure fetches the certificate again: a different one is
``CertificateError`` (never silently re-pinned), the same one a plain connection failure. grpcio is
imported here only, lazily.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from ._errors import ConnectionError, LivepeerError, TimeoutError
from ._redact import redact_url
from ._transport import PinStore

__all__ = ["OrchInfoClient", "info_request"]

_METHOD = "/net.Orchestrator/GetOrchestrator"


def info_request(address: bytes, sig: bytes, capabilities: bytes | None) -> bytes:
    """Serialize an ``OrchestratorRequest``."""
    from ._proto import lp_rpc_pb2 as pb

    req = pb.OrchestratorRequest(address=address, sig=sig, ignoreCapacityCheck=True)
    if capabilities:
        req.capabilities.ParseFromString(capabilities)
    return bytes(req.SerializeToString())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _fetch_cert(host: str, port: int, timeout: float) -> tuple[bytes, str, bytes]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        ctx.wrap_socket(sock, server_hostname=None if _is_ip(host) else host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ConnectionError(f"{host}:{port} sent no certificate")
    return ssl.DER_cert_to_PEM_cert(der).encode(), _authority(der, host), der


def _authority(der: bytes, host: str) -> str:
    """First DNS SAN, else IP SAN, else CN: the name the pinned certificate will be checked against."""
    try:
        from cryptography import x509
    except ImportError:
        return host
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        dns = san.get_values_for_type(x509.DNSName)
        if dns:
            return str(dns[0])
        ips = san.get_values_for_type(x509.IPAddress)
        if ips:
            return str(ips[0])
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else host


def _key(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        parts.hostname or "",
        parts.port or (443 if parts.scheme == "https" else 80),
    )


class OrchInfoClient:
    """gRPC channels for one Gateway (closed with it); ``pins`` is the Gateway's pin store."""

    def __init__(self, pins: PinStore | None = None) -> None:
        self.pins = pins if pins is not None else PinStore()
        self._lock = threading.Lock()
        self._channels: dict[tuple[str, str, int], Any] = {}
        self._closed = False

    def _channel(self, url: str, timeout: float) -> Any:
        import grpc

        key = _key(url)
        with self._lock:
            chan = self._channels.get(key)
        if chan is not None:
            return chan
        scheme, host, port = key
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if scheme == "http":
            chan = grpc.insecure_channel(target)
        else:
            pin = _fetch_cert(host, port, timeout)
            self.pins.check(host, port, pin[2])
            creds = grpc.ssl_channel_credentials(root_certificates=pin[0])
            chan = grpc.secure_channel(
                target, creds, options=[("grpc.ssl_target_name_override", pin[1])]
            )
        with self._lock:
            if self._closed:
                chan.close()
                raise ConnectionError("the Gateway is closed")
            self._channels[key] = chan
        return chan

    def _evict(self, url: str) -> None:
        key = _key(url)
        with self._lock:
            chan = self._channels.pop(key, None)
        if chan is not None:
            chan.close()

    def close(self) -> None:
        with self._lock:
            chans, self._channels = list(self._channels.values()), {}
        for chan in chans:
            chan.close()

    def get(
        self, url: str, address: bytes, sig: bytes, capabilities: bytes | None, timeout: float
    ) -> bytes:
        """Return the serialized ``OrchestratorInfo`` of the orchestrator at ``url``."""
        import grpc

        request = info_request(address, sig, capabilities)
        for attempt in range(2):
            try:
                stub = self._channel(url, timeout).unary_unary(_METHOD)
                return bytes(stub(request, timeout=timeout))
            except LivepeerError:  # CertificateError is an OSError too: keep its message
                raise
            except OSError as exc:
                raise ConnectionError(
                    f"cannot reach {redact_url(url)}: {type(exc).__name__}"
                ) from None
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise TimeoutError(f"GetOrchestrator on {redact_url(url)} timed out") from None
                if code == grpc.StatusCode.UNAVAILABLE and attempt == 0:
                    # A new channel re-reads the certificate: a changed one raises CertificateError
                    # there; the same one means the orchestrator was only briefly away.
                    self._evict(url)
                    continue
                details = exc.details() if hasattr(exc, "details") else ""
                raise ConnectionError(
                    f"GetOrchestrator on {redact_url(url)} failed: {code}: {str(details)[:200]}"
                ) from None
        raise ConnectionError(f"GetOrchestrator on {redact_url(url)} failed")
