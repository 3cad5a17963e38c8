"""Built-in AI pipeline routes (``POST /{pipeline}``) as go-livepeer's orchestrator serves them.

The error ladder follows ``handleAIRequest`` (``server/ai_http.go:1380-1736`` at 176aa415) branch by branch:
body decode (400) -> ``Livepeer-Payment`` decode (402) -> ``verifySegCreds`` (403, also offchain) -> model id
(nil pointer: the handler panics and the connection drops) -> pipeline pixel estimate (400) -> capacity (503)
-> ``ProcessPayment`` (400) -> one-ticket balance floor (400) -> runner (500) -> debit of ``outPixels``.
Every error body is ``http.Error`` plain text: the message and a newline. docs/fidelity.md ("Built-in AI pipelines") lists each
row with its upstream line and the test that checks it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from livepeer.devnet._goform import (
    STRUCTS,
    DecodeError,
    audio_seconds,
    decode_json,
    decode_multipart,
)
from livepeer.devnet._goform import image_config as _image_config
from livepeer.devnet._gohttp import ANY_METHOD, DroppedConnection, Reject, go_error
from livepeer.devnet._keys import recover_hash_signer
from livepeer.devnet._payments import FACE_VALUE, WIN_PROB
from livepeer.devnet._signer import segment_message
from livepeer.devnet._wire import BUILTIN_PIPELINES, LV2V_CAPABILITY_ID, MAX_WIN_PROB

if TYPE_CHECKING:
    from livepeer.devnet._orchestrator import Orchestrator
    from livepeer.devnet._wire import pb

__all__ = ["AIRoutes", "out_pixels"]

log = logging.getLogger("livepeer.devnet")

# core/capabilities.go ids of the batch pipelines: the client's table, less the live pipeline.
CAPABILITY_IDS = {k: v for k, v in BUILTIN_PIPELINES.items() if v != LV2V_CAPABILITY_ID}
# go-livepeer reads AI request bodies without a limit (MaxAIRequestSize, ai_http.go:40, bounds only worker
# results); the devnet keeps everything in memory and stops at this size instead.
MAX_BODY = 256 * 1024 * 1024
# What the worker's errors call each pipeline (ai/worker/worker.go).
_RUNNER_LABEL = {"llm": "LLM", "segment-anything-2": "segment anything 2"}
# The recipient's required ticket EV (pm/recipient.go:396-398): the devnet issues one ticket size only.
# pm/ticket.go:222-224: EV divides by 2^256 - 1 (maxWinProb), as ticket_ev does.
REQUIRED_EV = Fraction(FACE_VALUE * WIN_PROB, MAX_WIN_PROB)
# The frames stable-video-diffusion-img2vid-xt produces (ai_http.go:1488-1489).
IMAGE_TO_VIDEO_FRAMES = 25


class _Panic(Exception):
    """A nil dereference or division by zero in the Go handler: net/http recovers and drops the connection."""


def out_pixels(pipeline: str, req: dict[str, object]) -> int:
    """The units ``handleAIRequest`` bills (``ai_http.go:1402-1574``); DecodeError for a 400."""

    def opt_int(name: str, default: int) -> int:
        value = req.get(name)
        return value if isinstance(value, int) else default

    def image() -> tuple[int, int]:
        data = req.get("image")
        return _image_config(data if isinstance(data, bytes) else b"")

    if pipeline == "text-to-image":
        return opt_int("height", 512) * opt_int("width", 512) * opt_int("num_images_per_prompt", 1)
    if pipeline == "image-to-image":
        width, height = image()
        return height * width * opt_int("num_images_per_prompt", 1)
    if pipeline in ("upscale", "segment-anything-2", "image-to-text"):
        width, height = image()
        return height * width
    if pipeline == "image-to-video":
        return opt_int("height", 576) * opt_int("width", 1024) * IMAGE_TO_VIDEO_FRAMES
    if pipeline == "audio-to-text":
        data = req.get("audio")
        try:
            return audio_seconds(data if isinstance(data, bytes) else b"") * 1000
        except DecodeError:
            raise DecodeError("Unable to calculate duration") from None
    if pipeline == "llm":
        if req.get("max_tokens") is None:
            raise DecodeError("MaxTokens not specified")
        return opt_int("max_tokens", 0)
    if pipeline == "text-to-speech":
        text = req.get("text")
        if not isinstance(text, str):
            raise _Panic()  # *v.Text on a nil pointer (ai_http.go:1569)
        return 1000 * len(text)
    raise DecodeError("Unknown request type")


class AIRoutes:
    """The batch AI routes of one emulated orchestrator."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self.in_use: dict[tuple[str, str], int] = {}
        # Status codes answered so far (tests read it; a dropped connection counts as 0).
        self.answers: Counter[int] = Counter()

    def routes(self) -> list[BaseRoute]:
        # startAIServer registers every batch route whatever runners the node has (ai_http.go:81-89).
        return [Route(f"/{p}", self._handler(p), methods=ANY_METHOD) for p in STRUCTS]

    def _handler(self, pipeline: str) -> Any:
        async def handler(request: Request) -> Response:
            try:
                response = await self.handle(request, pipeline)
            except _Panic:
                log.info("devnet: %s handler panicked (as go-livepeer would); dropping", pipeline)
                self.answers[0] += 1
                return DroppedConnection()
            self.answers[response.status_code] += 1
            return response

        return handler

    # -- capacity -----------------------------------------------------------------------------------------

    def capacity(self, pipeline: str, model: str) -> int:
        if (
            self.orch.options.ai_models.get(pipeline) != model
            or pipeline not in self.orch.ai_runners
        ):
            return 0
        return self.orch.options.ai_capacity

    def _reserve(self, pipeline: str, model: str) -> bool:
        key = (pipeline, model)
        if self.orch.faults.no_capacity or self.in_use.get(key, 0) >= self.capacity(*key):
            return False
        self.in_use[key] = self.in_use.get(key, 0) + 1
        return True

    def _release(self, pipeline: str, model: str) -> None:
        key = (pipeline, model)
        self.in_use[key] = max(0, self.in_use.get(key, 0) - 1)

    # -- the ladder ---------------------------------------------------------------------------------------

    async def handle(self, request: Request, pipeline: str) -> Response:
        if request.method != "POST":
            # The OpenAPI validator finds no route for other methods; its ErrorHandler only logs
            # (ai_http.go:60-62) and writes nothing, so net/http answers 200 with an empty body.
            return Response(b"", status_code=200)
        struct = STRUCTS[pipeline]
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return go_error("request body too large (devnet limit)", 413)
        try:
            if struct.multipart:
                req = decode_multipart(bytes(body), request.headers.get("content-type", ""), struct)
            else:
                req = decode_json(bytes(body), struct)
        except DecodeError as exc:
            return go_error(str(exc), 400)
        try:
            payment = self._get_payment(request.headers.get("livepeer-payment", ""))
            sender = _address(payment.sender)
            self._verify_seg_creds(request.headers.get("livepeer-segment", ""), sender)
            model = req.get("model" if pipeline == "llm" else "model_id")
            if not isinstance(model, str):
                raise _Panic()  # modelID = *v.ModelId / *v.Model on nil (ai_http.go:1406, 1509)
            try:
                pixels = out_pixels(pipeline, req)
            except DecodeError as exc:
                raise Reject(400, str(exc)) from None
        except Reject as exc:
            return exc.response()
        manifest = f"{CAPABILITY_IDS[pipeline]}_{model}"
        if not self._reserve(pipeline, model):
            return go_error("insufficient capacity", 503)
        released = False
        try:
            onchain = self.orch.options.onchain
            key = ("0x" + sender.hex(), manifest)
            try:
                if onchain:
                    self._process_payment(payment, key)
                    expected = payment.expected_price
                    if expected.pricePerUnit > 0 and self.orch.balances.get(key) < REQUIRED_EV:
                        raise Reject(400, "Insufficient balance")
            except Reject as exc:
                return exc.response()
            response = await self._submit(request, pipeline, struct.multipart, bytes(body), req)
            if isinstance(response, Response) and response.status_code >= 400:
                return response
            if onchain:
                price = payment.expected_price
                if price.pixelsPerUnit == 0:
                    raise _Panic()  # big.NewRat(ppu, 0) in DebitFees (core/orchestrator.go:486)
                self.orch.balances.debit(
                    key, Fraction(price.pricePerUnit, price.pixelsPerUnit) * pixels
                )
            if isinstance(response, _Stream):
                released = True
                return response.respond(lambda: self._release(pipeline, model))
            return response
        finally:
            if not released:
                self._release(pipeline, model)

    def _get_payment(self, header: str) -> pb.Payment:
        """``getPayment`` (``server/segment_rpc.go:316-327``): an empty header is an empty payment."""
        from livepeer.devnet._wire import pb

        try:
            raw = _std_b64(header)
        except ValueError as exc:
            raise Reject(402, f"base64 decode error: {exc}") from None
        payment = pb.Payment()
        try:
            payment.ParseFromString(raw)
        except Exception:  # protobuf's DecodeError
            raise Reject(
                402, "protobuf unmarshal error: proto: cannot parse invalid wire-format data"
            ) from None
        return payment

    def _verify_seg_creds(self, header: str, sender: bytes) -> None:
        """``verifySegCreds`` (``server/segment_rpc.go:401-452``): runs offchain too (``ai_http.go:1388``)."""
        from livepeer.devnet._wire import pb

        try:
            raw = _std_b64(header)
        except ValueError:
            raise Reject(403, "ErrorSegEncoding") from None
        seg = pb.SegData()
        try:
            seg.ParseFromString(raw)
        except Exception:
            raise Reject(403, "proto: cannot parse invalid wire-format data") from None
        if seg.duration < 0 or seg.duration > 300_000:  # common.MaxDuration is 5 minutes
            raise Reject(403, "invalid duration")
        if self.orch.options.onchain:
            # orch.VerifySig is true without an Eth client (core/orchestrator.go:70-75).
            signer = recover_hash_signer(segment_message(seg), bytes(seg.sig))
            if signer is None or bytes.fromhex(signer[2:]) != sender:
                raise Reject(403, "ErrSegSig")
        if seg.HasField("capabilities") and not _compatible(seg.capabilities, self.orch):
            raise Reject(403, "incompatible capabilities")
        if not seg.HasField("auth_token"):
            raise Reject(403, "missing auth token")
        why = self.orch.tickets.check_auth_token(seg.auth_token)
        if why is not None:
            raise Reject(403, why)

    def _process_payment(self, payment: pb.Payment, key: tuple[str, str]) -> None:
        """``ProcessPayment`` (``core/orchestrator.go:113-235``): credit each ticket's EV until one fails."""
        if not payment.sender and payment.HasField("ticket_params"):
            raise Reject(400, "Could not find Sender for payment: " + _short(payment))
        if not payment.HasField("ticket_params"):
            return  # no tickets: the session's fixed price becomes 0
        expected = payment.expected_price if payment.HasField("expected_price") else None
        if expected is None:
            raise Reject(
                400, 'invalid expected price sent with payment err="expected price is nil"'
            )
        if expected.pixelsPerUnit == 0:
            raise Reject(400, 'invalid expected price sent with payment err="pixels per unit is 0"')
        # One ticket implementation for every route: TicketBook.process_payment recovers each signature
        # (pm/validator.go), binds the recipientRand to the sender and price it was minted for
        # (pm/recipient.go:355-367), keeps 600 nonces per rand and credits until the first refusal.
        error = self.orch.tickets.process_payment(
            payment, lambda _sender, ev: self.orch.balances.credit(key, ev)
        )
        if error is not None:
            raise Reject(400, error)

    async def _submit(
        self,
        request: Request,
        pipeline: str,
        multipart: bool,
        body: bytes,
        req: dict[str, object],
    ) -> Response | _Stream:
        o = self.orch
        runner = o.ai_runners.get(pipeline)
        label = _RUNNER_LABEL.get(pipeline, pipeline)
        if o.faults.worker_delay:
            import anyio

            await anyio.sleep(o.faults.worker_delay)
        if multipart:
            content, ctype = body, request.headers.get("content-type", "")
        else:
            # The worker re-encodes the Go struct: unknown keys are gone, non-pointer fields always sent.
            sent = dict(req)
            if pipeline == "text-to-image":
                sent.setdefault("prompt", "")
            if pipeline == "llm":
                sent.setdefault("messages", None)
            content, ctype = json.dumps(sent).encode(), "application/json"
        try:
            if o.faults.worker_dead or runner is None:
                raise httpx.ConnectError("runner unreachable (devnet fault)")
            upstream = await o.http.send(
                o.http.build_request(
                    "POST", f"{runner}/{pipeline}", content=content, headers={"content-type": ctype}
                ),
                stream=True,
            )
        except httpx.HTTPError as exc:
            return go_error(f"{label} container request failed: {exc}", 500)
        streaming = pipeline == "llm" and req.get("stream") is True
        if streaming:
            if upstream.status_code != 200:
                await upstream.aclose()
                return go_error(f"unexpected status code: {upstream.status_code}", 500)
            return _Stream(upstream)
        raw = await upstream.aread()
        await upstream.aclose()
        if upstream.status_code != 200:
            return go_error(
                f"{label} container returned {upstream.status_code}: {_detail(raw)}", 500
            )
        try:
            value = json.loads(raw)
        except ValueError:
            return go_error(f"{label} container returned an undecodable response", 500)
        if pipeline in ("text-to-image", "image-to-image", "upscale"):
            value = _go_image_response(value)
        elif pipeline == "llm":
            value = _go_llm_response(value)
        return Response(_go_json(value), status_code=200, media_type="application/json")


