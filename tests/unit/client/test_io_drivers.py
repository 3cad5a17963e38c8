"""The drivers of sans-IO ops (``_io``): the ``Race`` step's branches and the transport layer under them.

Races run against a loopback server whose handlers are scripted per path: a "held" handler answers only when
the test releases it (an event), so "the race returned before that call answered" is certain, not timed. Both
drivers run the same scenarios: the sync one in a worker thread of the test's event loop, the async one on
it. Each scenario asserts what a caller sees (the race's result list), what the op's ``late``/``drop``
callbacks receive, which requests reached the server, and that closing the client ends the background work.
A few handlers wait (bounded) for a request that must *not* come; that wait only gives a broken driver time
to show itself and never fails a correct one.

The transport layer (request building, content decoding, reply bodies, ``InfoCall``, ``Wait``) runs against
``httpx.MockTransport`` replies, which show the request exactly as httpx would send it (its timeouts, headers
and URL) and let a reply carry raw compressed bytes.
"""

from __future__ import annotations

import base64
import gzip
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from livepeer.client import ConnectionError, Gateway, LimitError, LivepeerError, ProtocolError
from livepeer.client._io import AsyncIO, SyncIO, adrive, drive
from livepeer.client._ops import Call, InfoCall, Parallel, Race, Reply, Wait
from livepeer.client._transport import Background, background_of

# Bounds no correct run reaches. A race whose caller waits for its ``timeout`` (NEVER) instead of returning
# at its first good answer, or when every call finished, trips HANG: a hang detector, far above the
# second or two these races take even on a loaded machine, not a measurement.
NEVER = 300.0
HANG = 30.0
Handler = Callable[[BaseHTTPRequestHandler], None]

