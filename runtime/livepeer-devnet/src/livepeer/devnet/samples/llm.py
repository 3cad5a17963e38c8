"""``llm`` stand-in: the AI-runner API (``LLMRequest`` -> ``LLMResponse``, or SSE chunks with ``stream``).

The "model" echoes the last user message word by word (``max_tokens`` words at most). Streaming follows the AI
runner: one ``data:`` event per chunk (an ``LLMResponse`` whose choice carries a ``delta``), a last chunk with
``finish_reason: "stop"``, then ``data: [DONE]``. Like the runner, unset ``delta``/``message`` are sent as null.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from pydantic import BaseModel, Field

from livepeer.runner import Pipeline

CAPABILITY = "llm"
# The Go gateway's default LLM (go-livepeer server/ai_process.go:37); the stand-in answers under that id.
MODEL_ID = "meta-llama/llama-3.1-8B-Instruct"

__all__ = [
    "CAPABILITY",
    "LLM",
    "MODEL_ID",
    "LLMChoice",
    "LLMMessage",
    "LLMResponse",
    "LLMTokenUsage",
    "reply_tokens",
]


class LLMMessage(BaseModel):
    role: str
    content: str


class LLMChoice(BaseModel):
    index: int
    finish_reason: str = ""
    delta: LLMMessage | None = None
    message: LLMMessage | None = None


class LLMTokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LLMResponse(BaseModel):
    id: str
    model: str
    created: int
    usage: LLMTokenUsage
    choices: list[LLMChoice]


def reply_tokens(messages: list[LLMMessage], max_tokens: int) -> list[str]:
    """The echo reply split into tokens (words, each but the last followed by a space)."""
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    words = ["Echo:", *last_user.split()][:max_tokens]
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]


class LLM(Pipeline):
    """Stand-in for the AI runner's llm pipeline: echoes the last user message, optionally streamed."""

    name = CAPABILITY
    input_model_name = "LLMRequest"
    extra_inputs = "ignore"

    async def predict(
        self,
        messages: Annotated[
            list[LLMMessage], Field(min_length=1, description="The conversation so far.")
        ],
        model: Annotated[
            str, Field(description="Model id; echoed back (any value is accepted).")
        ] = "",
        temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.7,
        max_tokens: Annotated[int, Field(ge=1)] = 256,
        top_p: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0,
        top_k: int = -1,
        stream: Annotated[bool, Field(description="Answer with server-sent events.")] = False,
    ) -> LLMResponse | AsyncIterator[LLMResponse]:
        tokens = reply_tokens(messages, max_tokens)
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        request_id = f"chatcmpl-{uuid.uuid4()}"
        model_name = model or MODEL_ID
        if stream:
            return self._chunks(tokens, prompt_tokens, request_id, model_name)
        return LLMResponse(
            id=request_id,
            model=model_name,
            created=int(time.time()),
            usage=_usage(prompt_tokens, len(tokens)),
            choices=[
                LLMChoice(
                    index=0,
                    finish_reason="stop",
                    message=LLMMessage(role="assistant", content="".join(tokens)),
                )
            ],
        )

    async def _chunks(
        self, tokens: list[str], prompt_tokens: int, request_id: str, model: str
    ) -> AsyncIterator[LLMResponse]:
        for count, token in enumerate(tokens, start=1):
            yield LLMResponse(
                id=request_id,
                model=model,
                created=int(time.time()),
                usage=_usage(prompt_tokens, count),
                choices=[LLMChoice(index=0, delta=LLMMessage(role="assistant", content=token))],
            )
        yield LLMResponse(
            id=request_id,
            model=model,
            created=int(time.time()),
            usage=_usage(prompt_tokens, len(tokens)),
            choices=[
                LLMChoice(
                    index=0, finish_reason="stop", delta=LLMMessage(role="assistant", content="")
                )
            ],
        )


def _usage(prompt_tokens: int, completion_tokens: int) -> LLMTokenUsage:
    return LLMTokenUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
