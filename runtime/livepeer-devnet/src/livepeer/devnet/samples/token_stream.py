"""``token-stream``: SSE, one event per whitespace-separated word of ``{"text"}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from pydantic import BaseModel, Field

from livepeer.runner import Pipeline

CAPABILITY = "token-stream"

__all__ = ["CAPABILITY", "Token", "TokenStream"]


class Token(BaseModel):
    index: int = Field(description="Position of the word in the text, from 0.")
    token: str = Field(description="The word.")


class TokenStream(Pipeline):
    """Stream the words of a text back, one server-sent event per word."""

    name = CAPABILITY
    input_model_name = "TokenStreamInput"

    async def predict(
        self,
        text: Annotated[str, Field(max_length=100_000, description="Text to split into words.")],
        delay_ms: Annotated[
            int, Field(ge=0, le=10_000, description="Pause before each word, in milliseconds.")
        ] = 0,
    ) -> AsyncIterator[Token]:
        for index, word in enumerate(text.split()):
            if delay_ms:
                await anyio.sleep(delay_ms / 1000)
            yield Token(index=index, token=word)