pytestmark = [
    pytest.mark.anyio,
    # A race worker that dies of an exception loses its calls silently: make that a failure.
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ------------------------------------------------------------------------------------ loopback server


class Server:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[str] = []
        self.cond = threading.Condition()
        self.stop = threading.Event()  # set at teardown: every held handler lets go
        self.url = ""

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def saw(self, path: str, within: float = 0.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: path in self.seen, within)

    def count(self, path: str) -> int:
        with self.cond:
            return self.seen.count(path)


def answer(status: int = 200, body: bytes = b"ok") -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:  # the client is gone (a close cut the call): nothing to answer
            h.close_connection = True

    return handle


def held(release: threading.Event, status: int = 200, body: bytes = b"late") -> Handler:
    """Answer once ``release`` is set (or the server stops)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        stop: threading.Event = h.server.state.stop  # type: ignore[attr-defined]
        while not (release.is_set() or stop.is_set()):
            release.wait(0.05)
        answer(status, body)(h)

    return handle


def unless(
    server: Server, path: str, overlap: list[bool], then: Handler, within: float = 0.5
) -> Handler:
    """Record in ``overlap`` whether ``path`` arrived while this request was in flight, then ``then``."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        overlap.append(server.saw(path, within))
        then(h)

    return handle


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with state.cond:
                state.seen.append(self.path)
                state.cond.notify_all()
            state.routes.get(self.path, answer(404, b"no route"))(self)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    httpd.daemon_threads = True
    httpd.state = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def dead() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# ------------------------------------------------------------------------------------------- races


class Book:
    """The Race's callbacks: what ``enough`` saw, what ``late`` and ``drop`` received (thread-safe)."""

    def __init__(self, enough: Callable[[int, Reply | LivepeerError], bool] | None = None) -> None:
        self.cond = threading.Condition()
        self.late: list[tuple[int, Reply | LivepeerError]] = []
        self.dropped: list[int] = []
        self._enough = enough or (lambda i, r: isinstance(r, Reply) and r.status == 200)

    def race(self, calls: list[Call], **kw: Any) -> Race:
        return Race(calls, enough=self._enough, late=self._late, drop=self._drop, **kw)

    def _late(self, i: int, r: Reply | LivepeerError) -> None:
        with self.cond:
            self.late.append((i, r))
            self.cond.notify_all()

    def _drop(self, i: int) -> None:
        with self.cond:
            self.dropped.append(i)
            self.cond.notify_all()

    async def until(self, condition: Callable[[], bool]) -> None:
        def wait() -> bool:
            with self.cond:
                return self.cond.wait_for(condition, 20.0)

        assert await anyio.to_thread.run_sync(wait), "condition not reached"

    def lates(self) -> dict[int, Reply | LivepeerError]:
        with self.cond:
            out = dict(self.late)
            assert len(out) == len(self.late), f"late twice: {self.late}"
            return out


MODES = ["sync", "async"]


async def race(gw: Gateway, mode: str, step: Race) -> list[Reply | LivepeerError | None]:
    def op() -> Any:
        return (yield step)

    with anyio.fail_after(HANG):
        if mode == "sync":
            io = gw._dispatch.sync_io()
            return await anyio.to_thread.run_sync(drive, op(), io, abandon_on_cancel=True)
        return await adrive(op(), gw._dispatch.async_io())


def _bg(gw: Gateway, mode: str) -> Background:
    io = gw._dispatch.sync_io() if mode == "sync" else gw._dispatch.async_io()
    bg = background_of(io.orch)
    assert bg is not None
    return bg


async def close(gw: Gateway, mode: str) -> Background:
    """Close the Gateway; the background owner of the driver's client, for checks after the close."""
    bg = _bg(gw, mode)
    if mode == "sync":
        await anyio.to_thread.run_sync(gw.close)
    else:
        await gw.aclose()
    return bg


def ended(bg: Background) -> bool:
    return not bg._threads and not bg._scopes and not bg._tasks


def status(r: object) -> int | None:
    return r.status if isinstance(r, Reply) else None


@pytest.mark.parametrize("mode", MODES)
async def test_first_good_answer_wins_and_the_rest_are_handed_over_late(
    server: Server, mode: str
) -> None:
    release = threading.Event()
    for p in ("/0", "/2", "/4"):
        server.route(p, held(release, body=p.encode()))
    server.route("/1", answer(200, b"good"))
    u = server.url
    # The invalid URL makes httpx raise something that is not an httpx error: the worker's own failure path.
    calls = [Call("GET", u + "/0"), Call("GET", u + "/1"), Call("GET", u + "/2")]
    calls += [Call("GET", "http://[::1"), Call("GET", u + "/4")]
    book = Book()
    gw = Gateway(orch_url=u)
    # Two workers and no widening: index 3 can only be taken by worker 0 after the race returned.
    results = await race(gw, mode, book.race(calls, timeout=NEVER, first=2, widen_after=NEVER))
    assert [status(r) for r in results] == [None, 200, None, None, None]
    assert results[1].body == b"good"  # type: ignore[union-attr]
    assert book.late == []
    release.set()
    await book.until(lambda: len(book.late) == 4)
    late = book.lates()
    assert sorted(late) == [0, 2, 3, 4]
    for i in (0, 2, 4):
        assert isinstance(late[i], Reply)
        assert (late[i].status, late[i].body, late[i].url) == (200, f"/{i}".encode(), calls[i].url)  # type: ignore[union-attr]
    assert isinstance(late[3], ConnectionError)
    assert str(late[3]) == "cannot reach <invalid url>: internal error"
    assert book.dropped == []
    assert [server.count(p) for p in ("/0", "/1", "/2", "/4")] == [1, 1, 1, 1]
    bg = await close(gw, mode)
    assert ended(bg)
    assert book.dropped == []


@pytest.mark.parametrize("mode", MODES)
async def test_when_no_answer_is_good_every_result_is_returned(
    server: Server, dead: str, mode: str
) -> None:
    u = server.url
    server.route("/0", answer(500, b"e0"))
    server.route("/2", answer(404, b"e2"))
    server.route("/4", answer(500, b"e4"))

    def slow(h: BaseHTTPRequestHandler) -> None:
        # The last answer comes after the others: a caller that returned early has None for it.
        server.saw("/never", 1.0)
        answer(503, b"e5")(h)

    server.route("/5", slow)
    calls = [Call("GET", u + "/0"), Call("GET", dead + "/1"), Call("GET", u + "/2")]
    calls += [Call("GET", "http://[::1"), Call("GET", u + "/4"), Call("GET", u + "/5")]
    book = Book()
    gw = Gateway(orch_url=u)
    results = await race(gw, mode, book.race(calls, timeout=NEVER, first=2, limit=2))
    assert [status(r) for r in results] == [500, None, 404, None, 500, 503]
    assert isinstance(results[1], ConnectionError)
    assert "ConnectError" in str(results[1])
    assert isinstance(results[3], ConnectionError)
    assert "internal error" in str(results[3])
    assert [r.body for r in results if isinstance(r, Reply)] == [b"e0", b"e2", b"e4", b"e5"]
    assert [server.count(p) for p in ("/0", "/2", "/4", "/5")] == [1, 1, 1, 1]
    bg = await close(gw, mode)
    assert ended(bg)
    assert (book.late, book.dropped) == ([], [])


@pytest.mark.parametrize("mode", MODES)
async def test_a_raising_enough_is_no_win(server: Server, mode: str) -> None:
    judged = threading.Event()

    def enough(i: int, r: Reply | LivepeerError) -> bool:
        if i == 0:
            judged.set()
            raise ValueError("parser bug")
        return True

    def after_judged(h: BaseHTTPRequestHandler) -> None:
        judged.wait(20)
        answer(200, b"second")(h)

    server.route("/0", answer(200, b"first"))
    server.route("/1", after_judged)
    book = Book(enough)
    gw = Gateway(orch_url=server.url)
    calls = [Call("GET", server.url + "/0"), Call("GET", server.url + "/1")]
    results = await race(gw, mode, book.race(calls, timeout=NEVER))
    assert isinstance(results[1], Reply)
    assert results[1].body == b"second"
    await close(gw, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_widening_starts_one_more_call_per_period_up_to_the_limit(
    server: Server, mode: str
) -> None:
    release = threading.Event()
    overlap: list[bool] = []
    u = server.url
    server.route("/0", held(release))
    # Once widened to two, the third call cannot start while the first two are out.
    server.route("/1", unless(server, "/2", overlap, answer(200, b"good")))
    server.route("/2", held(release))
    server.route("/3", held(release))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(4)]
    step = book.race(calls, timeout=20.0, first=1, limit=2, widen_after=0.05, background=2)
    results = await race(gw, mode, step)
    assert [status(r) for r in results] == [None, 200, None, None]
    assert overlap == [False]
    release.set()
    await book.until(lambda: len(book.late) == 3)
    assert sorted(book.lates()) == [0, 2, 3]
    bg = await close(gw, mode)
    assert ended(bg)


@pytest.mark.parametrize("mode", MODES)
async def test_each_widening_adds_one_step_per_period(server: Server, mode: str) -> None:
    # With a limit of three, the first widening (after 2 s) starts one more call, not two: the third may
    # start only a full period later, long after the second has answered.
    release = threading.Event()
    overlap: list[bool] = []
    u = server.url
    server.route("/0", held(release))
    server.route("/1", unless(server, "/2", overlap, answer(200, b"good"), within=0.3))
    server.route("/2", held(release))
    server.route("/3", held(release))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(4)]
    step = book.race(calls, timeout=20.0, first=1, limit=3, widen_after=2.0)
    results = await race(gw, mode, step)
    assert [status(r) for r in results] == [None, 200, None, None]
    assert overlap == [False]
    release.set()
    bg = await close(gw, mode)
    assert ended(bg)


