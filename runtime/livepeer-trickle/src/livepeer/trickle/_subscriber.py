"""``TrickleSubscriber``: read a trickle channel as an async iterator of segments.

``async with TrickleSubscriber(url) as sub: async for seg in sub: data = await seg.read()``
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import TracebackType

import anyio
import httpx
from typing_extensions import Self

from livepeer.trickle._errors import (
    TrickleClosed,
    TrickleError,
    TrickleInvalidInput,
    TrickleProtocolError,
    TrickleSegmentTooLarge,
    TrickleTimeout,
)
from livepeer.trickle._http import int_header, new_client, request_timeout
from livepeer.trickle._url import channel_url, check_seq

__all__ = ["Segment", "TrickleSubscriber"]

log = logging.getLogger("livepeer.trickle")

_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Segment:
    """One segment, readable while it is still arriving: ``async for chunk in seg`` or ``await seg.read()``."""

    def __init__(
        self,
        *,
        seq: int,
        url: str,
        response: httpx.Response,
        first_chunk: bytes,
        chunks: AsyncIterator[bytes],
        read_timeout: float,
        max_size: int | None,
    ) -> None:
        self.seq = seq
        self.url = url
        self.latest: int | None = int_header(response, "Lp-Trickle-Latest")
        """The server's next write position when this segment was requested, if it was not this one."""
        self.mime_type: str | None = response.headers.get("Content-Type")
        self._response = response
        self._first: bytes | None = first_chunk or None
        self._chunks = chunks
        self._read_timeout = read_timeout
        self._max_size = max_size
        self._received = 0
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """True once the segment was read to its end or closed."""
        return self._done

    def __repr__(self) -> str:
        return f"<Segment seq={self.seq} url={self.url!r} done={self._done}>"

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise TrickleError("a segment can be iterated only once", url=self.url)
        self._started = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await self._next_chunk()
                if chunk is None:
                    return
                yield chunk
        finally:
            await self.aclose()

    async def _next_chunk(self) -> bytes | None:
        if self._done:
            return None
        if self._first is not None:
            chunk, self._first = self._first, None
        else:
            try:
                with anyio.fail_after(self._read_timeout):
                    chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                await self.aclose()
                return None
            except TimeoutError:
                await self.aclose()
                raise TrickleTimeout(
                    f"no segment data for {self._read_timeout} s", url=self.url
                ) from None
            except httpx.HTTPError as exc:
                await self.aclose()
                raise TrickleError(f"segment read failed: {exc!r}", url=self.url) from exc
        self._received += len(chunk)
        if self._max_size is not None and self._received > self._max_size:
            await self.aclose()
            raise TrickleSegmentTooLarge(
                f"segment exceeds {self._max_size} bytes", limit=self._max_size, url=self.url
            )
        return chunk

    async def read(self) -> bytes:
        """The rest of the segment's bytes (waits until the publisher finishes it)."""
        if self._started:
            raise TrickleError("segment is already being iterated", url=self.url)
        self._started = True
        parts: list[bytes] = []
        while (chunk := await self._next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        """Stop reading; closes the underlying response (and its connection if unfinished)."""
        if not self._done:
            self._done = True
            with anyio.CancelScope(shield=True):
                await self._response.aclose()


class _Pending:
    """The result of a background fetch: a segment, None (end of stream) or an error."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.segment: Segment | None = None
        self.error: BaseException | None = None


class TrickleSubscriber:
    """Subscribe to a trickle channel from ``start_seq`` (-2: the segment being written, -1: the next one).

    ``async with TrickleSubscriber(url) as sub: async for seg in sub: ...`` keeps one GET for the next
    segment open while the current one is read (preconnect). Iterating without ``async with`` also works,
    one request at a time. The iterator ends on 404 or ``Lp-Trickle-Closed``; ``end_reason`` says which.
    """

    def __init__(
        self,
        url: str,
        *,
        start_seq: int = -2,
        client: httpx.AsyncClient | None = None,
        verify: bool = False,
        max_retries: int = 5,
        retry_backoff: float = 0.5,
        max_backoff: float = 8.0,
        ahead_wait: float = 0.25,
        reissue_interval: float = 20.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        segment_timeout: float | None = 360.0,
        max_segment_size: int | None = None,
        skip_empty: bool = True,
    ) -> None:
        self.url = channel_url(url)
        self._next = check_seq(start_seq, lowest=-2)
        if max_retries < 0 or retry_backoff < 0 or ahead_wait < 0:
            raise TrickleInvalidInput("retry settings must not be negative", url=self.url)
        for name, value in (
            ("reissue_interval", reissue_interval),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
        ):
            if value <= 0:
                raise TrickleInvalidInput(f"{name} must be positive", url=self.url)
        self._client = client
        self._own_client = client is None
        self._verify = verify
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.ahead_wait = ahead_wait
        self.reissue_interval = reissue_interval
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.segment_timeout = segment_timeout
        self.max_segment_size = max_segment_size
        self.skip_empty = skip_empty
        self.end_reason: str | None = None
        """Why iteration ended: ``"not-found"`` (404) or ``"closed"`` (``Lp-Trickle-Closed``)."""
        self.skipped = 0
        """Segments jumped over after a 470 (a slow reader fell out of the server's window)."""
        self.reissued = 0
        """Long-pending GETs that were re-issued."""
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending: _Pending | None = None
        self._current: Segment | None = None
        self._closed = False
        self._ended = False

    @property
    def next_seq(self) -> int:
        """The sequence number the subscriber will ask for next (may be -1/-2 before the first segment)."""
        return self._next

    async def __aenter__(self) -> Self:
        if self._closed:
            raise TrickleClosed("subscriber is closed", url=self.url)
        self._ensure_client()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the current segment, stop the preconnect and close an owned client."""
        if self._closed:
            return
        self._closed = True
        # The task group wraps the caller's `async with` body, so it must be exited here, outside any
        # other cancel scope; everything else is shielded so a cancelled caller still cleans up.
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
        finally:
            # Under cancellation the task-group exit re-raises: the responses and client still close.
            with anyio.CancelScope(shield=True):
                if self._current is not None:
                    await self._current.aclose()
                pending, self._pending = self._pending, None
                if pending is not None and pending.segment is not None:
                    await pending.segment.aclose()
                if self._own_client and self._client is not None:
                    await self._client.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Segment:
        segment = await self.next()
        if segment is None:
            raise StopAsyncIteration
        return segment

    async def next(self) -> Segment | None:
        """The next segment, or None at the end of the stream."""
        if self._closed:
            raise TrickleClosed("subscriber is closed", url=self.url)
        if self._ended:
            return None
        if self._current is not None:
            await self._current.aclose()
            self._current = None
        try:
            with anyio.fail_after(self.segment_timeout):
                segment = await self._take()
        except TimeoutError:
            raise TrickleTimeout(
                f"no segment within {self.segment_timeout} s", url=self.url
            ) from None
        if segment is None:
            self._ended = True
            if self._tg is None:
                await self.aclose()
            return None
        self._next = segment.seq + 1
        self._current = segment
        if self._tg is not None:
            self._start_preconnect(self._next)
        return segment

    async def _take(self) -> Segment | None:
        if self._tg is None:
            return await self._fetch(self._next)
        if self._pending is None:
            self._start_preconnect(self._next)
        pending = self._pending
        assert pending is not None
        await pending.event.wait()
        self._pending = None
        if pending.error is not None:
            raise pending.error
        return pending.segment

    def _start_preconnect(self, seq: int) -> None:
        assert self._tg is not None
        pending = _Pending()
        self._pending = pending
        self._tg.start_soon(self._preconnect, seq, pending)

    async def _preconnect(self, seq: int, pending: _Pending) -> None:
        try:
            pending.segment = await self._fetch(seq)
        except Exception as exc:  # handed to the reader, never raised in the task group
            pending.error = exc
        finally:
            pending.event.set()

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_client(verify=self._verify)
        return self._client

    def _backoff(self, failures: int) -> float:
        return float(min(self.retry_backoff * (2 ** (failures - 1)), self.max_backoff))

    async def _fetch(self, seq: int) -> Segment | None:
        """GET ``{url}/{seq}`` until it yields a non-empty segment or the stream ends."""
        client = self._ensure_client()
        failures = 0
        ahead = jumps = 0
        while True:
            url = f"{self.url}/{seq}"
            request = client.build_request(
                "GET", url, timeout=request_timeout(self.connect_timeout)
            )
            response: httpx.Response | None = None
            try:
                # The Go subscriber re-issues a GET that waited this long for its first byte, so
                # intermediaries never see a request idle for minutes.
                with anyio.move_on_after(self.reissue_interval):
                    response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                failures += 1
                if failures > self.max_retries:
                    raise TrickleError(
                        f"GET failed {failures} times, last: {exc!r}", url=url
                    ) from exc
                log.debug("trickle GET %s failed (%r), retry %d", url, exc, failures)
                await anyio.sleep(self._backoff(failures))
                continue
            if response is None:
                self.reissued += 1
                if seq < 0:
                    # Asking for -1/-2 again could skip a segment that started meanwhile: pin the
                    # position first.
                    seq = await self._resolve_relative(client, seq)
                continue
            result = await self._handle(response, seq, url)
            if isinstance(result, Segment) or result is None:
                return result
            action, value = result
            if action == "jump":
                if seq >= 0 and value > seq:
                    self.skipped += value - seq
                seq = value
                ahead = 0
                jumps += 1
                if jumps > self.max_retries:
                    # A conforming server serves (or holds) the seq its 470 named; one that names a new
                    # seq every time is followed at ahead_wait intervals, not in a request loop.
                    await anyio.sleep(self.ahead_wait)
            elif action == "ahead":
                ahead += 1
                if ahead > self.max_retries:
                    # Still ahead after waiting: the publisher restarted at a lower seq; follow it.
                    seq = value
                    ahead = 0
                else:
                    await anyio.sleep(self.ahead_wait)
            elif action == "next":
                seq = value
            else:  # "retry"
                failures += 1
                if failures > self.max_retries:
                    raise TrickleError(
                        f"GET failed {failures} times, last status {value}",
                        url=url,
                        status_code=value,
                    )
                await anyio.sleep(self._backoff(failures))

    async def _resolve_relative(self, client: httpx.AsyncClient, seq: int) -> int:
        """Turn -1/-2 into an absolute seq with ``GET {url}/next``; keep ``seq`` if the server can't."""
        try:
            with anyio.fail_after(self.connect_timeout + self.read_timeout):
                response = await client.get(
                    f"{self.url}/next", timeout=request_timeout(self.connect_timeout)
                )
            latest = (
                int_header(response, "Lp-Trickle-Latest") if response.status_code == 200 else None
            )
        except (httpx.HTTPError, TimeoutError, TrickleProtocolError):
            return seq
        if latest is None or latest < 0:
            return seq
        if seq == -1:
            return latest
        return max(latest - 1, 0)  # -2: the segment before the next write, 0 before any write

    async def _handle(
        self, response: httpx.Response, seq: int, url: str
    ) -> Segment | tuple[str, int] | None:
        status = response.status_code
        keep = False
        try:
            if status == 404:
                self.end_reason = "not-found"
                return None
            if response.headers.get("Lp-Trickle-Closed") is not None:
                self.end_reason = "closed"
                return None
            if status == 470:
                latest = int_header(response, "Lp-Trickle-Latest")
                if latest is None or latest < 0:
                    raise TrickleProtocolError(
                        "470 without Lp-Trickle-Latest", url=url, status_code=470
                    )
                if seq >= 0 and latest <= seq:
                    # latest == seq: a conforming server holds a GET for the next write instead. Read as
                    # "ahead" (wait ahead_wait), not as a jump to the same seq at once, which a server
                    # answering so every time turned into a request loop until segment_timeout.
                    return ("ahead", latest)
                return ("jump", latest)
            if status in _RETRY_STATUSES:
                return ("retry", status)
            if status != 200:
                body = await _short_body(response)
                raise TrickleProtocolError(
                    f"unexpected status {status}: {body!r}", url=url, status_code=status
                )
            got = int_header(response, "Lp-Trickle-Seq")
            if got is None:
                if seq < 0:
                    raise TrickleProtocolError(
                        "200 without Lp-Trickle-Seq", url=url, status_code=200
                    )
                got = seq
            chunks = response.aiter_raw()
            try:
                with anyio.fail_after(self.read_timeout):
                    first = await chunks.__anext__()
            except StopAsyncIteration:
                first = b""
            except TimeoutError:
                return ("retry", 200)
            except httpx.HTTPError:
                return ("retry", 200)
            if not first and self.skip_empty:
                # An empty segment: the publisher dropped it or closed a preconnect. Nothing to deliver.
                return ("next", got + 1)
            keep = True
            return Segment(
                seq=got,
                url=f"{self.url}/{got}",
                response=response,
                first_chunk=first,
                chunks=chunks,
                read_timeout=self.read_timeout,
                max_size=self.max_segment_size,
            )
        finally:
            if not keep:
                with anyio.CancelScope(shield=True):
                    await response.aclose()


async def _short_body(response: httpx.Response, limit: int = 512) -> bytes:
    data = b""
    try:
        with anyio.fail_after(2.0):
            async for chunk in response.aiter_raw():
                data += chunk
                if len(data) >= limit:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass
    return data[:limit]
