"""The drivers of sans-IO ops (``_ops``): ``drive`` runs an op with blocking httpx, ``adrive`` with async
httpx under anyio; both bound every exchange by its deadline and every body by its size limit, and decode
content in bounded pieces."""

from __future__ import annotations

import base64
import builtins
import functools
import logging
import ssl
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import anyio
import httpx

from ._errors import ConnectionError, LimitError, LivepeerError, ProtocolError, TimeoutError
from ._ops import Call, InfoCall, Op, Parallel, Race, Reply, Sleep, Step, Wait
from ._orchinfo import OrchInfoClient
from ._redact import redact_headers, redact_url
from ._streaming import AsyncOpenStream, OpenStream
from ._transport import Background, background_of, deadline

__all__ = ["AsyncIO", "SyncIO", "adrive", "drive", "verified_ssl_context"]

log = logging.getLogger("livepeer.client")

T = TypeVar("T")
CONNECT_TIMEOUT = 3.0
# Only encodings we can inflate in bounded steps (httpx would add br/zstd when those libraries exist).
ACCEPT_ENCODING = "gzip, deflate"
# Largest piece one inflate step may produce: a gzip bomb never expands in one go (about 1000:1).
DECODE_PIECE = 64 << 10


class _RaceState:
    """Shared by one Race's workers and its caller (a lock-protected hand-off: in time, or ``late``)."""

    def __init__(self, step: Race) -> None:
        self.step = step
        self.n = len(step.calls)
        self.results: list[Reply | LivepeerError | None] = [None] * self.n
        self.next = 0
        self.done = 0
        self.won = False
        self.returned = False
        self.lock = threading.Lock()
        self.wake: Callable[[], None] = lambda: None  # set by the driver: wakes its waiting caller
        self.since: int | None = None  # Background.finished when the caller returned

    def take(self, bg: Background, worker: int) -> int | None:
        with self.lock:
            if self.next >= self.n:
                return None
            # Once the race is won (the caller is on its way back) or the caller has returned, workers
            # 0 .. background-1 carry on (worker 0 always exists).
            if (self.returned or self.won) and (bg.closed or worker >= self.step.background):
                return None
            i = self.next
            self.next += 1
            return i

    def put(self, i: int, r: Reply | LivepeerError, bg: Background) -> bool:
        """Record a result; False when the caller has returned (the result goes to ``late``)."""
        try:
            good = self.step.enough(i, r)
        except Exception:  # a parser bug must not kill a worker
            log.debug("race: enough() failed", exc_info=True)
            good = False
        with self.lock:
            self.done += 1
            if self.returned:
                return False
            self.results[i] = r
            if good and not self.won:
                # The worker that won goes on to the next call before the caller has even woken: the
                # caller's next request must still go first (``since``; the trace of a cold call with 10
                # orchestrators had the next probe's TLS handshake start 5 ms after the winning call did).
                self.won, self.since = True, bg.finished
        self.wake()
        return True

    def settled(self) -> bool:
        return self.won or self.done >= self.n

    def finish(self, bg: Background) -> list[Reply | LivepeerError | None]:
        with self.lock:
            self.returned = True
            self.since = bg.finished
            return list(self.results)

    def deliver_late(self, i: int, r: Reply | LivepeerError, bg: Background) -> None:
        if bg.closed:  # most likely cut short by the close itself: not an answer worth keeping
            self._drop([i])
            return
        try:
            self.step.late(i, r)
        except Exception:
            log.debug("race: late() failed", exc_info=True)

    def fail(self, i: int, bg: Background) -> None:
        """Call ``i`` raised something other than a LivepeerError: dropped if closed, else a failure."""
        if bg.closed:
            self._drop([i])
            return
        log.debug("race: call %d failed", i, exc_info=True)
        r = ConnectionError(f"cannot reach {redact_url(self.step.calls[i].url)}: internal error")
        if not self.put(i, r, bg):
            self.deliver_late(i, r, bg)

    def _drop(self, which: Sequence[int]) -> None:
        for i in which:
            try:
                self.step.drop(i)
            except Exception:
                log.debug("race: drop() failed", exc_info=True)
        # Only a close drops calls, and a dropped call never counts as done: without this the caller
        # would sleep out the race's timeout (the probe timeout) after another thread closed the client.
        self.wake()

    def drop_taken(self, taken: set[int]) -> None:
        which = sorted(taken)
        taken.clear()
        self._drop(which)

    def drop_rest(self) -> None:
        """The client closed: calls never started are dropped (their owners release what they hold)."""
        with self.lock:
            rest, self.next = range(self.next, self.n), self.n
        self._drop(rest)


