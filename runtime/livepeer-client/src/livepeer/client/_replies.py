"""What the built-in AI routes promise (go-livepeer server/ai_http.go handlers answer JSON of the
pipeline's response type, errors as non-2xx ``{"error": {...}}``): anything else at 200 is not a result."""

from __future__ import annotations

from ._errors import ProtocolError

__all__ = ["check_ai_reply"]

# The top-level field every documented response of the pipeline carries (ai-runner's response models).
_REQUIRED = {
    "text-to-image": "images",
    "image-to-image": "images",
    "image-to-video": "images",
    "upscale": "images",
    "audio-to-text": "text",
    "segment-anything-2": "masks",
    "llm": "choices",
    "image-to-text": "text",
    "text-to-speech": "audio",
}


def check_ai_reply(pipeline: str, ctype: str, value: object, orchestrator: str) -> None:
    """Raise ``ProtocolError`` unless ``value`` looks like ``pipeline``'s documented response."""
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ProtocolError(
            f"{orchestrator} answered /{pipeline} with {ctype or 'no content type'} instead of JSON "
            "(an HTML page or a proxy in the way?)"
        )
    if isinstance(value, dict) and "error" in value:
        err = value["error"]
        msg = err.get("message") if isinstance(err, dict) else err
        raise ProtocolError(
            f"{orchestrator} answered /{pipeline} 200 with an error: {str(msg)[:300]}"
        )
    field = _REQUIRED.get(pipeline.split("/")[0])
    if field is not None and (not isinstance(value, dict) or field not in value):
        raise ProtocolError(
            f"{orchestrator} answered /{pipeline} without {field!r}, not a {pipeline} response"
        )
