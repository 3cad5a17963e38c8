"""LiveSession core over a real trickle server on loopback (the route part is a recording fake job)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio
import numpy as np
import pytest

from livepeer.client._errors import ConnectionError, PaymentError, ValidationError
from livepeer.client._live import LiveChannels, LiveSession, check_channel_url
from livepeer.runner.hosting import HostedApp, bind_socket, hosted
from livepeer.trickle import (
    JsonlWriter,
    JsonSegmentWriter,
    TricklePublisher,
    TrickleServer,
    TrickleSubscriber,
)

NAMES = ("job", "job-out", "job-control", "job-events", "job-data")


@dataclass
class FakeJob:
    """Stands in for a route: records payments, updates and the stop call."""

    payment_interval: float | None = None
    fail_payment_after: int | None = None
    payments: int = 0
    updates: list[Mapping[str, object]] = field(default_factory=list)
    stops: int = 0

    async def pay(self) -> None:
        if self.fail_payment_after is not None and self.payments >= self.fail_payment_after:
            raise PaymentError("signer refused (test)")
        self.payments += 1

    async def update(
        self,
        params: Mapping[str, object],
        send_control: Callable[[Mapping[str, object]], Awaitable[None]],
    ) -> None:
        self.updates.append(dict(params))
        await send_control({"params": dict(params)})

    async def stop(self) -> None:
        self.stops += 1


@pytest.fixture
async def trickle() -> AsyncIterator[tuple[TrickleServer, HostedApp]]:
    server = TrickleServer()
    for name in NAMES:
        mime = "video/mp2t" if name in ("job", "job-out") else "application/json"
        server.create_channel(name, mime_type=mime)
    async with hosted(server) as srv:
        yield server, srv


def channels(srv: HostedApp, *, data: bool = True) -> LiveChannels:
    return LiveChannels(
        publish_url=f"{srv.url}/job",
        subscribe_url=f"{srv.url}/job-out",
        control_url=f"{srv.url}/job-control",
        events_url=f"{srv.url}/job-events",
        data_url=f"{srv.url}/job-data" if data else None,
    )


def session_for(
    srv: HostedApp,
    job: FakeJob,
    *,
    keepalive: float = 10.0,
    chans: LiveChannels | None = None,
    reader_retries: int = 5,
) -> LiveSession:
    async def start() -> tuple[LiveChannels, FakeJob, Mapping[str, object]]:
        return chans or channels(srv), job, {"manifest_id": "job", "publish_url": f"{srv.url}/job"}

    return LiveSession(
        start, capability="live-video-to-video", model="noop", orchestrator=srv.url,
        keepalive_interval=keepalive, reader_retries=reader_retries,
    )  # fmt: skip


async def passthrough(srv: HostedApp, server: TrickleServer) -> None:
    """What a noop runner does: copy input segments to the output channel, then close it."""
    async with (
        TrickleSubscriber(f"{srv.url}/job", start_seq=0) as sub,
        TricklePublisher(f"{srv.url}/job-out", mime_type="video/mp2t") as pub,
    ):
        async for segment in sub:
            await pub.write(await segment.read())
    server.close_channel("job-out")


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (callers bound the wait with fail_after)."""
    while not condition():  # noqa: ASYNC110 - a test helper polling observable state
        await anyio.sleep(0.02)


def _task_files(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    return code.co_filename if code is not None else ""


def client_tasks() -> list[str]:
    """Tasks running client-side code (ours or httpx's); none may outlive a closed session."""
    return [
        repr(task)
        for task in asyncio.all_tasks()
        if any(
            m in _task_files(task)
            for m in ("/livepeer/client/", "/livepeer/trickle/", "httpx", "httpcore")
        )
    ]


def established(port: int) -> int:
    """ESTABLISHED TCP connections touching ``port`` on this machine (Linux /proc/net/tcp*).

    A client that closed its socket leaves its side in FIN_WAIT and the server's in CLOSE_WAIT, so any
    ESTABLISHED entry means a connection someone still holds open.
    """
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115 - tiny procfs read
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            ports = {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)}
            count += state == "01" and port in ports
    return count


