"""The whole devnet in one process: orchestrators, a remote signer with discovery, and sample workers.

``async with Devnet(DevnetOptions(orchestrators=2)) as net: print(net.token)``
Every server binds 127.0.0.1 and is stopped when the block exits.
"""

from __future__ import annotations

import base64
import json
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import httpx

from livepeer.devnet._apps import LiveRunner
from livepeer.devnet._keys import TempCert, self_signed_cert
from livepeer.devnet._orchestrator import Faults, Orchestrator, OrchestratorOptions
from livepeer.devnet._signer import Signer, SignerFaults
from livepeer.runner.hosting import ASGIApp, HostedApp, bind_socket, hosted

__all__ = ["Devnet", "DevnetOptions", "OrchestratorHandle"]

log = logging.getLogger("livepeer.devnet")


@dataclass
class DevnetOptions:
    """How to start a devnet.

    ``port_base``: orchestrator i listens on ``port_base + i`` and the signer on ``port_base + N``
    (None: free ports). ``faulty``: index of an orchestrator started with ``faults`` applied.
    ``discovery_warmup``: seconds the signer's discovery answers 503 after start.
    """

    onchain: bool = False
    orchestrators: int = 1
    port_base: int | None = None
    faulty: int | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    discovery_warmup: float = 0.0
    # Orchestrator i charges (1 + i) * base price, so several orchestrators differ in price.
    base_price_per_unit: int = 1
    pixels_per_unit: int = 100
    byoc_price_per_second: int = 1000
    trickle_idle_timeout: float = 300.0