@pytest.mark.parametrize("mode", MODES)
async def test_a_waiting_caller_sleeps(server: Server, mode: str) -> None:
    # Every call held and nothing left to widen to: the caller sleeps until its timeout. CPU time of the
    # caller's own thread, not wall time, is what is compared: a caller that polls burns it.
    release = threading.Event()
    u = server.url
    server.route("/0", held(release))
    server.route("/1", held(release))
    book = Book()
    gw = Gateway(orch_url=u)
    step = book.race([Call("GET", f"{u}/{i}") for i in range(2)], timeout=1.5, first=1, limit=1)

    def op() -> Any:
        return (yield step)

    if mode == "sync":

        def timed() -> tuple[Any, float]:
            t0 = time.thread_time()
            out = drive(op(), gw._dispatch.sync_io())
            return out, time.thread_time() - t0

        results, cpu = await anyio.to_thread.run_sync(timed)
    else:
        aio = gw._dispatch.async_io()
        t0 = time.thread_time()
        results = await adrive(op(), aio)
        cpu = time.thread_time() - t0
    assert results == [None, None]
    assert cpu < 0.1, f"the caller used {cpu:.3f} s of CPU while waiting 1.5 s"
    release.set()
    await close(gw, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_no_second_call_before_widen_after(server: Server, mode: str) -> None:
    overlap: list[bool] = []
    u = server.url
    server.route("/0", unless(server, "/1", overlap, answer(200, b"good")))
    server.route("/1", answer(200, b"one"))
    server.route("/2", answer(200, b"two"))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(3)]
    step = book.race(calls, timeout=NEVER, first=1, limit=4, widen_after=NEVER)
    results = await race(gw, mode, step)
    assert [status(r) for r in results] == [200, None, None]
    assert overlap == [False]
    # The one worker goes on in the background with the calls not started.
    await book.until(lambda: len(book.late) == 2)
    late = book.lates()
    assert [(i, status(late[i])) for i in sorted(late)] == [(1, 200), (2, 200)]
    bg = await close(gw, mode)
    assert ended(bg)


