"""``text-reversal``: batch JSON, ``{"text"}`` -> ``{"original", "reversed"}``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from livepeer.runner import Pipeline

CAPABILITY = "text-reversal"

__all__ = ["CAPABILITY", "ReversalOutput", "TextReversal"]


class ReversalOutput(BaseModel):
    original: str = Field(description="The text as received.")
    reversed: str = Field(description="The text, character order reversed.")


class TextReversal(Pipeline):
    """Reverse a piece of text, character by character."""

    name = CAPABILITY
    input_model_name = "TextReversalInput"
    concurrency = 8

    def predict(
        self, text: Annotated[str, Field(max_length=100_000, description="Text to reverse.")]
    ) -> ReversalOutput:
        return ReversalOutput(original=text, reversed=text[::-1])