class _Closed(Exception):
    """The client closed before a background call could start."""


_ssl_lock = threading.Lock()
_verified: ssl.SSLContext | None = None


def verified_ssl_context() -> ssl.SSLContext:
    """One CA-verifying context per process (loading the CA bundle costs ~100 ms)."""
    global _verified
    with _ssl_lock:
        if _verified is None:
            _verified = httpx.create_ssl_context()
        return _verified


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(CONNECT_TIMEOUT, seconds))


def _without_userinfo(url: str, headers: dict[str, str]) -> str:
    """Move ``user:password@`` into an Authorization header: httpx logs the URL it is given."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    if not any(k.lower() == "authorization" for k in headers):
        cred = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _request(client: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    headers = dict(call.headers)
    headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
    url = _without_userinfo(call.url, headers)
    kwargs: dict[str, Any] = {"headers": headers, "timeout": _timeout(call.timeout)}
    if call.files is not None:
        kwargs["files"] = call.files
        kwargs["data"] = call.data or {}
    elif call.content is not None:
        kwargs["content"] = call.content
    elif call.json is not None:
        kwargs["json"] = call.json
    return client.build_request(call.method, url, **kwargs)


def _transport_error(exc: httpx.HTTPError, url: str) -> LivepeerError:
    where = redact_url(url)
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"timed out talking to {where} ({type(exc).__name__})")
    return ConnectionError(f"cannot reach {where}: {type(exc).__name__}")


def _closed_error(call: Call) -> ConnectionError:
    # httpx raises a bare RuntimeError for a request on a closed client; a Gateway closed by another
    # thread or task while this call ran is a connection lost, in our hierarchy.
    return ConnectionError(f"cannot reach {redact_url(call.url)}: the Gateway was closed")


def _log(call: Call, status: int | str, elapsed: float) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s -> %s in %.1f ms headers=%s",
            call.method,
            redact_url(call.url),
            status,
            elapsed * 1000,
            redact_headers(call.headers),
        )


class SyncIO:
    """Runs steps with blocking httpx clients."""

    def __init__(
        self, orch: httpx.Client, service: Callable[[], httpx.Client], info: OrchInfoClient
    ) -> None:
        self.orch = orch
        self._service_factory = service
        self._service: httpx.Client | None = None
        self.info_client = info

    @property
    def service(self) -> httpx.Client:
        # Created on first use: a verifying client costs a CA-bundle load that orch-only use never needs.
        if self._service is None:
            self._service = self._service_factory()
        return self._service

    def call(self, call: Call) -> Reply:
        client = self.service if call.service else self.orch
        start = time.perf_counter()
        # One deadline for the whole exchange (headers and body): httpx's timeouts are per read.
        with deadline(call.timeout):
            try:
                resp = client.send(_request(client, call), stream=True)
            except httpx.HTTPError as exc:
                _log(call, type(exc).__name__, time.perf_counter() - start)
                raise _transport_error(exc, call.url) from None
            except RuntimeError:
                if client.is_closed:
                    raise _closed_error(call) from None
                raise
            headers = dict(resp.headers.items())
            try:
                body = _Body(headers, call)
                if call.stream and resp.status_code < 300:
                    _log(call, resp.status_code, time.perf_counter() - start)
                    return Reply(
                        resp.status_code,
                        headers,
                        b"",
                        call.url,
                        time.perf_counter() - start,
                        OpenStream(
                            _sync_chunks(resp, body.decoder, call.url), resp.close, call.url
                        ),
                    )
                for raw in resp.iter_raw():
                    body.feed(raw)
            except httpx.HTTPError as exc:
                resp.close()
                raise _transport_error(exc, call.url) from None
            except BaseException:
                resp.close()
                raise
            resp.close()
        elapsed = time.perf_counter() - start
        _log(call, resp.status_code, elapsed)
        return Reply(resp.status_code, headers, bytes(body.data), call.url, elapsed)

    def info(self, call: InfoCall) -> Reply:
        start = time.perf_counter()
        body = self.info_client.get(
            call.url, call.address, call.sig, call.capabilities, call.timeout
        )
        return Reply(200, {}, body, call.url, time.perf_counter() - start)

    def one(self, step: Call | InfoCall) -> Reply:
        return self.call(step) if isinstance(step, Call) else self.info(step)

    def run(self, step: Step) -> object:
        if isinstance(step, (Call, InfoCall)):
            return self.one(step)
        if isinstance(step, Sleep):
            time.sleep(max(0.0, step.seconds))
            return None
        if isinstance(step, Wait):
            end = time.monotonic() + step.timeout
            for ev in step.events:
                ev.wait(max(0.0, end - time.monotonic()))
            return None
        if isinstance(step, Race):
            return self._race(step)
        if len(step.calls) == 1:
            return [self._capture(step.calls[0])]
        with ThreadPoolExecutor(max_workers=max(1, min(step.limit, len(step.calls)))) as pool:
            return list(pool.map(self._capture, step.calls))

    def _capture(self, step: Call | InfoCall) -> Reply | LivepeerError:
        try:
            return self.one(step)
        except LivepeerError as exc:
            return exc

    def _race(self, step: Race) -> list[Reply | LivepeerError | None]:
        bg = background_of(self.orch)
        if bg is None or bg.closed:
            return self.run(Parallel(step.calls, step.limit))  # type: ignore[return-value]
        st = _RaceState(step)
        wake = threading.Condition(st.lock)

        def notify() -> None:
            with wake:
                wake.notify_all()

        st.wake = notify

        def worker(k: int) -> None:
            while (i := st.take(bg, k)) is not None:
                if st.returned or st.won:
                    # The race is over: the caller's next request goes first (measured on the devnet, the
                    # winning call otherwise shared the CPU with the next probe's TLS handshake).
                    bg.quiet(st.since)
                    st.since = None
                try:
                    if bg.closed:
                        raise _Closed
                    r = self._capture(step.calls[i])
                except Exception:  # the client closed under us (httpx: RuntimeError), or a bug
                    st.fail(i, bg)
                    continue
                if not st.put(i, r, bg):
                    st.deliver_late(i, r, bg)
            if bg.closed:
                st.drop_rest()

        # Threads start one by one as needed: under load a thread start costs ms, and the caller waits
        # only for the first wave (measured in bench/run.py, "cold `gw.run` vs orchestrators").
        started = 0
        end = time.monotonic() + step.timeout
        widen_at = time.monotonic() + step.widen_after
        want = min(step.first, st.n)
        while True:
            while started < want and bg.thread(functools.partial(worker, started)):
                started += 1
            with wake:
                now = time.monotonic()
                if st.settled() or now >= end or started == 0 or bg.closed:
                    break
                if want < step.limit and now >= widen_at:
                    want, widen_at = min(step.limit, st.n, want * 2), now + step.widen_after
                    continue
                wake.wait(min(end, widen_at if want < step.limit else end) - now)
        return st.finish(bg)


class _Decoder:
    """Content decoding in bounded pieces (``DECODE_PIECE``), so a gzip bomb cannot inflate in one go."""

    def __init__(self, encoding: str, url: str) -> None:
        enc = encoding.strip().lower()
        self.url = url
        self._z: Any = None
        if enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
        elif enc not in ("", "identity"):
            raise ProtocolError(f"{redact_url(url)} sent an unsupported Content-Encoding {enc!r}")

    @property
    def compressed(self) -> bool:
        return self._z is not None

    def pieces(self, raw: bytes) -> Iterator[bytes]:
        if self._z is None:
            if raw:
                yield raw
            return
        try:
            data = self._z.decompress(raw, DECODE_PIECE)
            while True:
                if data:
                    yield data
                tail = self._z.unconsumed_tail
                if not tail:
                    return
                data = self._z.decompress(tail, DECODE_PIECE)
        except zlib.error:
            raise ProtocolError(f"{redact_url(self.url)} sent a corrupt compressed body") from None


class _Body:
    """A reply body read up to ``call.limit`` decoded bytes; more is ``LimitError``."""

    def __init__(self, headers: Mapping[str, str], call: Call) -> None:
        self.decoder = _Decoder(headers.get("content-encoding", ""), call.url)
        self.limit = call.limit
        self.url = call.url
        self.data = bytearray()

    def feed(self, raw: bytes) -> None:
        for piece in self.decoder.pieces(raw):
            self.data += piece
            if len(self.data) > self.limit:
                how = " (decompressed)" if self.decoder.compressed else ""
                raise LimitError(
                    f"reply from {redact_url(self.url)} is over {self.limit} bytes{how} "
                    "(see livepeer.client.limits)"
                )


def _sync_chunks(resp: httpx.Response, decoder: _Decoder, url: str) -> Iterator[bytes]:
    try:
        for raw in resp.iter_raw():
            yield from decoder.pieces(raw)
    except httpx.HTTPError as exc:
        raise _transport_error(exc, url) from None


async def _async_chunks(resp: httpx.Response, decoder: _Decoder, url: str) -> AsyncIterator[bytes]:
    try:
        async for raw in resp.aiter_raw():
            for piece in decoder.pieces(raw):
                yield piece
    except httpx.HTTPError as exc:
        raise _transport_error(exc, url) from None


class AsyncIO:
    """Runs steps with async httpx clients (anyio: asyncio or trio)."""

    def __init__(
        self,
        orch: httpx.AsyncClient,
        service: Callable[[], httpx.AsyncClient],
        info: OrchInfoClient,
        max_in_flight: int = 32,
    ) -> None:
        self.orch = orch
        self._service_factory = service
        self._service: httpx.AsyncClient | None = None
        self.info_client = info
        self.max_in_flight = max_in_flight
        self._gate: anyio.CapacityLimiter | None = None

    @property
    def service(self) -> httpx.AsyncClient:
        if self._service is None:
            self._service = self._service_factory()
        return self._service

    async def call(self, call: Call) -> Reply:
        if call.stream:
            return await self._call(call)
        # Queue excess requests here rather than in httpcore's pool, whose hand-off scans every
        # waiting request against every connection (quadratic under hundreds of concurrent calls).
        if self._gate is None:
            self._gate = anyio.CapacityLimiter(self.max_in_flight)
        async with self._gate:
            return await self._call(call)

    async def _call(self, call: Call) -> Reply:
        try:
            # The deadline covers the whole exchange; for a stream, until its headers arrived.
            with anyio.fail_after(call.timeout), deadline(call.timeout):
                return await self._exchange(call)
        except builtins.TimeoutError as exc:
            if isinstance(exc, LivepeerError):
                raise
            raise TimeoutError(
                f"timed out talking to {redact_url(call.url)} (deadline {call.timeout:g}s)"
            ) from None

    async def _exchange(self, call: Call) -> Reply:
        client = self.service if call.service else self.orch
        start = time.perf_counter()
        try:
            resp = await client.send(_request(client, call), stream=True)
        except httpx.HTTPError as exc:
            _log(call, type(exc).__name__, time.perf_counter() - start)
            raise _transport_error(exc, call.url) from None
        except RuntimeError:
            if client.is_closed:
                raise _closed_error(call) from None
            raise
        headers = dict(resp.headers.items())
        try:
            body = _Body(headers, call)
            if call.stream and resp.status_code < 300:
                _log(call, resp.status_code, time.perf_counter() - start)
                return Reply(
                    resp.status_code,
                    headers,
                    b"",
                    call.url,
                    time.perf_counter() - start,
                    AsyncOpenStream(
                        _async_chunks(resp, body.decoder, call.url), resp.aclose, call.url
                    ),
                )
            async for raw in resp.aiter_raw():
                body.feed(raw)
        except httpx.HTTPError as exc:
            await resp.aclose()
            raise _transport_error(exc, call.url) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await resp.aclose()
            raise
        await resp.aclose()
        elapsed = time.perf_counter() - start
        _log(call, resp.status_code, elapsed)
        return Reply(resp.status_code, headers, bytes(body.data), call.url, elapsed)

    async def info(self, call: InfoCall) -> Reply:
        start = time.perf_counter()
        body = await anyio.to_thread.run_sync(
            self.info_client.get, call.url, call.address, call.sig, call.capabilities, call.timeout
        )
        return Reply(200, {}, body, call.url, time.perf_counter() - start)

    async def one(self, step: Call | InfoCall) -> Reply:
        return await (self.call(step) if isinstance(step, Call) else self.info(step))

    async def run(self, step: Step) -> object:
        if isinstance(step, (Call, InfoCall)):
            return await self.one(step)
        if isinstance(step, Sleep):
            await anyio.sleep(max(0.0, step.seconds))
            return None
        if isinstance(step, Wait):
            # threading.Event keeps the waiters loop-agnostic (sync threads, asyncio, trio). The poll
            # backs off from 1 ms to 16 ms: at a fixed 2 ms, a cold burst of 2000 calls means 1999 waiters
            # x 500 polls/s ~ 1M wake-ups/s (computed; a 300-call cold burst on the loaded devnet showed no
            # difference either way); the wait adds at most ~16 ms to a probe round trip.
            with anyio.move_on_after(step.timeout):
                pause = 0.001
                for ev in step.events:
                    while not ev.is_set():
                        await anyio.sleep(pause)
                        pause = min(pause * 2, 0.016)
            return None
        if isinstance(step, Race):
            return await self._race(step)
        results: list[Reply | LivepeerError | None] = [None] * len(step.calls)
        limiter = anyio.CapacityLimiter(max(1, step.limit))

        async def worker(i: int, c: Call | InfoCall) -> None:
            async with limiter:
                try:
                    results[i] = await self.one(c)
                except LivepeerError as exc:
                    results[i] = exc

        async with anyio.create_task_group() as tg:
            for i, c in enumerate(step.calls):
                tg.start_soon(worker, i, c)
        return results

    async def _capture(self, step: Call | InfoCall) -> Reply | LivepeerError:
        try:
            return await self.one(step)
        except LivepeerError as exc:
            return exc

    async def _race(self, step: Race) -> list[Reply | LivepeerError | None]:
        bg = background_of(self.orch)
        if bg is None or bg.closed:
            return await self.run(Parallel(step.calls, step.limit))  # type: ignore[return-value]
        st = _RaceState(step)
        holder = [anyio.Event()]
        st.wake = lambda: holder[0].set()

        current: set[int] = set()  # taken by a worker, not finished

        async def worker(k: int) -> None:
            while (i := st.take(bg, k)) is not None:
                current.add(i)
                if st.returned or st.won:
                    await bg.aquiet(st.since)
                    st.since = None
                try:
                    if bg.closed:
                        raise _Closed
                    r = await self._capture(step.calls[i])
                except Exception:
                    current.discard(i)
                    st.fail(i, bg)
                    continue
                current.discard(i)
                if not st.put(i, r, bg):
                    st.deliver_late(i, r, bg)
            if bg.closed:
                st.drop_rest()

        async def guarded(k: int) -> None:
            try:
                await worker(k)
            except anyio.get_cancelled_exc_class():
                # The client closed: what was running or never ran is released, not cached.
                st.drop_rest()
                st.drop_taken(current)
                raise
            except Exception:  # a background task must never crash the event loop
                log.debug("race worker failed", exc_info=True)

        started = 0
        end = time.monotonic() + step.timeout
        widen_at = time.monotonic() + step.widen_after
        want = min(step.first, st.n)
        while True:
            while started < want and bg.spawn(functools.partial(guarded, started)):
                started += 1
            now = time.monotonic()
            if st.settled() or now >= end or started == 0 or bg.closed:
                break
            if want < step.limit and now >= widen_at:
                want, widen_at = min(step.limit, st.n, want * 2), now + step.widen_after
                continue
            holder[0] = anyio.Event()
            if st.settled() or bg.closed:
                break
            with anyio.move_on_after(min(end, widen_at if want < step.limit else end) - now):
                await holder[0].wait()
        return st.finish(bg)


def drive(op: Op[T], io: SyncIO) -> T:
    """Run ``op`` to completion with blocking I/O."""
    try:
        step = next(op)
        while True:
            try:
                result = io.run(step)
            except LivepeerError as exc:
                step = op.throw(exc)
                continue
            step = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


async def adrive(op: Op[T], io: AsyncIO) -> T:
    """Run ``op`` to completion with async I/O."""
    try:
        step = next(op)
        while True:
            try:
                result = await io.run(step)
            except LivepeerError as exc:
                step = op.throw(exc)
                continue
            step = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()
