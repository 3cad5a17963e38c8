"""``sentiment``: batch JSON; a tiny deterministic lexicon scorer (no model)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from livepeer.runner import Pipeline

CAPABILITY = "sentiment"

__all__ = ["CAPABILITY", "Sentiment", "SentimentOutput", "score"]

_POSITIVE = frozenset(
    [
        "good",
        "great",
        "excellent",
        "happy",
        "love",
        "like",
        "nice",
        "wonderful",
        "amazing",
        "fantastic",
        "best",
        "awesome",
        "enjoy",
        "glad",
        "pleasant",
        "delightful",
        "superb",
        "brilliant",
        "fine",
        "beautiful",
        "perfect",
        "thanks",
    ]
)
_NEGATIVE = frozenset(
    [
        "bad",
        "terrible",
        "awful",
        "sad",
        "hate",
        "dislike",
        "horrible",
        "worst",
        "poor",
        "angry",
        "ugly",
        "boring",
        "annoying",
        "broken",
        "disappointing",
        "fail",
        "failed",
        "wrong",
        "slow",
        "painful",
    ]
)
_NEGATORS = frozenset(
    ["not", "no", "never", "isn't", "wasn't", "don't", "doesn't", "didn't", "can't", "won't"]
)
_WORD = re.compile(r"[a-z']+")


class SentimentOutput(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    score: float = Field(
        ge=-1.0, le=1.0, description="(positive - negative) / matched words; 0 if none."
    )
    positive: int = Field(description="Words counted as positive.")
    negative: int = Field(description="Words counted as negative.")


def score(text: str) -> SentimentOutput:
    """Score ``text``: a lexicon word right after a negator ("not good") counts for the other side."""
    positive = negative = 0
    negate = False
    for word in _WORD.findall(text.lower()):
        polarity = 1 if word in _POSITIVE else -1 if word in _NEGATIVE else 0
        if polarity and negate:
            polarity = -polarity
        if polarity > 0:
            positive += 1
        elif polarity < 0:
            negative += 1
        negate = word in _NEGATORS
    matched = positive + negative
    value = (positive - negative) / matched if matched else 0.0
    label: Literal["positive", "negative", "neutral"] = (
        "positive" if value > 0 else "negative" if value < 0 else "neutral"
    )
    return SentimentOutput(label=label, score=value, positive=positive, negative=negative)


class Sentiment(Pipeline):
    """Classify the sentiment of a text as positive, negative or neutral with a small word list."""

    name = CAPABILITY
    input_model_name = "SentimentInput"
    concurrency = 8

    def predict(
        self, text: Annotated[str, Field(max_length=100_000, description="Text to classify.")]
    ) -> SentimentOutput:
        return score(text)
