"""Error paths of the signer client, the HTTP layer and discovery, each through a real loopback server.

The server is the standard library's threading HTTP server on 127.0.0.1 with scripted replies per path;
the client side is the real ``Gateway`` I/O (``_sync_io``/``_async_io`` with ``drive``/``adrive``), so
nothing of the code under test is replaced. Waits are events; the few ``sleep`` calls only give a
*missing* limit time to show itself and can never fail a correct implementation.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import pytest

from livepeer.client import (
    ConnectionError,
    Gateway,
    LivepeerError,
    NoOrchestratorError,
    PaymentError,
    ProtocolError,
    SignerError,
    SignerPriceError,
    SignerRefreshError,
    TimeoutError,
    _signer,
)
from livepeer.client._config import Settings
from livepeer.client._discovery import DISCOVERY_TIMEOUT, discover
from livepeer.client._io import AsyncIO, adrive, drive
from livepeer.client._ops import (
    Call,
    Deadline,
    Parallel,
    Reply,
    Sleep,
    backoff,
    is_retryable_status,
)
from livepeer.client._signer import (
    PAYMENT_THRESHOLD_SECONDS,
    SIGNER_TIMEOUT,
    ZERO_ADDRESS,
    Identity,
    Signer,
    needs_payment,
)

Handler = Callable[[BaseHTTPRequestHandler], None]
ReplySpec = tuple[int, bytes] | Handler


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Loopback:
    url: str
    routes: dict[str, list[ReplySpec]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, path: str, *replies: ReplySpec) -> None:
        self.routes.setdefault(path, []).extend(replies)

    def json(self, path: str, obj: object, status: int = 200) -> None:
        self.queue(path, (status, json.dumps(obj).encode()))

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Loopback]:
    state: Loopback

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with state.lock:
                state.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                queued = state.routes.get(self.path)
                reply: ReplySpec = queued.pop(0) if queued else (404, b"no route")
                if queued == []:
                    state.routes.pop(self.path)
            if callable(reply):
                reply(self)
                return
            status, payload = reply
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    state = Loopback(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def srv() -> Iterator[Loopback]:
    yield from _serve()


@pytest.fixture
def tls_srv() -> Iterator[Loopback]:
    from livepeer.devnet._keys import self_signed_cert

    cert = self_signed_cert()
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.files.certfile, cert.files.keyfile)
        yield from _serve(ctx)
    finally:
        cert.remove()


@pytest.fixture(autouse=True)
def _fresh_identity_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_signer, "_identity_cache", {})


@pytest.fixture
def dead() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(op: Any, gw: Gateway) -> Any:
    return drive(op, gw._dispatch.sync_io())


def arun(op: Any, gw: Gateway) -> Any:
    async def main() -> Any:
        return await adrive(op, gw._dispatch.async_io())

    return anyio.run(main)


RUNNERS = [pytest.param(run, id="sync"), pytest.param(arun, id="async")]

IDENT = {"address": "0x" + "Ab" * 20, "signature": "0x" + "11" * 65}


def stall(h: BaseHTTPRequestHandler) -> None:
    """Answer nothing until the test ends."""
    h.server_state.release.wait(30)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ signer client


@pytest.mark.parametrize("drive_", RUNNERS)
def test_identity_is_fetched_with_the_configured_headers_and_cached(
    srv: Loopback, drive_: Any
) -> None:
    srv.json("/sign-orchestrator-info", IDENT)
    with Gateway(orch_url=srv.url, signer_url=srv.url) as gw:
        s = Signer(srv.url, {"X-Api-Key": "k1"})
        assert drive_(s.identity(), gw) == Identity(IDENT["address"], IDENT["signature"])
        # Cached per process for the same signer and headers: no second request.
        assert (
            drive_(Signer(srv.url, {"X-Api-Key": "k1"}).identity(), gw).address == IDENT["address"]
        )
    (req,) = srv.seen
    assert (req.method, req.path, req.headers["X-Api-Key"], req.json()) == (
        "POST",
        "/sign-orchestrator-info",
        "k1",
        {},
    )


def test_identity_cache_is_keyed_by_headers(srv: Loopback) -> None:
    srv.json("/sign-orchestrator-info", IDENT)
    srv.json("/sign-orchestrator-info", {**IDENT, "address": "0x" + "cd" * 20})
    with Gateway(orch_url=srv.url) as gw:
        assert run(Signer(srv.url, {"X-Api-Key": "a"}).identity(), gw).address == IDENT["address"]
        assert run(Signer(srv.url, {"X-Api-Key": "b"}).identity(), gw).address == "0x" + "cd" * 20
    assert len(srv.seen) == 2


def test_identity_without_signer_is_the_local_key_or_the_zero_sender() -> None:
    with Gateway(orch_url="http://127.0.0.1:1") as gw:
        zero = run(Signer(None, {}).identity(), gw)
        assert zero == Identity(ZERO_ADDRESS, "")  # offchain: an empty signature
        assert (zero.address_bytes(), zero.signature_bytes()) == (b"", b"")
        key = run(Signer(None, {}, private_key="0x" + "4c" * 32).identity(), gw)
    assert key.address.startswith("0x")
    assert key.address != ZERO_ADDRESS
    assert len(key.address_bytes()) == 20
    assert len(key.signature_bytes()) == 65


def test_identity_header_and_bytes() -> None:
    ident = Identity("0x" + "ab" * 20, "0x" + "01" * 65)
    raw = json.loads(base64.b64decode(ident.eth_address_header()))
    assert raw == {"addr": ident.address, "sig": ident.signature}
    assert (
        base64.b64decode(ident.eth_address_header())
        == json.dumps(raw, separators=(",", ":")).encode()
    )
    assert ident.address_bytes() == bytes.fromhex("ab" * 20)
    assert ident.signature_bytes() == bytes.fromhex("01" * 65)


@pytest.mark.parametrize("drive_", RUNNERS)
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            (500, b'{"error": {"message": "boom"}}'),
            "signer /sign-orchestrator-info failed with 500: boom",
        ),
        ((503, b"plain text"), "failed with 503: plain text"),
        ((400, b'{"error": {"message": 7}}'), 'failed with 400: {"error": {"message": 7}}'),
        ((401, b'{"error": "x"}'), 'failed with 401: {"error": "x"}'),
        ((200, b"not json"), "returned malformed JSON"),
        ((200, b'{"address": "0x1"}'), "returned malformed JSON"),
        ((200, b"[1]"), "returned malformed JSON"),
        ((200, b'{"address": "ab", "signature": "0x1"}'), "malformed address or signature"),
        ((200, b'{"address": "0xab", "signature": "11"}'), "malformed address or signature"),
    ],
)
def test_identity_failures_are_signer_errors(
    srv: Loopback, drive_: Any, reply: tuple[int, bytes], message: str
) -> None:
    srv.queue("/sign-orchestrator-info", reply)
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerError) as info:
        drive_(Signer(srv.url, {}).identity(), gw)
    assert message in str(info.value)
    assert info.value.status_code == (reply[0] if reply[0] != 200 else None)
    assert _signer._identity_cache == {}  # a failure is not cached


def test_signer_error_message_is_bounded(srv: Loopback) -> None:
    srv.queue("/sign-orchestrator-info", (500, b"x" * 1000))
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerError) as info:
        run(Signer(srv.url, {}).identity(), gw)
    assert str(info.value).endswith("x" * 300 + "…")
    srv.json("/sign-orchestrator-info", {"error": {"message": "y" * 1000}}, status=500)
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerError) as info:
        run(Signer(srv.url, {}).identity(), gw)
    assert str(info.value).endswith(": " + "y" * 300 + "…")


def test_signer_requests_are_service_calls_with_their_own_timeout_and_limit() -> None:
    s = Signer("https://signer.example/base", {"X-Api-Key": "k"})
    steps = [
        next(s.identity()),
        next(s.payment(("o", "c"), b"info", billing=None)),
    ]
    for step in steps:
        assert isinstance(step, Call)
        assert (step.method, step.service, step.timeout, step.limit) == (
            "POST",
            True,
            SIGNER_TIMEOUT,
            1 << 20,
        )
        assert step.headers == {"X-Api-Key": "k"}
    assert [st.url for st in steps] == [
        "https://signer.example/base/sign-orchestrator-info",
        "https://signer.example/base/generate-live-payment",
    ]
    assert SIGNER_TIMEOUT == 10.0


@pytest.mark.parametrize("drive_", RUNNERS)
def test_signer_tls_is_verified_unlike_orchestrators(tls_srv: Loopback, drive_: Any) -> None:
    # A self-signed certificate: fine for an orchestrator (go-livepeer does not verify them), never
    # for the signer, which holds the keys.
    tls_srv.json("/sign-orchestrator-info", IDENT)
    tls_srv.queue("/orch", (200, b"{}"))
    with Gateway(orch_url=tls_srv.url) as gw:
        with pytest.raises(ConnectionError, match="cannot reach"):
            drive_(Signer(tls_srv.url, {}).identity(), gw)

        def orch_call() -> Any:
            reply = yield Call("GET", tls_srv.url + "/orch")
            return reply

        assert drive_(orch_call(), gw).status == 200
    assert tls_srv.paths() == ["/orch"]


@pytest.mark.parametrize("drive_", RUNNERS)
def test_signer_reply_size_limit(srv: Loopback, drive_: Any) -> None:
    body = json.dumps(IDENT).encode()
    srv.queue("/sign-orchestrator-info", (200, body + b" " * ((1 << 20) - len(body))))
    with Gateway(orch_url=srv.url) as gw:
        assert drive_(Signer(srv.url, {}).identity(), gw).address == IDENT["address"]
    _signer._identity_cache.clear()
    srv.queue("/sign-orchestrator-info", (200, body + b" " * ((1 << 20) + 1 - len(body))))
    with Gateway(orch_url=srv.url) as gw, pytest.raises(ProtocolError, match="over 1048576 bytes"):
        drive_(Signer(srv.url, {}).identity(), gw)


def test_unreachable_signer_is_a_connection_error(dead: str) -> None:
    with Gateway(orch_url=dead) as gw, pytest.raises(ConnectionError, match="cannot reach"):
        run(Signer(dead, {}).identity(), gw)


def _payment_reply(n: int, state: object = "default") -> bytes:
    st = {"State": f"s{n}"} if state == "default" else state
    return json.dumps({"payment": f"pay-{n}", "segCreds": f"seg-{n}", "state": st}).encode()


@pytest.mark.parametrize("drive_", RUNNERS)
def test_payment_request_body_and_state_chain(srv: Loopback, drive_: Any) -> None:
    srv.queue("/generate-live-payment", (200, _payment_reply(1)), (200, _payment_reply(2)))
    srv.queue("/generate-live-payment", (200, _payment_reply(3, state=None)))
    srv.queue("/generate-live-payment", (200, b'{"payment": "p4"}'))
    s = Signer(srv.url, {"X-Api-Key": "k"})
    key = ("https://o", "cap")
    with Gateway(orch_url=srv.url) as gw:
        t1 = drive_(s.payment(key, b"\x01\x02", billing=None, in_pixels=640, manifest_id="m1"), gw)
        t2 = drive_(
            s.payment(
                key,
                b"\x01\x02",
                billing="byoc",
                in_pixels=640,
                app="appx",
                max_price={"pricePerUnit": 5, "pixelsPerUnit": 1},
            ),
            gw,
        )
        drive_(s.payment(key, b"\x01", billing=None), gw)
        t4 = drive_(s.payment(key, b"\x01", billing=None), gw)
    assert (t1.payment, t1.seg_creds, t2.payment) == ("pay-1", "seg-1", "pay-2")
    assert t4.seg_creds == ""
    first, second, third, fourth = (r.json() for r in srv.seen)
    assert first == {"orchestrator": "AQI=", "ManifestID": "m1", "inPixels": 640}
    assert second == {
        "orchestrator": "AQI=",
        "ManifestID": "m1",  # the chain keeps its manifest
        "state": {"State": "s1"},
        "type": "byoc",  # inPixels belongs to per-pixel pricing only
        "app": "appx",
        "maxPrice": {"pricePerUnit": 5, "pixelsPerUnit": 1},
    }
    assert third["state"] == {"State": "s2"}
    assert fourth["state"] == {"State": "s2"}  # a reply without a usable state keeps the chain
    assert all(r.headers["X-Api-Key"] == "k" for r in srv.seen)
    s.forget(key)
    assert key not in s.states
    s.forget(key)  # forgetting twice is harmless


def test_payment_manifest_defaults_per_capability_and_signer(srv: Loopback) -> None:
    srv.queue("/generate-live-payment", (200, _payment_reply(1)), (200, _payment_reply(2)))
    s = Signer(srv.url, {})
    with Gateway(orch_url=srv.url) as gw:
        run(s.payment(("o", "capA"), b"", billing=None), gw)
        run(s.payment(("o", "capB"), b"", billing=None), gw)
    assert [r.json()["ManifestID"] for r in srv.seen] == [f"capA-{id(s):x}", f"capB-{id(s):x}"]
    assert "state" not in srv.seen[1].json()


@pytest.mark.parametrize("drive_", RUNNERS)
def test_payment_482_means_no_payment(srv: Loopback, drive_: Any) -> None:
    srv.queue("/generate-live-payment", (482, b""))
    with Gateway(orch_url=srv.url) as gw:
        assert drive_(Signer(srv.url, {}).payment(("o", "c"), b"", billing=None), gw) is None


@pytest.mark.parametrize(
    ("reply", "message", "status", "kind"),
    [
        (
            (480, b'{"error": {"message": "refresh"}}'),
            "generate-live-payment failed with 480: refresh",
            480,
            SignerRefreshError,
        ),
        ((481, b""), "failed with 481", 481, SignerPriceError),
        ((400, b"bad"), "failed with 400: bad", 400, SignerError),
        ((200, b"{}"), "/generate-live-payment returned malformed JSON", None, SignerError),
        ((200, b"oops"), "/generate-live-payment returned malformed JSON", None, SignerError),
        ((200, b"[]"), "/generate-live-payment returned malformed JSON", None, SignerError),
    ],
)
def test_payment_failures(
    srv: Loopback,
    reply: tuple[int, bytes],
    message: str,
    status: int | None,
    kind: type[SignerError],
) -> None:
    srv.queue("/generate-live-payment", reply)
    s = Signer(srv.url, {})
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerError) as info:
        run(s.payment(("o", "c"), b"", billing=None), gw)
    assert message in str(info.value)
    assert info.value.status_code == status
    assert type(info.value) is kind  # callers act on the class: refresh (480), move on (481)
    assert s.states[("o", "c")].state is None


def _refreshes(log: list[bytes]) -> Any:
    def refresh() -> Any:
        log.append(b"fresh-%d" % len(log))
        return log[-1]
        yield  # an op without steps

    return refresh


@pytest.mark.parametrize("drive_", RUNNERS)
def test_pay_refreshing_pays_again_on_fresh_params_after_480(srv: Loopback, drive_: Any) -> None:
    for _ in range(2):
        srv.queue("/generate-live-payment", (480, b""))
    srv.queue("/generate-live-payment", (200, b'{"payment": "p", "segCreds": "s"}'))
    fresh: list[bytes] = []
    with Gateway(orch_url=srv.url) as gw:
        tokens, info = drive_(
            Signer(srv.url, {}).pay_refreshing(
                ("o", "c"), b"old", _refreshes(fresh), billing="lv2v"
            ),
            gw,
        )
    assert (tokens.payment, tokens.seg_creds) == ("p", "s")
    assert fresh == [b"fresh-0", b"fresh-1"]
    assert info == b"fresh-1"
    sent = [base64.b64decode(r.json()["orchestrator"]) for r in srv.seen]
    assert sent == [b"old", b"fresh-0", b"fresh-1"]


def test_pay_refreshing_gives_up_after_max_refresh(srv: Loopback) -> None:
    for _ in range(_signer.MAX_REFRESH + 1):
        srv.queue("/generate-live-payment", (480, b""))
    fresh: list[bytes] = []
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerRefreshError):
        run(
            Signer(srv.url, {}).pay_refreshing(("o", "c"), b"", _refreshes(fresh), billing=None), gw
        )
    assert len(fresh) == _signer.MAX_REFRESH == 3
    assert len(srv.seen) == 4


def test_pay_refreshing_leaves_481_to_the_caller(srv: Loopback) -> None:
    srv.queue("/generate-live-payment", (481, b""))
    fresh: list[bytes] = []
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerPriceError):
        run(
            Signer(srv.url, {}).pay_refreshing(("o", "c"), b"", _refreshes(fresh), billing=None), gw
        )
    assert fresh == []


def test_payment_without_signer_is_a_payment_error() -> None:
    with pytest.raises(PaymentError, match="no signer_url"):
        next(Signer(None, {}).payment(("o", "c"), b"", billing=None))


def test_needs_payment_threshold() -> None:
    assert PAYMENT_THRESHOLD_SECONDS == 120
    assert needs_payment(0, None) is False
    assert needs_payment(-1, 0) is False
    assert needs_payment(1e-9, None) is True
    assert needs_payment(2, None) is True
    assert needs_payment(2, 240) is False  # exactly 120 s covered
    assert needs_payment(2, 239.99) is True


# ------------------------------------------------------------------------------------- HTTP layer


def _call(url: str, **kw: Any) -> Any:
    reply = yield Call("GET", url, **kw)
    return reply


@pytest.mark.parametrize("drive_", RUNNERS)
def test_response_size_limit(srv: Loopback, drive_: Any) -> None:
    srv.queue("/ok", (200, b"x" * 100))
    srv.queue("/big", (200, b"x" * 101))
    with Gateway(orch_url=srv.url) as gw:
        assert drive_(_call(srv.url + "/ok", limit=100), gw).body == b"x" * 100
        with pytest.raises(
            ProtocolError, match=r"reply from http://127\.0\.0\.1:\d+/big is over 100 bytes"
        ):
            drive_(_call(srv.url + "/big", limit=100), gw)


def _chunked(parts: list[bytes]) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(500)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for part in parts:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")

    return handle


@pytest.mark.parametrize("drive_", RUNNERS)
def test_size_limit_counts_across_chunks_and_error_statuses(srv: Loopback, drive_: Any) -> None:
    srv.queue("/c", _chunked([b"a" * 60, b"b" * 60]))
    srv.queue("/d", _chunked([b"a" * 50, b"b" * 50]))
    with Gateway(orch_url=srv.url) as gw:
        with pytest.raises(ProtocolError, match="over 100 bytes"):
            drive_(_call(srv.url + "/c", limit=100), gw)
        reply = drive_(_call(srv.url + "/d", limit=100), gw)
    assert (reply.status, reply.body) == (500, b"a" * 50 + b"b" * 50)


def test_default_limits() -> None:
    from livepeer.client import limits

    assert Call("GET", "u").limit == limits.MAX_RESULT_BYTES == 256 << 20
    assert Call("GET", "u").service is False


@pytest.mark.parametrize("drive_", RUNNERS)
def test_connection_refused(dead: str, drive_: Any) -> None:
    with (
        Gateway(orch_url=dead) as gw,
        pytest.raises(ConnectionError, match=r"cannot reach .*ConnectError"),
    ):
        drive_(_call(dead + "/x"), gw)


@pytest.mark.parametrize("drive_", RUNNERS)
def test_read_timeout(srv: Loopback, drive_: Any) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        srv.release.wait(30)

    srv.queue("/slow", slow)
    with (
        Gateway(orch_url=srv.url) as gw,
        pytest.raises(TimeoutError, match=r"timed out talking to http://127\.0\.0\.1:\d+/slow"),
    ):
        drive_(_call(srv.url + "/slow", timeout=0.3), gw)


@pytest.mark.parametrize("drive_", RUNNERS)
def test_connection_lost_mid_body(srv: Loopback, drive_: Any) -> None:
    def cut(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"only part")
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    srv.queue("/cut", cut)
    with (
        Gateway(orch_url=srv.url) as gw,
        pytest.raises(ConnectionError, match=r"cannot reach .*RemoteProtocolError"),
    ):
        drive_(_call(srv.url + "/cut"), gw)


@pytest.mark.parametrize("drive_", RUNNERS)
def test_url_credentials_never_reach_errors(dead: str, drive_: Any) -> None:
    url = dead.replace("http://", "http://user:s3cret@") + "/x?token=abc"
    with Gateway(orch_url=dead) as gw, pytest.raises(ConnectionError) as info:
        drive_(_call(url), gw)
    assert "s3cret" not in str(info.value)


def _holding(srv: Loopback, path: str, n: int) -> None:
    def hold(h: BaseHTTPRequestHandler) -> None:
        with srv.lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        srv.release.wait(30)
        with srv.lock:
            srv.in_flight -= 1
        h.send_response(200)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"ok")

    srv.queue(path, *[hold] * n)


def _wait_for(condition: Callable[[], bool], within: float = 20.0) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_async_in_flight_limit(srv: Loopback) -> None:
    _holding(srv, "/h", 6)
    results: list[int] = []

    async def main() -> None:
        async with httpx.AsyncClient() as orch:
            io = AsyncIO(orch, lambda: orch, None, max_in_flight=2)  # type: ignore[arg-type]

            async def one() -> None:
                results.append((await adrive(_call(srv.url + "/h"), io)).status)

            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(one)
                await anyio.to_thread.run_sync(_wait_for, lambda: srv.in_flight == 2)
                await anyio.sleep(0.5)  # room for a third request, if the limit were not applied
                srv.release.set()

    anyio.run(main)
    assert results == [200] * 6
    assert srv.max_in_flight == 2


@pytest.mark.parametrize("drive_", RUNNERS)
def test_parallel_limit_and_errors_are_results(srv: Loopback, dead: str, drive_: Any) -> None:
    _holding(srv, "/p", 5)

    def op() -> Any:
        results = yield Parallel(
            [Call("GET", srv.url + "/p") for _ in range(5)] + [Call("GET", dead)], limit=2
        )
        return results

    def release_when_full() -> None:
        _wait_for(lambda: srv.in_flight == 2)
        time.sleep(0.5)  # room for a third request, if the limit were not applied
        srv.release.set()

    helper = threading.Thread(target=release_when_full)
    helper.start()
    with Gateway(orch_url=srv.url) as gw:
        results = drive_(op(), gw)
    helper.join()
    assert [r.status for r in results[:5]] == [200] * 5
    assert isinstance(results[5], ConnectionError)
    assert srv.max_in_flight == 2


@pytest.mark.parametrize("drive_", RUNNERS)
def test_errors_are_thrown_into_the_op_which_may_recover(
    dead: str, srv: Loopback, drive_: Any
) -> None:
    srv.queue("/ok", (200, b"fine"))

    def op() -> Any:
        try:
            yield Call("GET", dead)
        except ConnectionError:
            yield Sleep(0.0)
            reply = yield Call("GET", srv.url + "/ok")
            return reply.body
        raise AssertionError("no error")

    with Gateway(orch_url=srv.url) as gw:
        assert drive_(op(), gw) == b"fine"


def test_deadline_and_retry_policy() -> None:
    d = Deadline(60)
    assert 0 < d.cap(5) <= 5
    assert d.cap(600) <= 60
    gone = Deadline(0.01)
    gone.end = time.monotonic() - 1
    with pytest.raises(TimeoutError, match=r"deadline of 0\.01s exceeded"):
        gone.cap(1)
    assert [
        s for s in (400, 404, 407, 408, 409, 428, 429, 430, 499, 500, 503) if is_retryable_status(s)
    ] == [408, 429, 500, 503]
    for attempt in range(8):
        for _ in range(20):
            assert 0.25 <= backoff(attempt) <= min(8.0, 0.5 * 2**attempt)


# -------------------------------------------------------------------------------------- discovery


def _discover(settings: Settings) -> Any:
    with Gateway(orch_url="http://127.0.0.1:1") as gw:
        return run(discover(settings), gw)


def test_discovery_failures_are_rejections_then_the_next_source(srv: Loopback, dead: str) -> None:
    orch = {
        "address": "https://orch.example:8935",
        "capabilities": ["c", 5],
        "runners": [{"a": 1}, 2],
    }
    srv.queue("/d500", (500, b""))
    srv.queue("/dbad", (200, b"not json"))
    srv.queue("/dobj", (200, b"{}"))
    srv.queue("/dempty", (200, b"[]"))
    expect = {
        f"{dead}/d": "discovery unreachable: cannot reach",
        f"{srv.url}/d500": "discovery answered 500",
        f"{srv.url}/dbad": "discovery reply is not valid JSON",
        f"{srv.url}/dobj": "discovery did not return a JSON array",
        f"{srv.url}/dempty": "discovery listed no orchestrators",
    }
    for url, reason in expect.items():
        srv.json(
            "/discover-orchestrators", [orch, orch, {"address": 5}, "x", {"address": "::bad::"}]
        )
        found, rejections = _discover(
            Settings(discovery_url=url, signer_url=srv.url, discovery_headers={"X-D": "1"})
        )
        assert [r.reason[: len(reason)] for r in rejections] == [reason]
        assert len(found) == 1
        assert found[0].url == "https://orch.example:8935"
        assert (found[0].capabilities, found[0].runners, found[0].source) == (
            ("c",),
            ({"a": 1},),
            "signer discovery",
        )
    assert srv.seen[1].headers.get("X-D") == "1"


def test_discovery_with_every_source_failing(srv: Loopback) -> None:
    srv.queue("/discover-orchestrators", (404, b""))
    found, rejections = _discover(Settings(signer_url=srv.url))
    assert found == []
    assert [r.reason for r in rejections] == ["signer discovery answered 404"]
    with (
        Gateway(discovery_url=srv.url + "/none") as gw,
        pytest.raises(NoOrchestratorError, match="answered 404"),
    ):
        gw.run("text-reversal", input={})


def test_discovery_is_a_verified_service_call(tls_srv: Loopback) -> None:
    tls_srv.json("/d", [{"address": "https://o.example:1"}])
    found, rejections = _discover(Settings(discovery_url=tls_srv.url + "/d"))
    assert found == []
    assert "discovery unreachable" in rejections[0].reason
    assert tls_srv.seen == []
    step = next(discover(Settings(discovery_url="https://d.example/x")))
    assert (step.service, step.timeout, step.limit) == (True, DISCOVERY_TIMEOUT, 8 << 20)


def test_explicit_orchestrators_skip_discovery() -> None:
    found, rejections = _discover(
        Settings(orchestrators=("https://a:1", "https://b:2"), signer_url="http://x")
    )
    assert [c.url for c in found] == ["https://a:1", "https://b:2"]
    assert rejections == []


def test_no_source_is_a_config_error() -> None:
    from livepeer.client import ConfigError

    with pytest.raises(ConfigError, match="no orchestrators configured"):
        next(discover(Settings()))


def test_errors_are_livepeer_errors() -> None:
    assert issubclass(SignerError, LivepeerError)
    assert issubclass(ProtocolError, ConnectionError)
    assert Reply(200, {}, b'{"a": 1}', "u", 0.0).json() == {"a": 1}


def test_concurrent_identity_requests_share_one_flight(srv: Loopback) -> None:
    # Ops are stepped by hand so the interleaving is exact: the leader is paused on its request
    # while a second caller arrives.
    from livepeer.client._ops import Wait

    srv.json("/sign-orchestrator-info", IDENT)
    with Gateway(orch_url=srv.url) as gw:
        io = gw._dispatch.sync_io()
        leader = Signer(srv.url, {}).identity()
        request = next(leader)
        follower = Signer(srv.url, {}).identity()
        waiting = next(follower)
        assert isinstance(waiting, Wait)
        with pytest.raises(StopIteration) as led:
            leader.send(io.run(request))
        with pytest.raises(StopIteration) as followed:
            follower.send(io.run(waiting))
    assert led.value.value == followed.value.value == Identity(IDENT["address"], IDENT["signature"])
    assert len(srv.seen) == 1


def test_a_failed_leader_lets_the_follower_try_on_its_own(srv: Loopback) -> None:
    srv.queue("/sign-orchestrator-info", (500, b"down"))
    srv.json("/sign-orchestrator-info", IDENT)
    with Gateway(orch_url=srv.url) as gw:
        io = gw._dispatch.sync_io()
        leader = Signer(srv.url, {}).identity()
        request = next(leader)
        follower = Signer(srv.url, {}).identity()
        waiting = next(follower)
        with pytest.raises(SignerError, match="failed with 500"):
            leader.send(io.run(request))
        own = follower.send(io.run(waiting))  # the leader failed: the follower asks itself
        with pytest.raises(StopIteration) as done:
            follower.send(io.run(own))
    assert done.value.value == Identity(IDENT["address"], IDENT["signature"])
    assert len(srv.seen) == 2


# --------------------------------------------------------------------- HTTP layer: steps and bodies


@pytest.mark.parametrize("drive_", RUNNERS)
def test_sleep_step_sleeps_and_ignores_negative_durations(drive_: Any) -> None:
    def op() -> Any:
        t0 = time.monotonic()
        yield Sleep(-5.0)
        t1 = time.monotonic()
        yield Sleep(0.2)
        return t1 - t0, time.monotonic() - t1

    with Gateway(orch_url="http://127.0.0.1:1") as gw:
        negative, positive = drive_(op(), gw)
    assert negative < 0.2
    assert positive >= 0.19


@pytest.mark.parametrize("drive_", RUNNERS)
def test_wait_step_returns_when_set_or_after_its_bound(drive_: Any) -> None:
    from livepeer.client._ops import Wait

    done, never = threading.Event(), threading.Event()
    done.set()

    def op() -> Any:
        t0 = time.monotonic()
        yield Wait([done], 30.0)
        t1 = time.monotonic()
        yield Wait([never, done], 0.2)
        return t1 - t0, time.monotonic() - t1

    with Gateway(orch_url="http://127.0.0.1:1") as gw:
        quick, bounded = drive_(op(), gw)
    assert quick < 5
    assert 0.19 <= bounded < 20


@pytest.mark.parametrize("drive_", RUNNERS)
def test_parallel_of_one_and_of_none(srv: Loopback, drive_: Any) -> None:
    srv.queue("/one", (200, b"1"))

    def op() -> Any:
        one = yield Parallel([Call("GET", srv.url + "/one")])
        none = yield Parallel([])
        return one, none

    with Gateway(orch_url=srv.url) as gw:
        one, none = drive_(op(), gw)
    assert [r.body for r in one] == [b"1"]
    assert none == []


@pytest.mark.parametrize("drive_", RUNNERS)
def test_request_bodies_raw_json_and_multipart(srv: Loopback, drive_: Any) -> None:
    for path in ("/raw", "/json", "/multi", "/multi-nodata"):
        srv.queue(path, (200, b""))

    def op() -> Any:
        yield Call("POST", srv.url + "/raw", content=b"\x00raw")
        yield Call("POST", srv.url + "/json", json={"a": 1})
        yield Call(
            "POST", srv.url + "/multi", data={"k": "v"}, files={"f": ("a.bin", b"FILE", "x/y")}
        )
        yield Call("POST", srv.url + "/multi-nodata", files={"f": ("b.bin", b"DATA", "x/y")})

    with Gateway(orch_url=srv.url) as gw:
        drive_(op(), gw)
    raw, js, multi, nodata = srv.seen
    assert raw.body == b"\x00raw"
    assert json.loads(js.body) == {"a": 1}
    assert js.headers["Content-Type"] == "application/json"
    assert multi.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="k"' in multi.body
    assert b"FILE" in multi.body
    assert b'filename="a.bin"' in multi.body
    assert b"DATA" in nodata.body
    assert b'name="k"' not in nodata.body


@pytest.mark.parametrize("drive_", RUNNERS)
def test_calls_and_failures_are_logged_with_their_duration(
    srv: Loopback, dead: str, drive_: Any, caplog: pytest.LogCaptureFixture
) -> None:
    srv.queue("/s", (200, b"stream body"))

    def op() -> Any:
        reply = yield Call("GET", srv.url + "/s", stream=True)
        with contextlib.suppress(ConnectionError):
            yield Call("GET", dead + "/gone")
        return reply

    caplog.set_level("DEBUG", logger="livepeer.client")
    with Gateway(orch_url=srv.url) as gw:
        if drive_ is run:
            reply = run(op(), gw)
            reply.stream.close()
        else:

            async def main() -> Any:
                reply = await adrive(op(), gw._dispatch.async_io())
                await reply.stream.close()
                return reply

            reply = anyio.run(main)
        assert 0 <= reply.elapsed < 60
    lines = [r.getMessage() for r in caplog.records if r.name == "livepeer.client"]
    ok = [m for m in lines if "/s -> 200 in " in m]
    failed = [m for m in lines if "/gone -> ConnectError in " in m]
    assert ok
    assert failed
    for message in ok + failed:
        ms = float(message.split(" in ", 1)[1].split(" ms", 1)[0])
        assert 0 <= ms < 60_000


# ------------------------------------------------------------------------- AI route (paid, loopback)


def _orch_info(
    transcoder: str,
    *,
    price: int = 0,
    pixels: int = 1,
    caps: dict[int, int] | None = None,
    models: dict[str, tuple[int, int]] | None = None,
    cap_id: int = 27,
) -> bytes:
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo(transcoder=transcoder)
    info.price_info.pricePerUnit = price
    info.price_info.pixelsPerUnit = pixels
    info.auth_token.token = b"tok"
    for cid, n in (caps or {}).items():
        info.capabilities.capacities[cid] = n
    for name, (cap, used) in (models or {}).items():
        m = info.capabilities.constraints.PerCapability[cap_id].models[name]
        m.capacity = cap
        m.capacityInUse = used
    return bytes(info.SerializeToString())


def _ai(
    pipeline: str, payload: dict[str, object], *, model: str | None = "m1", stream: bool = False
) -> Any:
    from livepeer.client._routes import Request

    return Request(pipeline, model, payload, "rid-1", Deadline(300), stream=stream)


@pytest.mark.parametrize("drive_", RUNNERS)
def test_paid_ai_request_buys_credit_for_the_output_pixels(srv: Loopback, drive_: Any) -> None:
    from livepeer.client._routes import Probe, ai

    srv.json("/generate-live-payment", {"payment": "PAY", "segCreds": "SEG", "state": {"s": 1}})
    srv.queue("/text-to-image", (200, b'{"images": []}'))
    info = _orch_info(srv.url, price=5)
    probe = Probe(srv.url, "ai", ok=True, price=5.0, info=info)
    req = _ai(
        "text-to-image", {"prompt": "p", "width": 512, "height": 256, "num_images_per_prompt": 2}
    )
    signer = Signer(srv.url, {"X-Api-Key": "k"})
    with Gateway(orch_url=srv.url) as gw:
        reply = drive_(ai.attempt(signer, ZERO_IDENT, probe, req, force_payment=False), gw)
    assert reply.status == 200
    pay, call = srv.seen
    assert pay.json() == {
        "orchestrator": base64.b64encode(info).decode(),
        "ManifestID": "27_m1",  # go-livepeer: capability id and model
        "inPixels": 512 * 256 * 2,
    }
    assert (call.path, call.headers["Livepeer-Payment"], call.headers["Livepeer-Segment"]) == (
        "/text-to-image",
        "PAY",
        "SEG",
    )
    assert call.headers["X-Request-Id"] == "rid-1"
    assert call.headers["Accept"] == "*/*"  # httpx default: not an event stream
    body = call.json()
    assert {k: body[k] for k in ("prompt", "width", "height", "num_images_per_prompt")} == {
        "prompt": "p",
        "width": 512,
        "height": 256,
        "num_images_per_prompt": 2,
    }


@pytest.mark.parametrize(("price", "signer_url", "status"), [(0.0, True, 200)])
def test_unpaid_ai_request_carries_an_offchain_segment(
    srv: Loopback, price: float, signer_url: bool, status: int
) -> None:
    from livepeer.client._proto import lp_rpc_pb2 as pb
    from livepeer.client._routes import Probe, ai

    srv.queue("/generate-live-payment", (status, b"{}"))
    srv.queue("/llm", (200, b"data: x\n\n"))
    info = _orch_info(srv.url + "/", price=int(price))
    probe = Probe(srv.url, "ai", ok=True, price=price, info=info)
    req = _ai("llm", {"messages": [], "model_id": "mine"}, stream=True)
    signer = Signer(srv.url if signer_url else None, {})
    with Gateway(orch_url=srv.url) as gw:
        op = ai.attempt(signer, ZERO_IDENT, probe, req, force_payment=False)
        reply = run(op, gw)
        reply.stream.close()
    call = srv.seen[-1]
    assert [s.path for s in srv.seen] == (
        ["/generate-live-payment", "/llm"] if price and signer_url else ["/llm"]
    )
    assert "Livepeer-Payment" not in call.headers
    seg = pb.SegData()
    seg.ParseFromString(base64.b64decode(call.headers["Livepeer-Segment"]))
    assert (seg.manifestId, seg.auth_token.token) == (b"rid-1", b"tok")
    assert call.headers["Accept"] == "text/event-stream"
    assert call.json() == {"messages": [], "model_id": "mine", "stream": True}


def test_a_priced_ai_request_without_a_signer_is_refused_before_the_call(srv: Loopback) -> None:
    from livepeer.client._routes import Probe, ai

    probe = Probe(srv.url, "ai", ok=True, price=5.0, info=_orch_info(srv.url, price=5))
    with (
        Gateway(orch_url=srv.url) as gw,
        pytest.raises(PaymentError, match="a signer_url is needed"),
    ):
        run(
            ai.attempt(Signer(None, {}), ZERO_IDENT, probe, _ai("llm", {}), force_payment=False), gw
        )
    assert srv.seen == []


def test_ai_call_uses_the_remaining_deadline_and_the_transcoder_url() -> None:
    from livepeer.client._routes import Probe, ai

    probe = Probe(
        "https://o.example:8935", "ai", ok=True, info=_orch_info("https://o.example:9000/")
    )
    step = next(
        ai.attempt(Signer(None, {}), ZERO_IDENT, probe, _ai("upscale", {}), force_payment=False)
    )
    assert step.url == "https://o.example:9000/upscale"
    assert 200 < step.timeout <= 300
    assert "Livepeer-Segment" in step.headers
    bare = Probe("https://o.example:8935", "ai", ok=True)
    step = next(
        ai.attempt(
            Signer(None, {}), ZERO_IDENT, bare, _ai("upscale", {}, model=None), force_payment=False
        )
    )
    assert step.url == "https://o.example:8935/upscale"
    assert step.headers == {"X-Request-Id": "rid-1"}
    assert step.json == {}
    evil = Probe("https://o.example:8935", "ai", ok=True, info=_orch_info("https://evil.example"))
    with pytest.raises(ConnectionError, match="another host"):
        next(
            ai.attempt(Signer(None, {}), ZERO_IDENT, evil, _ai("upscale", {}), force_payment=False)
        )


def test_ai_probe_reading() -> None:
    from livepeer.client._proto import lp_rpc_pb2 as pb
    from livepeer.client._routes.ai import capabilities_message, read_probe

    def reply(body: bytes) -> Reply:
        return Reply(200, {}, body, "u", 0.25)

    down = read_probe("u", "text-to-image", None, ConnectionError("cannot reach u"))
    assert (down.ok, down.reason, down.reachable, down.kind) == (
        False,
        "cannot reach u",
        False,
        "ai",
    )
    bad = read_probe("u", "text-to-image", None, reply(b"\xff\xff\xff"))
    assert (bad.ok, bad.reason) == (False, "GetOrchestrator returned an undecodable message")
    absent = read_probe("u", "text-to-image", "m", reply(_orch_info("t", caps={28: 1})))
    assert (absent.ok, absent.offers, absent.reason, absent.latency) == (
        False,
        False,
        "does not offer text-to-image",
        0.25,
    )
    offered = read_probe(
        "u", "text-to-image", None, reply(_orch_info("t", price=10, pixels=4, caps={27: 1}))
    )
    assert (offered.ok, offered.offers, offered.price, offered.capacity, offered.reason) == (
        True,
        True,
        2.5,
        None,
        "",
    )
    assert offered.info is not None
    assert offered.latency == 0.25
    free = read_probe("u", "text-to-image", "m", reply(_orch_info("t", models={"m": (3, 1)})))
    assert (free.ok, free.capacity) == (True, 2)
    full = read_probe("u", "text-to-image", "m", reply(_orch_info("t", models={"m": (2, 5)})))
    assert (full.ok, full.capacity, full.reason) == (False, 0, "no capacity for text-to-image/m")
    unknown = read_probe("u", "text-to-image", "m", reply(_orch_info("t", models={"m": (0, 0)})))
    assert (unknown.ok, unknown.capacity) == (True, None)
    other_model = read_probe(
        "u", "text-to-image", "x", reply(_orch_info("t", models={"m": (1, 1)}))
    )
    assert (other_model.ok, other_model.capacity) == (True, None)
    no_model = read_probe("u", "text-to-image", None, reply(_orch_info("t", models={"m": (1, 1)})))
    assert no_model.capacity is None
    no_caps = read_probe("u", "text-to-image", None, reply(_orch_info("t", price=7, pixels=0)))
    assert (no_caps.ok, no_caps.price) == (True, 7.0)

    caps = pb.Capabilities()
    caps.ParseFromString(capabilities_message("text-to-image", "m"))
    assert dict(caps.capacities) == {27: 1}
    assert list(caps.constraints.PerCapability[27].models) == ["m"]
    caps.ParseFromString(capabilities_message("llm", None))
    assert dict(caps.capacities) == {33: 1}
    assert list(caps.constraints.PerCapability[33].models) == []


ZERO_IDENT = Identity(ZERO_ADDRESS, "0x")


def test_priced_onchain_byoc_without_a_local_key_names_the_capability() -> None:
    from livepeer.client import ConfigError

    s = Signer("http://127.0.0.1:1", {})
    job = {"capability": "cap-x", "request": "{}", "parameters": "{}"}
    with pytest.raises(ConfigError, match="for 'cap-x' need private_key="):
        s.job_signature(ZERO_IDENT, job, onchain=True, priced=True)
    with pytest.raises(ConfigError, match="for 'cap-y' need private_key="):
        s.byoc_payment({"capability": "cap-y"}, price=(1, 1), seconds=10)
    # Unpriced: a throwaway key signs (go-livepeer checks no reserve at price 0); offchain: nothing.
    sender, sig = s.job_signature(ZERO_IDENT, job, onchain=True, priced=False)
    assert sender.startswith("0x")
    assert sig.startswith("0x")
    assert s.job_signature(ZERO_IDENT, job, onchain=False, priced=True)[1] == ""


@pytest.mark.parametrize(("status", "forgotten"), [(400, True), (481, True), (500, False)])
def test_paid_ai_signer_refusal_drops_the_state_chain_only_when_unusable(
    srv: Loopback, status: int, forgotten: bool
) -> None:
    from livepeer.client._routes import Probe, ai

    srv.json("/generate-live-payment", {"payment": "P1", "segCreds": "S1", "state": {"s": 1}})
    srv.json("/generate-live-payment", {"error": {"message": "no"}}, status=status)
    probe = Probe(srv.url, "ai", ok=True, price=5.0, info=_orch_info(srv.url, price=5))
    srv.queue("/text-to-image", (200, b"{}"))
    signer = Signer(srv.url, {})
    with Gateway(orch_url=srv.url) as gw:
        req = _ai("text-to-image", {"prompt": "p"})
        assert (
            run(ai.attempt(signer, ZERO_IDENT, probe, req, force_payment=False), gw).status == 200
        )
        assert len(signer.states) == 1
        with pytest.raises(SignerError) as info:
            run(ai.attempt(signer, ZERO_IDENT, probe, req, force_payment=False), gw)
    assert info.value.status_code == status
    assert (len(signer.states) == 0) is forgotten
    assert [s.path for s in srv.seen].count("/text-to-image") == 1  # no request without payment


def test_ai_probe_with_exactly_one_free_slot_is_usable() -> None:
    from livepeer.client._routes.ai import read_probe

    one = read_probe(
        "u", "text-to-image", "m", Reply(200, {}, _orch_info("t", models={"m": (2, 1)}), "u", 0.1)
    )
    assert (one.ok, one.capacity) == (True, 1)