@pytest.mark.parametrize("mode", MODES)
async def test_only_background_workers_go_on_after_the_return(
    server: Server, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three workers on held calls when the race times out; with background=1 only worker 0 goes on, so the
    # three calls left run one at a time. (No yielding to the caller here: nothing else holds them back.)
    monkeypatch.setattr(Background, "YIELD_MAX", 0.0)
    release = threading.Event()
    overlap: list[bool] = []
    u = server.url
    rest = ("/3", "/4", "/5")
    for i in range(3):
        server.route(f"/{i}", held(release))

    def alone(h: BaseHTTPRequestHandler) -> None:
        with server.cond:
            mine = sum(server.seen.count(p) for p in rest)
            overlap.append(
                server.cond.wait_for(lambda: sum(server.seen.count(p) for p in rest) > mine, 0.3)
            )
        answer(200, b"bg")(h)

    for p in rest:
        server.route(p, alone)
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(6)]
    results = await race(gw, mode, book.race(calls, timeout=1.0, first=3, widen_after=NEVER))
    assert results == [None] * 6
    release.set()
    await book.until(lambda: len(book.late) == 6)
    assert overlap == [False, False, False]
    bg = await close(gw, mode)
    assert ended(bg)


@pytest.mark.parametrize("mode", MODES)
async def test_close_after_the_return_drops_what_is_left_once(server: Server, mode: str) -> None:
    release = threading.Event()  # never set: only the close ends these calls
    u = server.url
    for i in (0, 2, 3, 4):
        server.route(f"/{i}", held(release))
    server.route("/1", answer(200, b"good"))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(5)]
    step = book.race(calls, timeout=NEVER, first=2, widen_after=NEVER, background=2)
    results = await race(gw, mode, step)
    assert [status(r) for r in results] == [None, 200, None, None, None]
    # Both workers go on (background=2): one on /0, the other takes /2.
    assert await anyio.to_thread.run_sync(server.saw, "/0", 20.0)
    assert await anyio.to_thread.run_sync(server.saw, "/2", 20.0)
    bg = await close(gw, mode)
    assert ended(bg)
    await book.until(lambda: len(book.dropped) >= 4)
    # Cut short by the close: released (dropped) exactly once each, never reported as failures.
    assert sorted(book.dropped) == [0, 2, 3, 4]
    assert book.late == []
    assert server.count("/3") == server.count("/4") == 0


async def test_sync_close_while_racing_drops_the_calls_not_started(server: Server) -> None:
    u = server.url
    server.route("/0", held(threading.Event()))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(3)]
    # No race timeout: only the close can end the caller's wait (it slept out the timeout before).
    step = book.race(calls, timeout=NEVER, first=1, limit=1, widen_after=NEVER)
    out: list[list[Reply | LivepeerError | None]] = []

    async def run() -> None:
        out.append(await race(gw, "sync", step))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        assert await anyio.to_thread.run_sync(server.saw, "/0", 20.0)
        bg = await close(gw, "sync")
    ((first, *rest),) = out
    # The call in flight was cut by the close while the caller still waited: its failure is a result.
    assert isinstance(first, ConnectionError)
    assert rest == [None, None]
    assert sorted(book.dropped) == [1, 2]
    assert book.late == []
    assert ended(bg)


async def test_async_close_does_not_drop_a_call_that_already_failed(server: Server) -> None:
    # A worker whose call failed (here: a URL httpx refuses) goes on to a held call; the close releases
    # what is still running or never ran, not the call whose failure was already handed over.
    release = threading.Event()  # never set
    u = server.url
    for i in (0, 3, 4):
        server.route(f"/{i}", held(release))
    server.route("/1", answer(200, b"good"))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/0"), Call("GET", f"{u}/1"), Call("GET", "http://[::1")]
    calls += [Call("GET", f"{u}/3"), Call("GET", f"{u}/4")]
    step = book.race(calls, timeout=NEVER, first=2, widen_after=NEVER, background=2)
    results = await race(gw, "async", step)
    assert status(results[1]) == 200
    assert await anyio.to_thread.run_sync(server.saw, "/3", 20.0)
    failed = [r for r in [results[2], book.lates().get(2)] if r is not None]
    assert len(failed) == 1
    assert "internal error" in str(failed[0])
    bg = await close(gw, "async")
    assert ended(bg)
    await book.until(lambda: len(book.dropped) >= 3)
    assert sorted(book.dropped) == [0, 3, 4]


