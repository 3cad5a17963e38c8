"""LiveSession: the caller's side of a live job — trickle channels, media, control, events, payments.

A route (LV2V, BYOC live stream, live-runner app) does the network-specific part: select an orchestrator,
pay, start the job, and tell the session its channel URLs plus how to pay, update and stop (`LiveJob`). The
session does the rest, identically for every route.

Channel policy (decided here, tested in tests/unit/live):
- control: opened eagerly when the session starts, with a `{"keep":"alive"}` every 10 s, because orchestrators
  sweep channels that see no writes (PROTOCOL.md §9.1) and py-1.0 / the Go gateway keep control alive the same way;
- publish, subscribe, events, data: opened lazily on first use — a session that only reads output must not
  hold an idle publish connection, and an unread events channel costs nothing;
- everything a session opened is closed by `close()` / `__aexit__`, also on error and cancellation; closing the
  publish channel (`DELETE`) is how the orchestrator learns that input ended (LV2V has no stop endpoint, §8).

Background readers (subscribe, events, data) run in the session's task group and hand items over bounded
memory streams, so a slow consumer back-pressures the trickle subscriber, which then jumps to the live edge
(470) instead of buffering without bound. A reader that fails because the orchestrator went away raises
`ConnectionError` from the iterator and closes the session; a payment failure is raised as `PaymentError` from
the next session call that awaits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from livepeer.client import _telemetry as telemetry
from livepeer.client._errors import ConnectionError, LivepeerError, PaymentError, ValidationError
from livepeer.client._route import downgrades, same_host
from livepeer.client._spend import _Call, current_call

if TYPE_CHECKING:
    import av
    import httpx

    from livepeer.trickle import JsonSegmentWriter, TricklePublisher, TrickleSubscriber
    from livepeer.trickle.media import AudioConfig, MediaPublisher, VideoConfig

__all__ = [
    "LiveChannels",
    "LiveControl",
    "LiveJob",
    "LivePublisher",
    "LiveSession",
    "check_channel_url",
]

log = logging.getLogger("livepeer.client.live")
T = TypeVar("T")

KEEPALIVE_INTERVAL = 10.0


class LiveJob(Protocol):
    """What a route hands to a session once the job has started."""

    @property
    def orchestrator(self) -> str:
        """Base URL of the orchestrator running the job."""

    @property
    def payment_interval(self) -> float | None:
        """Seconds between payments, or None when the route needs no periodic payment (offchain)."""

    async def pay(self) -> None:
        """One payment cycle. Raises PaymentError (or another LivepeerError) on failure."""

    async def update(
        self,
        params: Mapping[str, object],
        send_control: Callable[[Mapping[str, object]], Awaitable[None]],
    ) -> None:
        """Change the job's parameters the way this route does it (LV2V: a control message)."""

    async def stop(self) -> None:
        """End the job on the orchestrator (after the session closed its channels)."""


@dataclass(frozen=True)
class LiveChannels:
    """Trickle channel URLs of a live job; None where the route or job has no such channel."""

    publish_url: str | None = None
    subscribe_url: str | None = None
    control_url: str | None = None
    events_url: str | None = None
    data_url: str | None = None

    def urls(self) -> dict[str, str]:
        return {
            name: url
            for name, url in (
                ("publish_url", self.publish_url),
                ("subscribe_url", self.subscribe_url),
                ("control_url", self.control_url),
                ("events_url", self.events_url),
                ("data_url", self.data_url),
            )
            if url
        }


def check_channel_url(url: str, orchestrator: str, *, name: str) -> str:
    """A URL handed back by an orchestrator must be on its host (or a subdomain of it).

    Anything else could point the SDK at the caller's own network (DESIGN §6), so it is refused.
    """
    try:
        target = urlsplit(url)
    except ValueError:
        raise ConnectionError(f"{name} from {orchestrator} is not a valid URL") from None
    if target.scheme not in ("http", "https") or not target.hostname:
        raise ConnectionError(f"{name} from {orchestrator} is not an http(s) URL")
    if not same_host(url, orchestrator):
        raise ConnectionError(
            f"{name} from {orchestrator} points at another host ({target.hostname}); refusing it "
            "(channel URLs must be on the orchestrator's host or a subdomain: docs/reliability.md)"
        )
    if downgrades(url, orchestrator):
        raise ConnectionError(f"{name} from {orchestrator} downgrades https to http; refusing it")
    return url