def frame(i: int) -> np.ndarray:
    return np.full((48, 64, 3), (i * 7) % 256, np.uint8)


@pytest.mark.anyio
async def test_frames_round_trip_through_publish_and_subscribe(
    trickle: tuple[TrickleServer, HostedApp],
) -> None:
    server, srv = trickle
    job = FakeJob()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(passthrough, srv, server)
            async with session_for(srv, job) as session:
                assert session.manifest_id == "job"
                assert session.orchestrator == srv.url
                frames_out = session.subscribe(start_seq=0)
                async with session.publish(fps=10) as pub:
                    for i in range(25):
                        await pub.write_frame(frame(i))
                received = [f async for f in frames_out]
    assert len(received) == 25
    assert {(f.width, f.height) for f in received} == {(64, 48)}
    assert job.stops == 1
    assert "job" not in server.channels  # the publish channel was DELETEd: input ended


@pytest.mark.anyio
async def test_control_messages_and_keepalives_reach_the_control_channel(
    trickle: tuple[TrickleServer, HostedApp],
) -> None:
    _, srv = trickle
    seen: list[object] = []

    async def read_control() -> None:
        async with TrickleSubscriber(f"{srv.url}/job-control", start_seq=0) as sub:
            async for segment in sub:
                seen.append(json.loads(await segment.read()))
                if len(seen) >= 4:
                    return

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_control)
            async with session_for(srv, FakeJob(), keepalive=0.1) as session:
                await session.control.write({"prompt": "a cat"})
                await eventually(lambda: len(seen) >= 4)
    assert {"prompt": "a cat"} in seen
    assert seen.count({"keep": "alive"}) >= 2


@pytest.mark.anyio
async def test_events_and_data_are_delivered_as_dicts(
    trickle: tuple[TrickleServer, HostedApp],
) -> None:
    _, srv = trickle
    async with (
        TricklePublisher(
            f"{srv.url}/job-events", mime_type="application/json", delete_on_close=False
        ) as epub,
        JsonSegmentWriter(epub) as writer,
    ):
        await writer.write({"type": "status", "inference_status": {"fps": 30}})
        await writer.write({"type": "error", "message": "boom"})
    with anyio.fail_after(20):
        async with session_for(srv, FakeJob()) as session:
            events = session.events()
            got = [await events.__anext__(), await events.__anext__()]
            async with (
                TricklePublisher(
                    f"{srv.url}/job-data", mime_type="application/jsonl", delete_on_close=False
                ) as dp,
                JsonlWriter(dp) as jw,
            ):
                await jw.write({"n": 1})
                await jw.write({"n": 2})
            data = session.data()
            records = [await data.__anext__(), await data.__anext__()]
    assert got[0]["type"] == "status"
    assert got[1] == {"type": "error", "message": "boom"}
    assert records == [{"n": 1}, {"n": 2}]


@pytest.mark.anyio
async def test_payments_run_periodically_and_failures_surface_on_the_next_call(
    trickle: tuple[TrickleServer, HostedApp],
) -> None:
    _, srv = trickle
    job = FakeJob(payment_interval=0.05, fail_payment_after=3)
    with anyio.fail_after(20):
        async with session_for(srv, job) as session:
            await eventually(lambda: session.closed)
            with pytest.raises(PaymentError, match="signer refused"):
                await session.control.write({"x": 1})
            with pytest.raises(PaymentError):
                session.publish()
    assert job.payments == 3
    assert job.stops == 1


@pytest.mark.anyio
async def test_update_goes_to_the_route(trickle: tuple[TrickleServer, HostedApp]) -> None:
    _, srv = trickle
    job = FakeJob()
    async with session_for(srv, job) as session:
        await session.update({"prompt": "a dog"})
    assert job.updates == [{"prompt": "a dog"}]
    with pytest.raises(ValidationError, match="not open"):
        await session.update({"prompt": "late"})


