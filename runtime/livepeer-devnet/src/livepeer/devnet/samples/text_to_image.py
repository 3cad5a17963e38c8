"""``text-to-image`` stand-in: the AI-runner API (``TextToImageParams`` -> ``ImageResponse``) with a real PNG.

No model runs: each image is a smooth colour field drawn deterministically from the prompt and the seed, so the
same request always returns the same bytes. Without a ``seed`` one is derived from the prompt (the real runner
picks a random one). ``safety_check`` is accepted and ``nsfw`` is always false.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
from typing import Annotated

from pydantic import BaseModel, Field

from livepeer.runner import Pipeline, PipelineError

CAPABILITY = "text-to-image"
# The model a Go gateway asks for when a request names none (go-livepeer server/ai_process.go:32): the
# stand-in answers under that id so that requests without a model id are served.
MODEL_ID = "stabilityai/sdxl-turbo"
MAX_SIDE = 4096
MAX_IMAGES = 8

__all__ = ["CAPABILITY", "MODEL_ID", "ImageResponse", "Media", "TextToImage", "render_png"]


class Media(BaseModel):
    url: str = Field(
        description="Where the media can be fetched; here a data: URL holding the PNG."
    )
    seed: int = Field(description="Seed the image was drawn with.")
    nsfw: bool = Field(description="Whether the image was flagged unsafe.")


class ImageResponse(BaseModel):
    images: list[Media] = Field(description="The generated images.")


def prompt_seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")


def render_png(prompt: str, seed: int, width: int, height: int) -> bytes:
    """A deterministic PNG for (prompt, seed): an 8x8 grid of colours from their hash, smoothly scaled."""
    from PIL import Image

    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    rng = random.Random(digest)
    small = Image.new("RGB", (8, 8))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64)])
    image = small.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class TextToImage(Pipeline):
    """Stand-in for the AI runner's text-to-image pipeline: returns generated PNG images as data URLs."""

    name = CAPABILITY
    input_model_name = "TextToImageParams"
    extra_inputs = "ignore"
    concurrency = 2

    def predict(
        self,
        *,
        model_id: Annotated[str, Field(description="Model to use (any value is accepted).")] = "",
        loras: Annotated[str, Field(description="LoRA weights as a JSON string (ignored).")] = "",
        prompt: Annotated[str, Field(description="What to draw; it picks the colours.")],
        height: Annotated[int, Field(description="Image height in pixels.")] = 576,
        width: Annotated[int, Field(description="Image width in pixels.")] = 1024,
        guidance_scale: Annotated[float, Field(description="Ignored by the stand-in.")] = 7.5,
        negative_prompt: Annotated[str, Field(description="Ignored by the stand-in.")] = "",
        safety_check: Annotated[bool, Field(description="Ignored; nsfw is always false.")] = True,
        seed: Annotated[
            int | None, Field(description="Seed; derived from the prompt when absent.")
        ] = None,
        num_inference_steps: Annotated[int, Field(description="Ignored by the stand-in.")] = 50,
        num_images_per_prompt: Annotated[int, Field(description="How many images to return.")] = 1,
    ) -> ImageResponse:
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise PipelineError(f"width and height must be between 1 and {MAX_SIDE}")
        if not 1 <= num_images_per_prompt <= MAX_IMAGES:
            raise PipelineError(f"num_images_per_prompt must be between 1 and {MAX_IMAGES}")
        base = prompt_seed(prompt) if seed is None else seed
        images = []
        for index in range(num_images_per_prompt):
            png = render_png(prompt, base + index, width, height)
            url = "data:image/png;base64," + base64.b64encode(png).decode()
            images.append(Media(url=url, seed=base + index, nsfw=False))
        return ImageResponse(images=images)