async def test_async_close_while_racing_drops_every_call(server: Server) -> None:
    u = server.url
    server.route("/0", held(threading.Event()))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(3)]
    # No race timeout: only the close can end the caller's wait (it slept out the timeout before).
    step = book.race(calls, timeout=NEVER, first=1, limit=1, widen_after=NEVER)
    out: list[list[Reply | LivepeerError | None]] = []

    async def run() -> None:
        out.append(await race(gw, "async", step))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        assert await anyio.to_thread.run_sync(server.saw, "/0", 20.0)
        bg = await close(gw, "async")
    assert out == [[None, None, None]]
    assert sorted(book.dropped) == [0, 1, 2]
    assert book.late == []
    assert ended(bg)


@pytest.mark.parametrize("mode", MODES)
async def test_background_calls_wait_for_the_callers_next_request(
    server: Server, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the caller's next request may release the background call (no yield bound in this test).
    monkeypatch.setattr(Background, "YIELD_MAX", NEVER)
    release = threading.Event()
    u = server.url
    for i in range(3):
        server.route(f"/{i}", held(release))
    server.route("/3", answer(200, b"3"))
    server.route("/next", answer(200, b"next"))
    book = Book()
    gw = Gateway(orch_url=u)
    calls = [Call("GET", f"{u}/{i}") for i in range(4)]
    # Three workers on held calls when the race times out: only worker 0 may take /3, and only afterwards.
    step = book.race(calls, timeout=1.0, first=3, widen_after=NEVER)
    results = await race(gw, mode, step)
    assert results == [None] * 4
    release.set()
    await book.until(lambda: len(book.late) == 3)
    assert not await anyio.to_thread.run_sync(server.saw, "/3", 0.5)

    def op() -> Any:
        return (yield Call("GET", u + "/next"))

    if mode == "sync":
        await anyio.to_thread.run_sync(drive, op(), gw._dispatch.sync_io())
    else:
        await adrive(op(), gw._dispatch.async_io())
    await book.until(lambda: len(book.late) == 4)
    assert server.seen.index("/next") < server.seen.index("/3")
    await close(gw, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_without_a_background_owner_a_race_awaits_every_call(
    server: Server, mode: str
) -> None:
    release = threading.Event()
    u = server.url
    server.route("/0", answer(200, b"good"))

    def slow(h: BaseHTTPRequestHandler) -> None:
        release.wait(1.0)  # a race with a background owner would have returned by now
        answer(200, b"slow")(h)

    server.route("/1", slow)
    book = Book()
    calls = [Call("GET", f"{u}/{i}") for i in range(2)]
    step = book.race(calls, timeout=NEVER)
    if mode == "sync":
        with httpx.Client() as user, Gateway(orch_url=u, http_client=user) as gw:
            results = await race(gw, mode, step)
    else:
        async with httpx.AsyncClient() as auser:
            gw = Gateway(orch_url=u, http_client=auser)
            results = await race(gw, mode, step)
            await gw.aclose()
    assert [status(r) for r in results] == [200, 200]
    assert (book.late, book.dropped) == ([], [])


# -------------------------------------------------------------------------------- transport layer


class Raw(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A reply body exactly as sent (httpx reads a ``content=`` body eagerly, which a driver never sees)."""

    def __init__(self, data: bytes, piece: int = 16 << 10) -> None:
        self.parts = [data[i : i + piece] for i in range(0, len(data), piece)]

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


def resp(
    status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, stream=Raw(body))


def mock_io(handler: Callable[[httpx.Request], httpx.Response]) -> SyncIO:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return SyncIO(client, lambda: client, None)  # type: ignore[arg-type]


def one(call: Call | InfoCall, io: SyncIO) -> Reply:
    def op() -> Any:
        return (yield call)

    return drive(op(), io)


def test_requests_carry_the_call_timeout_with_a_bounded_connect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return resp()

    io = mock_io(handler)
    one(Call("GET", "http://o.test/a", timeout=10.0), io)
    one(Call("GET", "http://o.test/b", timeout=0.5), io)
    assert [r.extensions["timeout"] for r in seen] == [
        {"connect": 3.0, "read": 10.0, "write": 10.0, "pool": 10.0},
        {"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5},
    ]


def test_accept_encoding_defaults_to_what_we_can_inflate_in_bounded_steps() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return resp()

    io = mock_io(handler)
    one(Call("GET", "http://o.test/a"), io)
    one(Call("GET", "http://o.test/b", headers={"Accept-Encoding": "identity"}), io)
    # A client whose own default names encodings we cannot inflate in bounded steps (httpx adds br/zstd
    # when their libraries are installed; a user's http_client may set anything).
    client = httpx.Client(transport=httpx.MockTransport(handler), headers={"Accept-Encoding": "br"})
    one(Call("GET", "http://o.test/c"), SyncIO(client, lambda: client, None))  # type: ignore[arg-type]
    assert [r.headers["accept-encoding"] for r in seen] == [
        "gzip, deflate",
        "identity",
        "gzip, deflate",
    ]


def test_url_credentials_become_an_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return resp()

    io = mock_io(handler)
    one(Call("GET", "http://us%40er:p%3Ass@o.test:81/a?x=1"), io)
    one(Call("GET", "http://u:p@o.test/b", headers={"authorization": "Bearer mine"}), io)
    one(Call("GET", "http://o.test/c"), io)
    one(
        Call("GET", "http://a@b:c@o.test/d"), io
    )  # an unescaped "@" in the credentials: the last one ends them
    first, second, third, fourth = seen
    assert str(first.url) == "http://o.test:81/a?x=1"  # httpx logs the URL: no credentials in it
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert str(second.url) == "http://o.test/b"
    assert second.headers["authorization"] == "Bearer mine"  # the caller's own header wins
    assert "authorization" not in third.headers
    assert str(fourth.url) == "http://o.test/d"
    assert fourth.headers["authorization"] == "Basic " + base64.b64encode(b"a@b:c").decode()


def _reply(
    body: bytes, encoding: str | None = None, status: int = 200
) -> Callable[[httpx.Request], httpx.Response]:
    headers = {"Content-Encoding": encoding} if encoding is not None else {}

    def handler(request: httpx.Request) -> httpx.Response:
        return resp(status, body, headers)

    return handler


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)


BIG = bytes(range(256)) * 1024  # 256 KiB: several decode pieces


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [
        ("gzip", gzip.compress(BIG)),
        ("x-gzip", gzip.compress(BIG)),
        (" GZIP ", gzip.compress(BIG)),
        ("deflate", _deflate(BIG)),
        ("identity", BIG),
        ("", BIG),
        (None, BIG),
    ],
)
def test_reply_bodies_are_decoded_whole(encoding: str | None, packed: bytes) -> None:
    reply = one(Call("GET", "http://o.test/x"), mock_io(_reply(packed, encoding)))
    assert reply.body == BIG


def test_unsupported_or_corrupt_encodings_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match=r"unsupported Content-Encoding 'br'"):
        one(Call("GET", "http://o.test/x"), mock_io(_reply(b"xx", "br")))
    with pytest.raises(ProtocolError, match="corrupt compressed body"):
        one(Call("GET", "http://o.test/x"), mock_io(_reply(b"not gzip at all", "gzip")))
    with pytest.raises(ProtocolError, match="corrupt compressed body"):
        one(Call("GET", "http://o.test/x"), mock_io(_reply(b"not deflate", "deflate")))


def test_size_limit_names_decompression() -> None:
    io = mock_io(_reply(gzip.compress(b"z" * 1000), "gzip"))
    with pytest.raises(LimitError, match=r"is over 999 bytes \(decompressed\)"):
        one(Call("GET", "http://o.test/x", limit=999), io)
    assert one(Call("GET", "http://o.test/x", limit=1000), io).body == b"z" * 1000
    with pytest.raises(LimitError) as info:
        one(Call("GET", "http://o.test/x", limit=10), mock_io(_reply(b"z" * 11)))
    assert str(info.value).endswith("is over 10 bytes (see livepeer.client.limits)")


def test_streamed_bodies_inflate_in_bounded_pieces() -> None:
    io = mock_io(_reply(gzip.compress(bytes(1 << 20)), "gzip"))
    reply = one(Call("GET", "http://o.test/x", stream=True), io)
    assert reply.body == b""
    assert reply.stream is not None
    pieces = list(reply.stream.chunks)
    reply.stream.close()
    assert b"".join(pieces) == bytes(1 << 20)
    assert max(len(p) for p in pieces) == 64 << 10  # a gzip bomb never expands in one go


@pytest.mark.parametrize("code", [300, 404, 500])
def test_a_stream_call_answered_with_a_non_success_reads_the_body(code: int) -> None:
    reply = one(Call("GET", "http://o.test/x", stream=True), mock_io(_reply(b"why", status=code)))
    assert (reply.status, reply.body, reply.stream) == (code, b"why", None)


async def test_async_streams_and_bodies_decode_alike() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        code = 200 if request.url.path == "/s" else 300
        return resp(code, gzip.compress(BIG), {"Content-Encoding": "gzip"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        io = AsyncIO(client, lambda: client, None)  # type: ignore[arg-type]

        def op(path: str) -> Any:
            return (yield Call("GET", "http://o.test" + path, stream=True))

        streamed = await adrive(op("/s"), io)
        assert streamed.body == b""
        pieces = [p async for p in streamed.stream.chunks]
        await streamed.stream.close()
        assert b"".join(pieces) == BIG
        assert max(len(p) for p in pieces) == 64 << 10
        redirect = await adrive(op("/r"), io)
        assert (redirect.status, redirect.body, redirect.stream) == (300, BIG, None)


def test_the_async_in_flight_default() -> None:
    # The Dispatcher builds its AsyncIO with the default: it bounds the caller's concurrent calls.
    client = httpx.AsyncClient()
    assert AsyncIO(client, lambda: client, None).max_in_flight == 32  # type: ignore[arg-type]


class _Info:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def get(self, *args: Any) -> bytes:
        self.calls.append(args)
        return b"orchestrator info"


@pytest.mark.parametrize("mode", MODES)
async def test_info_calls_are_replies_of_the_grpc_answer(mode: str) -> None:
    info = _Info()
    call = InfoCall("https://o.test:8935", b"addr", b"sig", b"caps", 2.5)

    def op() -> Any:
        return (yield call)

    if mode == "sync":
        client = httpx.Client()
        reply = drive(op(), SyncIO(client, lambda: client, info))  # type: ignore[arg-type]
    else:
        aclient = httpx.AsyncClient()
        reply = await adrive(op(), AsyncIO(aclient, lambda: aclient, info))  # type: ignore[arg-type]
    assert (reply.status, reply.headers, reply.body, reply.url) == (
        200,
        {},
        b"orchestrator info",
        "https://o.test:8935",
    )
    assert 0 <= reply.elapsed < 60
    assert info.calls == [("https://o.test:8935", b"addr", b"sig", b"caps", 2.5)]


class _Timed(threading.Event):
    """An event that records the timeouts it is waited with."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return super().wait(timeout)


def test_sync_wait_shares_one_bound_between_its_events() -> None:
    a, b = _Timed(), _Timed()

    def op() -> Any:
        yield Wait([a, b], 0.2)

    client = httpx.Client()
    drive(op(), SyncIO(client, lambda: client, None))  # type: ignore[arg-type]
    ((ta,), (tb,)) = a.timeouts, b.timeouts
    assert ta is not None
    assert tb is not None
    assert 0 < ta <= 0.2
    assert 0 <= tb <= ta  # what is left of the same bound, never more


async def test_async_wait_backs_off_from_1_to_16_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    ev = threading.Event()
    pauses: list[float] = []
    sleep = anyio.sleep

    async def counted(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 7:
            ev.set()
        await sleep(0)

    monkeypatch.setattr(anyio, "sleep", counted)
    aclient = httpx.AsyncClient()
    io = AsyncIO(aclient, lambda: aclient, None)  # type: ignore[arg-type]

    def op() -> Any:
        yield Wait([ev], NEVER)

    await adrive(op(), io)
    assert pauses == [0.001, 0.002, 0.004, 0.008, 0.016, 0.016, 0.016]


@pytest.mark.parametrize("mode", MODES)
async def test_parallel_with_limit_one_runs_one_call_at_a_time(server: Server, mode: str) -> None:
    overlap: list[bool] = []
    server.route("/0", unless(server, "/1", overlap, answer(200, b"0")))
    server.route("/1", answer(200, b"1"))
    u = server.url

    def op() -> Any:
        return (yield Parallel([Call("GET", u + "/0"), Call("GET", u + "/1")], limit=1))

    with Gateway(orch_url=u) as gw:
        if mode == "sync":
            results = await anyio.to_thread.run_sync(drive, op(), gw._dispatch.sync_io())
        else:
            results = await adrive(op(), gw._dispatch.async_io())
    assert [r.body for r in results] == [b"0", b"1"]
    assert overlap == [False]


def test_plain_replies_are_logged_with_their_status_and_duration(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/p", answer(201, b"made"))
    caplog.set_level("DEBUG", logger="livepeer.client")
    with Gateway(orch_url=server.url) as gw:
        reply = one(Call("GET", server.url + "/p"), gw._dispatch.sync_io())
    assert (reply.status, reply.body) == (201, b"made")
    assert 0 <= reply.elapsed < 60
    lines = [r.getMessage() for r in caplog.records if "/p -> 201 in " in r.getMessage()]
    assert len(lines) == 1
    assert 0 <= float(lines[0].split(" in ", 1)[1].split(" ms", 1)[0]) < 60_000


async def test_async_plain_replies_are_logged_with_their_status_and_duration(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/p", answer(201, b"made"))
    caplog.set_level("DEBUG", logger="livepeer.client")

    def op() -> Any:
        return (yield Call("GET", server.url + "/p"))

    async with Gateway(orch_url=server.url) as gw:
        reply = await adrive(op(), gw._dispatch.async_io())
    assert (reply.status, reply.body) == (201, b"made")
    assert 0 <= reply.elapsed < 60
    lines = [r.getMessage() for r in caplog.records if "/p -> 201 in " in r.getMessage()]
    assert len(lines) == 1


# ------------------------------------------------------------------------ connections after errors


def _connections_to(port: int) -> int:
    """TCP sockets of this process (any state) whose peer is 127.0.0.1:port."""
    import os
    from pathlib import Path

    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[9] in inodes and int(parts[2].split(":")[1], 16) == port:
            count += 1
    return count


@pytest.mark.parametrize("mode", MODES)
async def test_a_reply_over_its_limit_closes_its_connection(server: Server, mode: str) -> None:
    server.route("/big", answer(200, b"x" * 200_000))
    server.route("/ok", answer(200, b"fine"))
    port = int(server.url.rsplit(":", 1)[1])

    def op(path: str, limit: int) -> Any:
        return (yield Call("GET", server.url + path, limit=limit))

    async with Gateway(orch_url=server.url) as gw:
        if mode == "sync":
            io = gw._dispatch.sync_io()
            assert (await anyio.to_thread.run_sync(drive, op("/ok", 10), io)).body == b"fine"
            assert _connections_to(port) == 1  # kept alive for the next call
            with pytest.raises(LimitError) as info:
                await anyio.to_thread.run_sync(drive, op("/big", 1000), io)
        else:
            aio = gw._dispatch.async_io()
            assert (await adrive(op("/ok", 10), aio)).body == b"fine"
            assert _connections_to(port) == 1
            with pytest.raises(LimitError) as info:
                await adrive(op("/big", 1000), aio)
        # Half-read, the connection cannot serve another request: closed at once, not left to the pool.
        assert _connections_to(port) == 0
        assert "over 1000 bytes" in str(info.value)


# ------------------------------------------------------------------------------- drivers and TLS


def test_the_verifying_context_is_one_per_process_and_verifies() -> None:
    import ssl

    from livepeer.client._io import verified_ssl_context

    ctx = verified_ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert verified_ssl_context() is ctx


@pytest.mark.parametrize("mode", MODES)
async def test_an_op_is_closed_when_its_driver_fails(mode: str) -> None:
    # Anything but a LivepeerError is not the op's to handle: the driver raises it and closes the op at
    # once (its cleanup runs now, not whenever the generator is collected).
    cleaned: list[str] = []

    def op() -> Any:
        try:
            yield Call("GET", "http://[::1")
        finally:
            cleaned.append("op")

    gen = op()
    if mode == "sync":
        client = httpx.Client()
        with pytest.raises(ValueError, match="Invalid IPv6 URL"):
            drive(gen, SyncIO(client, lambda: client, None))  # type: ignore[arg-type]
    else:
        aclient = httpx.AsyncClient()
        with pytest.raises(ValueError, match="Invalid IPv6 URL"):
            await adrive(gen, AsyncIO(aclient, lambda: aclient, None))  # type: ignore[arg-type]
    assert cleaned == ["op"]