class _Stream(Generic[T]):
    """A bounded hand-over from a background reader task to the caller's `async for`."""

    def __init__(self, session: LiveSession, receive: MemoryObjectReceiveStream[T]) -> None:
        self._session = session
        self._receive = receive

    def __aiter__(self) -> _Stream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._session._raise_if_failed()
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._receive.close()


class LiveControl:
    """Writes to a session's control channel (keepalives are sent for you every 10 s)."""

    def __init__(self, session: LiveSession) -> None:
        self._session = session

    async def write(self, message: Mapping[str, object]) -> None:
        """Send one JSON object, e.g. ``{"prompt": "a cat"}``."""
        await self._session._send_control(message)


class LivePublisher:
    """Frames in, MPEG-TS out on the session's publish channel (one GOP per segment).

    ``async with session.publish(fps=30) as pub: await pub.write_frame(frame)``
    """

    def __init__(
        self,
        session: LiveSession,
        trickle: TricklePublisher,
        config: VideoConfig,
        audio: AudioConfig | None = None,
    ):
        self._session = session
        self._trickle = trickle
        self._config = config
        self._audio = audio
        self._held: _Held[TricklePublisher] | None = None
        self._media: MediaPublisher | None = None
        self._lock = anyio.Lock()
        self._closed = False

    @property
    def frames_written(self) -> int:
        return self._media.frames_written if self._media is not None else 0

    async def _open(self) -> MediaPublisher:
        async with self._lock:
            if self._media is None:
                from livepeer.trickle.media import MediaPublisher

                tg = self._session._require_open()
                self._held = await tg.start(_hold, self._trickle)
                self._media = MediaPublisher(self._trickle, self._config, audio=self._audio)
            return self._media

    async def write_frame(self, frame: object, *, pts_seconds: float | None = None) -> None:
        """Encode and send one frame: ``av.VideoFrame``, numpy uint8 array (HxW[x3|x4]) or PIL image;
        ``av.AudioFrame`` when the publisher was opened with ``audio=``."""
        self._session._raise_if_failed()
        if self._closed:
            raise ValidationError("this publisher is closed")
        from livepeer.trickle import TrickleError
        from livepeer.trickle.media import MediaError

        try:
            media = await self._open()
            await media.write_frame(frame, pts_seconds=pts_seconds)
        except MediaError as exc:
            raise ValidationError(str(exc)) from exc
        except TrickleError as exc:
            failure = ConnectionError(f"publishing to {self._session.orchestrator} failed: {exc}")
            self._session._fail(failure)
            raise failure from exc

    async def aclose(self) -> None:
        """Flush the last GOP and close the publish channel (tells the orchestrator input ended)."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._media is not None:
                try:
                    await self._media.aclose()
                except Exception as exc:  # closing must not mask the caller's own error
                    log.debug("flushing the last segment failed: %s", exc)
            if self._held is not None:
                # Leaving the holder's `async with` DELETEs the channel: the orchestrator's signal that
                # input ended.
                await self._held.release(self._trickle.close_timeout + 1)

    async def __aenter__(self) -> LivePublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _Held(Generic[T]):
    """An async context manager kept open by a task of the session's task group.

    Trickle publishers and JSON writers enter a task group in ``__aenter__``, which ties them to the task that
    entered them. Holding them in a session task lets callers use them from any task and lets the session
    close them from its own.
    """

    def __init__(self, value: T, stop: anyio.Event, done: anyio.Event) -> None:
        self.value, self._stop, self._done = value, stop, done

    async def release(self, grace: float) -> None:
        self._stop.set()
        with anyio.move_on_after(grace):
            await self._done.wait()


async def _hold(
    cm: Any, *, task_status: anyio.abc.TaskStatus[_Held[Any]] = anyio.TASK_STATUS_IGNORED
) -> None:
    stop, done = anyio.Event(), anyio.Event()
    try:
        async with cm as value:
            task_status.started(_Held(value, stop, done))
            await stop.wait()
    finally:
        done.set()


@dataclass
class _Resources:
    control: _Held[JsonSegmentWriter] | None = None
    publisher: LivePublisher | None = None
    senders: list[MemoryObjectSendStream[Any]] = field(default_factory=list)


class LiveSession:
    """A running live job. Use ``async with gw.live(...) as session``; see the module docstring."""

    def __init__(
        self,
        start: Callable[[], Awaitable[tuple[LiveChannels, LiveJob, Mapping[str, object]]]],
        *,
        capability: str,
        model: str | None,
        orchestrator: Callable[[], str] | str = "",
        http_client: httpx.AsyncClient | None = None,
        verify: bool = False,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        reader_retries: int = 5,
    ) -> None:
        self.capability = capability
        # Payments of this session (start and periodic) count towards max_spend_per_call as one call.
        self._paid = _Call(uuid.uuid4().hex, capability)
        self._span = telemetry.Handle(
            None
        )  # replaced by a real span at start when OTel is installed
        self.model = model
        self._start = start
        self._orchestrator = orchestrator
        self._client = http_client
        self._verify = verify
        self._keepalive_interval = keepalive_interval
        # How many failed requests in a row a reader tolerates before it declares the orchestrator gone.
        self._reader_retries = reader_retries
        self._tg: anyio.abc.TaskGroup | None = None
        self._job: LiveJob | None = None
        self._res = _Resources()
        self._failure: LivepeerError | None = None
        self._closed = False
        self._started = False
        self.channels = LiveChannels()
        self.start_response: Mapping[str, object] = {}

    # -- metadata ---------------------------------------------------------------------------------
    @property
    def orchestrator(self) -> str:
        """Base URL of the orchestrator running this session."""
        return self._orchestrator() if callable(self._orchestrator) else self._orchestrator

    @property
    def manifest_id(self) -> str | None:
        value = self.start_response.get("manifest_id")
        return value if isinstance(value, str) else None

    @property
    def stream_id(self) -> str | None:
        value = self.start_response.get("stream_id")
        return value if isinstance(value, str) else self.manifest_id

    @property
    def app_url(self) -> str | None:
        """Live-runner app sessions: the orchestrator's proxy to the app (HTTP, SSE, WebSocket)."""
        value = self.start_response.get("app_url")
        return value if isinstance(value, str) else None

    @property
    def cost(self) -> int:
        """Wei (expected value of tickets) paid for this session so far; 0 offchain."""
        return self._paid.spent_wei

    @property
    def closed(self) -> bool:
        """True once closed, or once the orchestrator or a payment failed (resources go at exit)."""
        return self._closed or self._failure is not None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._started else "not started"
        return (
            f"<LiveSession {self.capability!r} model={self.model!r} {state} at {self.orchestrator}>"
        )

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> LiveSession:
        # Without this, `with gw.live(...)` fails with a bare AttributeError: __enter__.
        from livepeer.client._errors import UsageError

        raise UsageError("a live session is async only: use `async with gw.live(...) as session:`")

    def __exit__(self, *exc: object) -> None:
        """Never reached (``__enter__`` raises); present so ``with`` reaches ``__enter__``."""

    async def __aenter__(self) -> LiveSession:
        if self._started:
            raise ValidationError("a LiveSession can be entered only once")
        self._started = True
        # Set for the start and inherited by the payment task (tasks copy the context they start in).
        scope = current_call.set(self._paid)
        self._span = telemetry.session_span(self.capability, self.model)
        try:
            with self._span.current():
                channels, job, response = await self._start()
        except BaseException as exc:
            current_call.reset(scope)
            self._span.fail(exc)
            self._span.end()
            raise
        self._span.event(
            "livepeer.live.started",
            {
                "livepeer.orchestrator": telemetry.origin(self.orchestrator),
                "livepeer.cost_wei": self.cost,
            },
        )
        # From here on the job runs on the orchestrator: any failure must still stop it.
        self._job, self.start_response = job, dict(response)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            for name, url in channels.urls().items():
                check_channel_url(url, self.orchestrator, name=name)
            self.channels = channels
            if channels.control_url:
                await self._open_control(channels.control_url)
            if job.payment_interval:
                tg.start_soon(self._pay_forever, job.payment_interval)
        except BaseException:
            await self._shutdown()
            raise
        finally:
            current_call.reset(scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def close(self) -> None:
        """End the session: stop publishing, close every channel, stop payments, end the job. Idempotent."""
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._span.event("livepeer.live.closed", {"livepeer.cost_wei": self.cost})
        if self._failure is not None:
            self._span.fail(self._failure)
        self._span.end()
        with anyio.CancelScope(shield=True):
            if self._res.publisher is not None:
                await self._res.publisher.aclose()
            elif self.channels.publish_url:
                await self._close_unused_publish(self.channels.publish_url)
            if self._res.control is not None:
                await self._res.control.release(5.0)
            for sender in self._res.senders:
                sender.close()
            if self._job is not None:
                try:
                    with anyio.move_on_after(10):
                        await self._job.stop()
                except Exception as exc:  # the job may already be gone with its orchestrator
                    log.debug("stopping the job failed: %s", exc)
        # The task group must be exited outside the shield: cancel scopes unwind in the order they opened.
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)

    async def _close_unused_publish(self, url: str) -> None:
        """DELETE a publish channel nobody wrote to: for LV2V that is how the orchestrator learns the
        stream ended (no stop endpoint), so a session left without publishing frees its capacity."""
        from livepeer.trickle import TricklePublisher

        publisher = TricklePublisher(url, client=self._client, verify=self._verify)
        try:
            with anyio.move_on_after(publisher.close_timeout + 1):
                async with publisher:
                    pass
        except Exception as exc:  # the orchestrator may be gone already
            log.debug("closing the unused publish channel failed: %s", exc)

    # -- failures ---------------------------------------------------------------------------------
    def _fail(self, failure: LivepeerError) -> None:
        if self._failure is None:
            self._failure = failure
            self._span.event(
                "livepeer.live.failed",
                {"error.type": type(failure).__name__, "reason": str(failure)[:200]},
            )
        for sender in self._res.senders:
            sender.close()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _require_open(self) -> anyio.abc.TaskGroup:
        self._raise_if_failed()
        if self._closed or self._tg is None:
            raise ValidationError("the live session is not open (use `async with gw.live(...)`)")
        return self._tg

    def _channel(self, url: str | None, what: str) -> str:
        if not url:
            raise ValidationError(f"{self.capability!r} sessions have no {what} channel")
        return url

    # -- control ----------------------------------------------------------------------------------
    async def _open_control(self, url: str) -> None:
        from livepeer.trickle import JsonSegmentWriter

        writer = JsonSegmentWriter(
            url,
            keepalive_interval=self._keepalive_interval,
            client=self._client,
            verify=self._verify,
        )
        self._res.control = await self._require_open().start(_hold, writer)

    @property
    def control(self) -> LiveControl:
        """The control channel: ``await session.control.write({"prompt": "..."})``."""
        return LiveControl(self)

    async def _send_control(self, message: Mapping[str, object]) -> None:
        self._require_open()
        control = self._res.control
        if control is None:
            raise ValidationError(f"{self.capability!r} sessions have no control channel")
        from livepeer.trickle import TrickleError

        try:
            await control.value.write(dict(message))
        except TrickleError as exc:
            failure = ConnectionError(f"control channel of {self.orchestrator} failed: {exc}")
            self._fail(failure)
            raise failure from exc

    async def update(self, params: Mapping[str, object]) -> None:
        """Change the running job's parameters (route-specific: control message or update call)."""
        self._require_open()
        assert self._job is not None
        await self._job.update(params, self._send_control)

    # -- payments ---------------------------------------------------------------------------------
    async def _pay_forever(self, interval: float) -> None:
        assert self._job is not None
        while True:
            await anyio.sleep(interval)
            try:
                await self._job.pay()
            except PaymentError as exc:
                self._fail(exc)
                return
            except LivepeerError as exc:
                self._fail(PaymentError(f"payment to {self.orchestrator} failed: {exc}"))
                return

    # -- media out --------------------------------------------------------------------------------
    def publish(
        self,
        *,
        fps: int = 30,
        width: int | None = None,
        height: int | None = None,
        gop_seconds: float = 1.0,
        audio: bool | AudioConfig = False,
    ) -> LivePublisher:
        """Open the publish channel: ``pub = session.publish(fps=30); await pub.write_frame(frame)``.

        ``audio=True`` (or an ``AudioConfig``) adds an AAC track that takes ``av.AudioFrame``s.
        """
        self._require_open()
        url = self._channel(self.channels.publish_url, "publish")
        if self._res.publisher is not None:
            raise ValidationError("this session already has a publisher; reuse it")
        from livepeer.trickle import TricklePublisher
        from livepeer.trickle.media import AudioConfig, VideoConfig

        try:
            config = VideoConfig(fps=fps, width=width, height=height, gop_seconds=gop_seconds)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        audio_config = AudioConfig() if audio is True else audio or None
        trickle = TricklePublisher(
            url, mime_type="video/mp2t", client=self._client, verify=self._verify
        )
        publisher = LivePublisher(self, trickle, config, audio_config)
        self._res.publisher = publisher
        return publisher

    # -- media in, events, data -------------------------------------------------------------------
    def _subscriber(
        self, cls: type[TrickleSubscriber], url: str, start_seq: int
    ) -> TrickleSubscriber:
        return cls(
            url,
            start_seq=start_seq,
            client=self._client,
            verify=self._verify,
            max_retries=self._reader_retries,
        )

    def _reader(
        self,
        produce: Callable[[MemoryObjectSendStream[T]], Awaitable[None]],
        what: str,
        buffer: int,
    ) -> _Stream[T]:
        tg = self._require_open()
        send, receive = anyio.create_memory_object_stream[T](buffer)
        self._res.senders.append(send)

        async def run() -> None:
            from livepeer.trickle import TrickleError

            async with send:
                try:
                    await produce(send)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the caller stopped reading
                except TrickleError as exc:
                    self._fail(ConnectionError(f"{what} from {self.orchestrator} failed: {exc}"))
                except LivepeerError as exc:
                    self._fail(exc)

        tg.start_soon(run)
        return _Stream(self, receive)

    def subscribe(
        self, *, max_buffered_frames: int = 8, start_seq: int = -2
    ) -> AsyncIterator[av.VideoFrame]:
        """Decoded output frames: ``async for frame in session.subscribe(): ...`` (av.VideoFrame)."""
        url = self._channel(self.channels.subscribe_url, "subscribe")
        import av

        from livepeer.trickle import TrickleSubscriber
        from livepeer.trickle.media import MediaError, MediaSubscriber

        async def produce(send: MemoryObjectSendStream[av.VideoFrame]) -> None:
            async with self._subscriber(TrickleSubscriber, url, start_seq) as sub:
                try:
                    async with MediaSubscriber(
                        sub, max_buffered_frames=max_buffered_frames
                    ) as frames:
                        async for frame in frames:
                            if isinstance(frame, av.VideoFrame):  # audio is not decoded here
                                await send.send(frame)
                except MediaError as exc:
                    raise ConnectionError(
                        f"output of {self.orchestrator} is not playable: {exc}"
                    ) from exc

        return self._reader(produce, "output video", max_buffered_frames)

    def subscribe_segments(self, *, start_seq: int = -2) -> AsyncIterator[bytes]:
        """Raw MPEG-TS output, one trickle segment per item: ``async for ts in session.subscribe_segments()``."""
        url = self._channel(self.channels.subscribe_url, "subscribe")
        from livepeer.trickle import TrickleSubscriber

        async def produce(send: MemoryObjectSendStream[bytes]) -> None:
            async with self._subscriber(TrickleSubscriber, url, start_seq) as sub:
                async for segment in sub:
                    await send.send(await segment.read())

        return self._reader(produce, "output segments", 2)

    def events(self, *, buffer: int = 64) -> AsyncIterator[dict[str, Any]]:
        """Events reported by the job (status, errors, …), one dict each; keepalives are dropped."""
        from livepeer.trickle import JsonSegmentReader

        url = self._channel(self.channels.events_url, "events")
        return self._json_records(url, JsonSegmentReader, "events", buffer)

    def data(self, *, buffer: int = 256) -> AsyncIterator[dict[str, Any]]:
        """Records of the job's data channel (BYOC live streams with data output), one dict each."""
        from livepeer.trickle import JsonlReader

        url = self._channel(self.channels.data_url, "data")
        return self._json_records(url, JsonlReader, "data", buffer)

    def _json_records(
        self,
        url: str,
        reader_cls: Callable[[TrickleSubscriber], AsyncIterator[object]],
        what: str,
        buffer: int,
    ) -> AsyncIterator[dict[str, Any]]:
        from livepeer.trickle import JsonChannelError, TrickleSubscriber

        async def produce(send: MemoryObjectSendStream[dict[str, Any]]) -> None:
            # From the oldest retained segment: records written before the caller asked are not lost.
            async with self._subscriber(TrickleSubscriber, url, 0) as sub:
                records = reader_cls(sub)
                while True:
                    try:
                        record = await records.__anext__()
                    except StopAsyncIteration:
                        return
                    except JsonChannelError as exc:  # one malformed record does not end the channel
                        log.warning("skipping malformed %s record: %s", what, exc)
                        continue
                    if isinstance(record, dict):
                        await send.send(record)

        return self._reader(produce, what, buffer)