@pytest.mark.anyio
async def test_missing_channel_is_a_clear_error(trickle: tuple[TrickleServer, HostedApp]) -> None:
    _, srv = trickle
    async with session_for(srv, FakeJob(), chans=channels(srv, data=False)) as session:
        with pytest.raises(ValidationError, match="no data channel"):
            session.data()


@pytest.mark.anyio
async def test_foreign_channel_url_is_refused_and_the_job_still_stopped(
    trickle: tuple[TrickleServer, HostedApp],
) -> None:
    _, srv = trickle
    job = FakeJob()
    bad = LiveChannels(publish_url="https://169.254.169.254/latest", control_url=f"{srv.url}/x")
    with pytest.raises(ConnectionError, match="points at another host"):
        async with session_for(srv, job, chans=bad):
            pass
    assert job.stops == 1


def test_check_channel_url_accepts_subdomains_only() -> None:
    orch = "https://orch.example:8935"
    assert check_channel_url("https://orch.example:8935/ai/trickle/a", orch, name="u")
    assert check_channel_url("https://t1.orch.example/ai/trickle/a", orch, name="u")
    with pytest.raises(ConnectionError):
        check_channel_url("https://evilorch.example/a", orch, name="u")
    with pytest.raises(ConnectionError):
        check_channel_url("file:///etc/passwd", orch, name="u")


@pytest.mark.anyio
async def test_orchestrator_going_away_fails_the_readers_with_a_typed_error() -> None:
    server = TrickleServer()
    for name in NAMES:
        server.create_channel(name)
    sock = bind_socket()
    srv = HostedApp("127.0.0.1", sock.getsockname()[1], tls=False)
    stop_server = anyio.Event()

    async def serve() -> None:
        async with hosted(server, sock=sock):
            await stop_server.wait()
        sock.close()  # the orchestrator is gone: connections are now refused

    job = FakeJob()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            async with session_for(srv, job, reader_retries=1) as session:
                frames = session.subscribe(start_seq=0)
                await anyio.sleep(0.2)
                stop_server.set()
                with pytest.raises(ConnectionError, match="output video from"):
                    async for _ in frames:
                        pass
                assert session.closed
            await session.close()  # idempotent after exit
    assert job.stops == 1


@pytest.mark.anyio
async def test_cancellation_inside_the_session_releases_everything(
    trickle: tuple[TrickleServer, HostedApp],
) -> None:
    server, srv = trickle
    job = FakeJob(payment_interval=0.05)
    with anyio.move_on_after(0.5):
        async with session_for(srv, job) as session:
            session.events()
            session.subscribe()
            pub = session.publish(fps=10)
            await pub.write_frame(frame(1))
            await anyio.sleep(10)  # cancelled here
    assert job.stops == 1
    assert "job" not in server.channels
    assert client_tasks() == []
    with anyio.fail_after(5):
        await eventually(lambda: established(srv.port) == 0)


class RequestLog:
    """ASGI middleware recording (method, path) of every request the trickle server sees."""

    def __init__(self, app: TrickleServer) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

    def channels(self) -> set[str]:
        return {path.strip("/").split("/")[0] for _, path in self.requests}


@pytest.mark.anyio
async def test_control_is_opened_eagerly_everything_else_on_first_use() -> None:
    server = TrickleServer()
    for name in NAMES:
        server.create_channel(name)
    log = RequestLog(server)
    async with (
        hosted(log) as srv,  # type: ignore[arg-type]
        session_for(srv, FakeJob(), keepalive=0.05) as session,
    ):
        await eventually(lambda: "job-control" in log.channels())
        await anyio.sleep(0.2)
        assert log.channels() == {"job-control"}  # only the keepalives so far
        pub = session.publish(fps=10)
        events = session.events()
        # Wait for the events reader itself (a fixed sleep flaked under load), then check that it is the
        # only channel opened besides control: publishing and the other readers are still lazy.
        await eventually(lambda: "job-events" in log.channels())
        assert log.channels() == {"job-control", "job-events"}
        await pub.write_frame(frame(1))
        await eventually(lambda: "job" in log.channels())
        assert "job-out" not in log.channels()  # never subscribed
        assert "job-data" not in log.channels()
        await events.aclose()
