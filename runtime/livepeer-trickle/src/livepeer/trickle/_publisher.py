"""``TricklePublisher``: write a trickle channel one segment (one streamed POST) at a time.

``async with TricklePublisher(url) as pub: await pub.write(b"segment")``

Memory bound and drop policy. Every segment has its own byte buffer of ``buffer_size`` bytes between the
caller and its POST body. When the server reads slower than the caller writes:

1. ``seg.write`` waits for room in the buffer (backpressure), at most ``write_timeout`` seconds per chunk;
2. if that wait times out, the segment is **dropped**: its POST is aborted (the server closes the segment
   truncated), ``stats.dropped_segments`` grows and, with ``drop_policy="drop"`` (default), the rest of
   that segment's writes are discarded without error; with ``drop_policy="raise"`` the write raises
   ``TrickleTimeout``. The next segment starts fresh either way;
3. at most ``max_inflight`` segments upload at once; opening one more waits up to ``write_timeout`` for
   the oldest upload to finish, then drops it (live data: the newest segment matters most).

So the publisher never holds more than about ``(max_inflight + 1) * buffer_size`` bytes (the ``+ 1`` is
the preconnected POST, which only ever buffers the next segment once it becomes current).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import anyio
import httpx
from typing_extensions import Self

from livepeer.trickle._errors import (
    TrickleChannelNotFound,
    TrickleClosed,
    TrickleError,
    TrickleInvalidInput,
    TrickleProtocolError,
    TrickleSegmentTooLarge,
    TrickleTimeout,
)
from livepeer.trickle._http import int_header, new_client, request_timeout
from livepeer.trickle._url import channel_url, check_seq

__all__ = ["PublisherStats", "SegmentWriter", "TricklePublisher"]

log = logging.getLogger("livepeer.trickle")

_CHUNK = 256 * 1024


@dataclass
class PublisherStats:
    """Counters for one publisher."""

    segments: int = 0
    bytes: int = 0
    dropped_segments: int = 0
    failed_segments: int = 0
    retries: int = 0


class _ByteQueue:
    """A FIFO of byte chunks bounded by total size; the POST body drains it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: deque[bytes] = deque()
        self._eof = False
        self.aborted = False
        self._changed: anyio.Event | None = None

    def _notify(self) -> None:
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    async def _wait(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    async def put(self, data: bytes, patience: float) -> Literal["ok", "timeout", "aborted"]:
        # A chunk larger than the capacity still goes in once the queue is empty.
        if self.size and self.size + len(data) > self.capacity:
            # Only a full queue needs the timeout scope: one per chunk shows up on small segments.
            with anyio.move_on_after(patience) as scope:
                while True:
                    await self._wait()
                    # abort() empties the queue, so it ends this wait too.
                    if not self.size or self.size + len(data) <= self.capacity:
                        break
            if scope.cancelled_caught:
                return "timeout"
        if self.aborted:
            return "aborted"
        self._items.append(data)
        self.size += len(data)
        self._notify()
        return "ok"

    async def get(self) -> bytes | None:
        while not self._items and not self._eof and not self.aborted:
            await self._wait()
        if self._items and not self.aborted:
            data = self._items.popleft()
            self.size -= len(data)
            self._notify()
            return data
        return None

    def close(self) -> None:
        self._eof = True
        self._notify()

    def abort(self) -> None:
        self.aborted = True
        self._items.clear()
        self.size = 0
        self._notify()


class _Post:
    """One POST of one segment, running in the publisher's task group."""

    def __init__(self, seq: int, reset: bool, capacity: int) -> None:
        self.seq = seq
        self.reset = reset
        self.queue = _ByteQueue(capacity)
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.attached = False
        self.consumed = False
        self.dropped = False
        self.error: TrickleError | None = None
        self.status: int | None = None


class SegmentWriter:
    """The segment being written; from ``async with pub.segment() as seg``."""

    def __init__(self, publisher: TricklePublisher, post: _Post) -> None:
        self._pub = publisher
        self._post = post
        self.seq = post.seq
        self.size = 0
        self._closed = False

    @property
    def dropped(self) -> bool:
        """True if the drop policy discarded this segment (see the module docstring)."""
        return self._post.dropped

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (any bytes-like; a mutable one is copied) to the segment; subscribers see it as
        soon as the server has it."""
        if self._closed:
            raise TrickleClosed(f"segment {self.seq} is closed", url=self._pub.url)
        self._pub._raise_if_terminal()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TrickleInvalidInput(f"segment data must be bytes, got {type(data).__name__}")
        limit = self._pub.max_segment_size
        if limit is not None and self.size + len(data) > limit:
            raise TrickleSegmentTooLarge(
                f"segment {self.seq} would exceed {limit} bytes", limit=limit, url=self._pub.url
            )
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            if self._post.dropped or self._post.queue.aborted:
                self._pub._raise_if_terminal()  # why the POST ended, as for a put that found it aborted
                return
            # bytes are immutable: slice them (a whole-range slice is the object itself, no copy); copy
            # anything else, which the caller may reuse once write returns.
            piece = (
                data[start : start + _CHUNK]
                if type(data) is bytes
                else bytes(view[start : start + _CHUNK])
            )
            outcome = await self._post.queue.put(piece, self._pub.write_timeout)
            if outcome == "timeout":
                self._pub._drop(self._post, "buffer full")
                if self._pub.drop_policy == "raise":
                    raise TrickleTimeout(
                        f"segment {self.seq}: server too slow, segment dropped",
                        url=self._pub.url,
                    )
                return
            if outcome == "aborted":
                self._pub._raise_if_terminal()
                return
            self.size += len(piece)
            self._pub.stats.bytes += len(piece)

    async def close(self) -> None:
        """End the segment (its POST finishes in the background)."""
        if not self._closed:
            self._closed = True
            self._post.queue.close()
            self._pub._segment_closed()

    async def wait(self) -> None:
        """Wait (up to the publisher's ``response_timeout``) for the server's answer; raise its error."""
        with anyio.move_on_after(self._pub.response_timeout):
            await self._post.done.wait()
        if not self._post.done.is_set():
            raise TrickleTimeout(
                f"segment {self.seq}: no answer from the server", url=self._pub.url
            )
        if self._post.error is not None:
            raise self._post.error


class _SegmentContext:
    def __init__(self, publisher: TricklePublisher) -> None:
        self._pub = publisher
        self._writer: SegmentWriter | None = None

    async def __aenter__(self) -> SegmentWriter:
        self._writer = await self._pub._open_segment()
        return self._writer

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            await self._writer.close()


class TricklePublisher:
    """Publish segments to a trickle channel.

    ``async with TricklePublisher(url, "video/mp2t") as pub: async with pub.segment() as seg: ...``

    ``start_seq=-1`` asks the server for its next write position (``GET {url}/next``) and sends
    ``Lp-Trickle-Reset`` on the first POST, which releases readers stuck on an older publisher's segments.
    """

    def __init__(
        self,
        url: str,
        mime_type: str = "video/mp2t",
        *,
        start_seq: int = -1,
        client: httpx.AsyncClient | None = None,
        verify: bool = False,
        delete_on_close: bool = True,
        preconnect: bool = True,
        max_segment_size: int | None = None,
        buffer_size: int = 4 * 1024 * 1024,
        write_timeout: float = 5.0,
        max_inflight: int = 3,
        drop_policy: Literal["drop", "raise"] = "drop",
        max_consecutive_failures: int = 3,
        connect_timeout: float = 10.0,
        response_timeout: float = 30.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.url = channel_url(url)
        self.mime_type = mime_type
        self._seq = check_seq(start_seq, lowest=-1)
        if buffer_size <= 0 or max_inflight < 1 or max_consecutive_failures < 1:
            raise TrickleInvalidInput(
                "buffer_size, max_inflight and max_consecutive_failures must be positive"
            )
        if drop_policy not in ("drop", "raise"):
            raise TrickleInvalidInput(f"drop_policy must be 'drop' or 'raise', got {drop_policy!r}")
        if max_segment_size is not None and max_segment_size <= 0:
            raise TrickleInvalidInput("max_segment_size must be positive or None")
        self._client = client
        self._own_client = client is None
        self._verify = verify
        self.delete_on_close = delete_on_close
        self.preconnect = preconnect
        self.max_segment_size = max_segment_size
        self.buffer_size = buffer_size
        self.write_timeout = write_timeout
        self.max_inflight = max_inflight
        self.drop_policy = drop_policy
        self.max_consecutive_failures = max_consecutive_failures
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.close_timeout = close_timeout
        self.stats = PublisherStats()
        self._reset_pending = False
        self._consecutive_failures = 0
        self._terminal: TrickleError | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Semaphore(1)
        self._inflight: list[_Post] = []
        self._preconnected: _Post | None = None
        self._closed = False

    @property
    def next_seq(self) -> int:
        """The sequence number of the next segment (negative until resolved from the server)."""
        return self._seq

    @property
    def error(self) -> TrickleError | None:
        """The terminal error, once the publisher gave up (404, channel closed, repeated failures)."""
        return self._terminal

    async def __aenter__(self) -> Self:
        if self._closed:
            raise TrickleClosed("publisher is closed", url=self.url)
        if self._client is None:
            self._client = new_client(verify=self._verify)
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

    def segment(self) -> _SegmentContext:
        """``async with pub.segment() as seg: await seg.write(b"...")`` — one streamed segment."""
        return _SegmentContext(self)

    async def write(self, data: bytes | bytearray | memoryview, *, wait: bool = False) -> int:
        """Publish ``data`` as one whole segment and return its seq; ``wait=True`` awaits the server's ack."""
        async with self.segment() as seg:
            await seg.write(data)
        if wait:
            await seg.wait()
        return seg.seq

    async def flush(self) -> None:
        """Wait (up to ``response_timeout``) until every segment written so far was answered."""
        with anyio.move_on_after(self.response_timeout):
            for post in list(self._inflight):
                await post.done.wait()
        if not all(post.done.is_set() for post in self._inflight):
            raise TrickleTimeout("segments still unanswered", url=self.url)
        self._raise_if_terminal()

    async def aclose(self, *, delete: bool | None = None) -> None:
        """Finish uploads (up to ``close_timeout``), then ``DELETE`` the channel unless told not to."""
        if self._closed:
            return
        self._closed = True
        delete = self.delete_on_close if delete is None else delete
        with anyio.CancelScope(shield=True):
            pre, self._preconnected = self._preconnected, None
            if pre is not None:
                # Abort rather than finish it empty: the server keeps the segment fresh, so a restarted
                # publisher (or anyone reading -1) picks up at this very seq.
                pre.scope.cancel()
            with anyio.move_on_after(self.close_timeout):
                for post in list(self._inflight):
                    await post.done.wait()
        # The task group wraps the caller's `async with` body: exit it outside any other cancel scope.
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
        finally:
            # Under cancellation the task-group exit re-raises: still DELETE and close the client.
            with anyio.CancelScope(shield=True):
                if delete and self._client is not None and self._terminal is None:
                    await self._delete()
                if self._own_client and self._client is not None:
                    await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------------------

    def _raise_if_terminal(self) -> None:
        if self._terminal is not None:
            raise self._terminal

    def _check_usable(self) -> None:
        if self._closed:
            raise TrickleClosed("publisher is closed", url=self.url)
        self._raise_if_terminal()
        if self._tg is None:
            raise TrickleError(
                "use `async with TricklePublisher(...)` before writing", url=self.url
            )

    async def _open_segment(self) -> SegmentWriter:
        self._check_usable()
        # One segment at a time: a second writer waits here until the current segment closes.
        await self._lock.acquire()
        try:
            self._check_usable()
            if self._seq < 0:
                self._seq = await self._resolve_start()
                self._reset_pending = True
            seq = self._seq
            post = self._preconnected
            self._preconnected = None
            if post is not None and (post.seq != seq or post.done.is_set()):
                post.scope.cancel()  # never reuse a finished or mismatched POST
                post = None
            if post is None:
                post = self._start_post(seq)
            post.attached = True
            self._reset_pending = False
            self._seq = seq + 1
            await self._enforce_inflight()
            self._inflight.append(post)
            self.stats.segments += 1
            if self.preconnect:
                self._preconnected = self._start_post(seq + 1)
        except BaseException:
            self._lock.release()
            raise
        return SegmentWriter(self, post)

    def _segment_closed(self) -> None:
        self._lock.release()

    async def _enforce_inflight(self) -> None:
        self._inflight = [p for p in self._inflight if not p.done.is_set()]
        while len(self._inflight) >= self.max_inflight:
            oldest = self._inflight.pop(0)
            with anyio.move_on_after(self.write_timeout):
                await oldest.done.wait()
            self._drop(oldest, "too many segments in flight")

    def _drop(self, post: _Post, why: str) -> None:
        if post.dropped or post.done.is_set():
            return
        post.dropped = True
        post.queue.abort()
        post.scope.cancel()
        self.stats.dropped_segments += 1
        log.warning("trickle publisher %s: dropped segment %d (%s)", self.url, post.seq, why)

    def _start_post(self, seq: int) -> _Post:
        assert self._tg is not None
        post = _Post(seq, self._reset_pending, self.buffer_size)
        self._tg.start_soon(self._run_post, post)
        return post

    async def _run_post(self, post: _Post) -> None:
        try:
            with post.scope:
                await self._post_attempts(post)
            if (
                post.scope.cancelled_caught
                and not post.dropped
                and post.attached
                and not self._closed
            ):
                self._fail(post, TrickleTimeout(f"segment {post.seq}: no response", url=self.url))
        except Exception as exc:  # recorded for the writer, never raised into the task group
            self._fail(post, TrickleError(f"segment {post.seq}: {exc!r}", url=self.url))
        finally:
            post.queue.abort()
            post.done.set()

    async def _post_attempts(self, post: _Post) -> None:
        assert self._client is not None
        url = f"{self.url}/{post.seq}"
        for attempt in (1, 2):
            post.consumed = False
            headers = {"Content-Type": self.mime_type}
            if post.reset:
                headers["Lp-Trickle-Reset"] = "1"
            request = self._client.build_request(
                "POST",
                url,
                content=self._body(post),
                headers=headers,
                timeout=request_timeout(self.connect_timeout),
            )
            try:
                response = await self._client.send(request)
            except httpx.HTTPError as exc:
                if not post.attached:
                    return  # a preconnect that failed; the segment will open a fresh POST
                # A repeat POST appends to the server's segment: retry only if no byte left us.
                if attempt == 1 and not post.consumed and not self._closed:
                    self.stats.retries += 1
                    continue
                self._fail(post, TrickleError(f"POST {url} failed: {exc!r}", url=url))
                return
            post.status = response.status_code
            status = response.status_code
            if status == 200:
                if response.headers.get("Lp-Trickle-Closed") is not None and post.attached:
                    self._terminal = TrickleClosed("channel closed by the server", url=self.url)
                    post.error = self._terminal
                    return
                if post.attached and (post.consumed or not post.queue.aborted):
                    self._consecutive_failures = 0
                return
            if status == 404:
                self._terminal = TrickleChannelNotFound(
                    "channel not found", url=self.url, status_code=404
                )
                post.error = self._terminal
                return
            if not post.attached:
                return
            if status == 413:
                limit = self.max_segment_size or 0
                self._fail(
                    post,
                    TrickleSegmentTooLarge(
                        f"server refused segment {post.seq} (413)", limit=limit, url=url
                    ),
                )
                return
            if attempt == 1 and not post.consumed and status >= 500 and not self._closed:
                self.stats.retries += 1
                continue
            self._fail(
                post,
                TrickleProtocolError(f"POST {url}: status {status}", url=url, status_code=status),
            )
            return

    def _fail(self, post: _Post, error: TrickleError) -> None:
        post.error = error
        self.stats.failed_segments += 1
        self._consecutive_failures += 1
        log.warning("trickle publisher %s: %s", self.url, error)
        if self._consecutive_failures >= self.max_consecutive_failures and self._terminal is None:
            self._terminal = TrickleError(
                f"{self._consecutive_failures} consecutive segment failures, last: {error}",
                url=self.url,
            )

    async def _body(self, post: _Post) -> AsyncIterator[bytes]:
        while True:
            chunk = await post.queue.get()
            if chunk is None:
                # The body is complete: from here on the server owes us a prompt answer.
                post.scope.deadline = min(
                    post.scope.deadline, anyio.current_time() + self.response_timeout
                )
                return
            post.consumed = True
            yield chunk

    async def _resolve_start(self) -> int:
        assert self._client is not None
        url = f"{self.url}/next"
        last: BaseException | None = None
        for attempt in range(self.max_consecutive_failures):
            if attempt:
                await anyio.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            try:
                with anyio.fail_after(self.connect_timeout + self.response_timeout):
                    response = await self._client.get(
                        url, timeout=request_timeout(self.connect_timeout)
                    )
            except (httpx.HTTPError, TimeoutError) as exc:
                last = exc
                continue
            if response.status_code == 404:
                self._terminal = TrickleChannelNotFound(
                    "channel not found", url=self.url, status_code=404
                )
                raise self._terminal
            if response.headers.get("Lp-Trickle-Closed") is not None:
                self._terminal = TrickleClosed("channel closed by the server", url=self.url)
                raise self._terminal
            if response.status_code != 200:
                last = TrickleProtocolError(
                    f"GET {url}: status {response.status_code}",
                    url=url,
                    status_code=response.status_code,
                )
                continue
            latest = int_header(response, "Lp-Trickle-Latest")
            if latest is None:
                try:
                    latest = int(response.text.strip())
                except ValueError:
                    raise TrickleProtocolError(
                        f"GET {url}: no next seq in reply", url=url
                    ) from None
            return max(latest, 0)
        raise TrickleError(f"GET {url} failed: {last!r}", url=url) from last

    async def _delete(self) -> None:
        assert self._client is not None
        try:
            with anyio.fail_after(self.connect_timeout + self.response_timeout):
                await self._client.delete(self.url, timeout=request_timeout(self.connect_timeout))
        except (httpx.HTTPError, TimeoutError) as exc:
            log.info("trickle publisher %s: DELETE failed: %r", self.url, exc)