class OrchestratorHandle:
    """One running orchestrator: its URL, state, fault switches and ``restart()``."""

    def __init__(self, net: Devnet, orch: Orchestrator, index: int) -> None:
        self._net = net
        self.orch = orch
        self.index = index
        self.url = ""
        self.cert: TempCert | None = None
        self._restart = anyio.Event()
        self._running = anyio.Event()

    @property
    def faults(self) -> Faults:
        return self.orch.faults

    @property
    def cert_pem(self) -> bytes:
        assert self.cert is not None
        return self.cert.cert_pem

    async def restart(self) -> None:
        """Stop and start again on the same port with a new certificate and empty session state."""
        self._running = anyio.Event()
        self._restart.set()
        with anyio.fail_after(10):
            await self._running.wait()

    async def serve(self, stop: anyio.Event, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        port = (
            0 if self._net.options.port_base is None else self._net.options.port_base + self.index
        )
        sock = bind_socket("127.0.0.1", port)
        self.url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        self.orch.service_url = self.url
        started = False
        try:
            while True:
                self.cert = self_signed_cert("localhost")
                try:
                    async with hosted(self.orch.asgi, sock=sock, tls=self.cert.files):
                        if started:
                            # Workers re-register with a restarted orchestrator, as they do upstream.
                            await self._net.register_workers(self)
                        self._running.set()
                        if not started:
                            started = True
                            task_status.started()
                        async with anyio.create_task_group() as tg:

                            async def wait_restart() -> None:
                                await self._restart.wait()
                                tg.cancel_scope.cancel()

                            async def wait_stop() -> None:
                                await stop.wait()
                                tg.cancel_scope.cancel()

                            tg.start_soon(wait_restart)
                            tg.start_soon(wait_stop)
                finally:
                    self.cert.remove()
                if stop.is_set():
                    return
                self._restart = anyio.Event()
                await self.orch.live.stop_all()
                self.orch.reset_after_restart()
        finally:
            sock.close()


class Devnet:
    """A running devnet (use as an async context manager)."""

    def __init__(self, options: DevnetOptions | None = None) -> None:
        self.options = options or DevnetOptions()
        if self.options.orchestrators < 1:
            raise ValueError("orchestrators must be >= 1")
        self.orchestrators: list[OrchestratorHandle] = []
        self.signer = Signer(orchestrators=lambda: [h.orch for h in self.orchestrators])
        self._funded: set[str] = {self.signer.key.address.lower()}
        self.signer_url = ""
        self.control_url = ""
        # BYOC worker URLs by capability name, AI stand-in URLs by pipeline.
        self.workers: dict[str, str] = {}
        self.ai_runners: dict[str, str] = {}
        # Created in __aenter__: an anyio Event belongs to the event loop (and backend) that makes it, and a
        # Devnet may be constructed in one thread and run in another (pytest_plugin).
        self._stop: anyio.Event | None = None
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def _stopping(self) -> anyio.Event:
        if self._stop is None:
            raise RuntimeError("the devnet is not running")
        return self._stop

    # -- public -----------------------------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return f"{self.signer_url}/discover-orchestrators"

    @property
    def signer_faults(self) -> SignerFaults:
        return self.signer.faults

    def fund(self, address: str) -> None:
        """Give ``address`` a ticket reserve on every orchestrator (go-livepeer's sender deposit/reserve):
        without one, priced BYOC work is refused with 503 "insufficient sender reserve"."""
        self._funded.add(address.lower())

    @property
    def token(self) -> str:
        """The base64 configuration token (PROTOCOL.md §2) naming every orchestrator and the signer."""
        body = {
            "orchestrators": [h.url for h in self.orchestrators],
            "signer": self.signer_url,
            "discovery": self.discovery_url,
        }
        return base64.b64encode(json.dumps(body).encode()).decode()

    def info(self) -> dict[str, Any]:
        """The JSON line ``livepeer devnet`` prints."""
        return {
            "orchestrators": [h.url for h in self.orchestrators],
            "signer": self.signer_url,
            "discovery": self.discovery_url,
            "token": self.token,
            "mode": "onchain" if self.options.onchain else "offchain",
            "control": self.control_url,
            "signer_address": self.signer.key.address,
            "orchestrator_addresses": [h.orch.key.address for h in self.orchestrators],
            "orchestrator_secrets": [h.orch.options.secret for h in self.orchestrators],
            "capabilities": sorted(self.workers),
            "faulty": self.options.faulty,
        }

    async def __aenter__(self) -> Devnet:
        self._stop = anyio.Event()
        self._stack = AsyncExitStack()
        try:
            await self._start(self._stack)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._stop is not None:
            self._stop.set()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    # -- startup ----------------------------------------------------------------------------------------

    async def _start(self, stack: AsyncExitStack) -> None:
        from livepeer.devnet import samples
        from livepeer.runner import serve

        opts = self.options
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(
            self._stopping.set
        )  # runs first on exit: servers stop before the task group joins
        for name, cls in samples.BYOC.items():
            self.workers[name] = (await self._host(serve(cls, name=name))).url
        for pipeline, cls in samples.AI_PIPELINES.items():
            self.ai_runners[pipeline] = (await self._host(serve(cls, name=pipeline))).url
        ai_models = {p: _model_id(p) for p in samples.AI_PIPELINES}
        for i in range(opts.orchestrators):
            orch = Orchestrator(
                OrchestratorOptions(
                    name=f"orch-{i}",
                    onchain=opts.onchain,
                    price_per_unit=opts.base_price_per_unit * (i + 1),
                    pixels_per_unit=opts.pixels_per_unit,
                    lv2v_models=tuple(samples.LV2V_MODELS),
                    ai_models=ai_models,
                    trickle_idle_timeout=opts.trickle_idle_timeout,
                )
            )
            orch.ai_runners = dict(self.ai_runners)
            # Only the signer's key has a ticket reserve; ``fund()`` gives other keys one.
            orch.funded_senders = self._funded
            orch.live.task_group = self._tg
            orch.devnet_workers = dict(self.workers)
            price = opts.byoc_price_per_second * (i + 1)
            orch.apps.runners = {
                "reverse": LiveRunner(
                    name="reverse", app="text-reversal/devnet", worker="text-reversal",
                    price_per_second=price,
                ),
                "reverse-once": LiveRunner(
                    name="reverse-once", app="text-reversal/devnet-once", worker="text-reversal",
                    price_per_second=price, mode="single-shot",
                ),
                "reverse-fixed": LiveRunner(
                    name="reverse-fixed", app="text-reversal/devnet-fixed", worker="text-reversal",
                    price_per_second=price * 60, unit="fixed",
                ),
            }  # fmt: skip
            orch.live_apps = {m: cls for m, cls in samples.LV2V_MODELS.items()}
            orch.byoc_live_classes = {
                n: c for n, c in samples.BYOC.items() if not hasattr(c, "predict")
            }
            handle = OrchestratorHandle(self, orch, i)
            if opts.faulty == i and opts.faults:
                orch.faults.update(opts.faults)
            self.orchestrators.append(handle)
            stack.push_async_callback(orch.aclose)
            await self._tg.start(handle.serve, self._stopping)
            await self.register_workers(handle)
        signer_port = None if opts.port_base is None else opts.port_base + opts.orchestrators
        if opts.discovery_warmup > 0:
            self.signer.faults.discovery_warm = False

            async def warm() -> None:
                with anyio.move_on_after(opts.discovery_warmup):
                    await self._stopping.wait()
                self.signer.faults.discovery_warm = True

            self._tg.start_soon(warm)
        self.signer_url = (await self._host(self.signer.app, port=signer_port or 0)).url
        from livepeer.devnet._control import control_app

        self.control_url = (await self._host(control_app(self))).url

    async def _host(self, app: ASGIApp, *, port: int = 0) -> HostedApp:
        assert self._tg is not None

        async def run(*, task_status: anyio.abc.TaskStatus[HostedApp]) -> None:
            async with hosted(app, port=port) as srv:
                task_status.started(srv)
                await self._stopping.wait()

        result: HostedApp = await self._tg.start(run)
        return result

    async def register_workers(self, handle: OrchestratorHandle) -> None:
        """Register every BYOC sample with ``handle`` over HTTP, as a worker does at boot."""
        async with httpx.AsyncClient(verify=False, timeout=10) as client:
            for name, url in self.workers.items():
                body = {
                    "name": name,
                    "description": f"devnet sample {name}",
                    "url": url,
                    "capacity": 4,
                    "price_per_unit": self.options.byoc_price_per_second * (handle.index + 1),
                    "price_scaling": 1,
                    "currency": "wei",
                    "token": "",
                }
                response = await client.post(
                    f"{handle.url}/capability/register",
                    json=body,
                    headers={"Authorization": handle.orch.options.secret},
                )
                response.raise_for_status()


def _model_id(pipeline: str) -> str:
    import importlib

    module = importlib.import_module(f"livepeer.devnet.samples.{pipeline.replace('-', '_')}")
    return str(module.MODEL_ID)