class _Stream:
    """An LLM SSE relay as ``handleAIRequest`` writes it (``ai_http.go:1696-1726``): each chunk re-encoded
    as ``data: {json}\\n\\n``, stopping after the first chunk with a finish reason; no ``[DONE]`` line."""

    def __init__(self, upstream: httpx.Response) -> None:
        self.upstream = upstream

    def respond(self, release: Any) -> Response:
        upstream = self.upstream

        async def events() -> AsyncIterator[bytes]:
            try:
                async for line in upstream.aiter_lines():
                    data = line[6:] if line.startswith("data: ") else line
                    if not data or data == "[DONE]":
                        continue
                    try:
                        chunk = _go_llm_response(json.loads(data))
                    except ValueError:
                        continue  # the worker logs undecodable lines and skips them
                    yield b"data: " + _go_json(chunk).rstrip(b"\n") + b"\n\n"
                    choices = chunk.get("choices") or []
                    if not choices:
                        return  # Go indexes Choices[0] here and panics; the stream just stops
                    if choices[0].get("finish_reason"):
                        return
            finally:
                release()
                await upstream.aclose()

        headers = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _std_b64(value: str) -> bytes:
    """Go's ``base64.StdEncoding.DecodeString``: padded standard alphabet; the error names the byte."""
    try:
        return base64.b64decode(value.encode("ascii", "replace"), validate=True)
    except (binascii.Error, ValueError):
        alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        data = value.encode("ascii", "replace")
        bad = next((i for i, c in enumerate(data) if c not in alphabet), len(data) - len(data) % 4)
        raise ValueError(f"illegal base64 data at input byte {bad}") from None


