"""The devnet's sample capabilities, each a ``livepeer.runner`` pipeline (host one with ``serve(cls)``).

``SAMPLES`` maps a registry key to the pipeline class. BYOC capabilities and built-in AI pipelines are keyed by
their capability name; live-video-to-video models by ``"live-video-to-video/<model>"`` (the discovery key
format of PROTOCOL.md §11). The three sub-registries split them by how an orchestrator reaches them:

- ``BYOC``: registered with ``/capability/register`` (batch, SSE and BYOC live): text-reversal, token-stream,
  sentiment, live-grayscale;
- ``AI_PIPELINES``: stand-ins for the AI runner's batch routes (``POST /{pipeline}``): text-to-image, llm;
- ``LV2V_MODELS``: models of ``live-video-to-video``, keyed by model id: noop, grayscale.

Each sample module also exports ``CAPABILITY`` (and ``MODEL_ID`` for the LV2V models and AI stand-ins).
"""

from __future__ import annotations

from livepeer.devnet.samples.grayscale import Grayscale
from livepeer.devnet.samples.live_grayscale import LiveGrayscale
from livepeer.devnet.samples.llm import LLM
from livepeer.devnet.samples.noop import Noop
from livepeer.devnet.samples.sentiment import Sentiment
from livepeer.devnet.samples.text_reversal import TextReversal
from livepeer.devnet.samples.text_to_image import TextToImage
from livepeer.devnet.samples.token_stream import TokenStream
from livepeer.runner import LivePipeline, Pipeline

__all__ = [
    "AI_PIPELINES",
    "BYOC",
    "LLM",
    "LV2V_MODELS",
    "SAMPLES",
    "Grayscale",
    "LiveGrayscale",
    "Noop",
    "Sentiment",
    "TextReversal",
    "TextToImage",
    "TokenStream",
]

BYOC: dict[str, type[Pipeline] | type[LivePipeline]] = {
    "text-reversal": TextReversal,
    "token-stream": TokenStream,
    "sentiment": Sentiment,
    "live-grayscale": LiveGrayscale,
}
AI_PIPELINES: dict[str, type[Pipeline]] = {"text-to-image": TextToImage, "llm": LLM}
LV2V_MODELS: dict[str, type[LivePipeline]] = {"noop": Noop, "grayscale": Grayscale}

SAMPLES: dict[str, type[Pipeline] | type[LivePipeline]] = {
    **BYOC,
    **AI_PIPELINES,
    **{f"live-video-to-video/{model}": cls for model, cls in LV2V_MODELS.items()},
}
