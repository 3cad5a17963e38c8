"""A user's own container, written the FastAPI way: path parameters, JSON models with formats, uploads
(OpenAPI 3.1 ``contentMediaType``), a list of files, and SSE. The corpus test generates from its schema; the
devnet test serves it as a BYOC worker and calls it through the generated package.

No ``from __future__ import annotations`` here: FastAPI resolves the annotations of endpoints at runtime.
"""

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import AnyUrl, BaseModel, Field

app = FastAPI(title="Image Lab", description="The user's own container.")


class Job(BaseModel):
    """A job of the user's."""

    id: uuid.UUID
    at: dt.datetime
    source: AnyUrl
    note: str = Field("", description="Free text the user wrote.")


class Done(BaseModel):
    item: int
    job: Job


@app.post("/items/{item_id}", summary="Update one item.")
def update(item_id: int, job: Job) -> Done:
    return Done(item=item_id, job=job)


@app.post("/upload/{bucket}", description="Store files in a bucket.")
async def upload(
    bucket: str,
    file: UploadFile,
    extra: list[UploadFile] = File(default=[]),  # noqa: B008 - FastAPI's way
    caption: str = Form(""),
) -> dict[str, Any]:
    sizes = [len(await f.read()) for f in [file, *extra]]
    return {"bucket": bucket, "caption": caption, "sizes": sizes, "name": file.filename}


@app.post(
    "/chat/{room}",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def chat(room: str, job: Job) -> StreamingResponse:
    def events() -> Iterator[str]:
        for i, word in enumerate(job.note.split() or ["-"]):
            yield f"data: {json.dumps({'room': room, 'i': i, 'word': word})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