def _address(raw: bytes) -> bytes:
    """``ethcommon.BytesToAddress``: the last 20 bytes, left-padded."""
    return bytes(raw)[-20:].rjust(20, b"\x00")


def _short(payment: pb.Payment) -> str:
    return str(payment).replace("\n", " ")[:200]


def _compatible(caps: pb.Capabilities, orch: Orchestrator) -> bool:
    """``Capabilities.CompatibleWith`` reduced to what the devnet varies: requested capability bits and
    models must be offered (``core/capabilities.go:481-511``)."""
    offered = orch.capabilities_proto()
    words = list(offered.bitstring)
    for index, word in enumerate(caps.bitstring):
        have = words[index] if index < len(words) else 0
        if word & ~have:
            return False
    for cid, constraint in caps.constraints.PerCapability.items():
        models = (
            offered.constraints.PerCapability[cid].models
            if cid in offered.constraints.PerCapability
            else {}
        )
        if any(m not in models for m in constraint.models):
            return False
    return True


def _detail(raw: bytes) -> str:
    try:
        value = json.loads(raw)
        msg = value["detail"]["msg"]
        if isinstance(msg, str):
            return msg
    except (ValueError, KeyError, TypeError):
        pass
    return raw.decode("utf-8", "replace")[:300]


def _go_json(value: object) -> bytes:
    """``json.NewEncoder(w).Encode``: compact, ``<``, ``>``, ``&`` escaped, one trailing newline."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (text + "\n").encode()


def _go_image_response(value: Any) -> dict[str, Any]:
    """``worker.ImageResponse`` (runner.gen.go:263-266, Media :379-388): known fields, Go field order."""
    images = value.get("images") if isinstance(value, dict) else None
    out = []
    for media in images if isinstance(images, list) else []:
        m = media if isinstance(media, dict) else {}
        out.append(
            {"nsfw": bool(m.get("nsfw", False)), "seed": m.get("seed", 0), "url": m.get("url", "")}
        )
    return {"images": out}


def _go_llm_response(value: Any) -> dict[str, Any]:
    """``worker.LLMResponse`` (runner.gen.go:275-313): omitempty pointers vanish when null."""
    v = value if isinstance(value, dict) else {}

    def message(m: Any) -> dict[str, Any] | None:
        if not isinstance(m, dict):
            return None
        return {"content": m.get("content", ""), "role": m.get("role", "")}

    choices = []
    for c in v.get("choices") or []:
        c = c if isinstance(c, dict) else {}
        choice: dict[str, Any] = {}
        if message(c.get("delta")) is not None:
            choice["delta"] = message(c.get("delta"))
        if c.get("finish_reason") is not None:
            choice["finish_reason"] = c["finish_reason"]
        choice["index"] = c.get("index", 0)
        if message(c.get("message")) is not None:
            choice["message"] = message(c.get("message"))
        choices.append(choice)
    raw_usage = v.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    return {
        "choices": choices,
        "created": v.get("created", int(time.time())),
        "id": v.get("id", ""),
        "model": v.get("model", ""),
        "usage": {
            "completion_tokens": usage.get("completion_tokens", 0),
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
    }
