"""What go's net/http sends when a go-livepeer handler refuses a request or panics.

One refusal type for every devnet handler (AI, BYOC, live, apps): ``raise Reject(status, message)`` anywhere
below a handler, and the handler answers ``exc.response()``, which is ``http.Error(w, message, status)``:
the text plus a newline, ``text/plain; charset=utf-8``, ``X-Content-Type-Options: nosniff``
(net/http/server.go ``Error``; go-livepeer's ``respondWithError`` in server/handlers.go:1749 and
byoc/utils.go:203 is exactly that). ``Reject.DROP`` stands for a handler that panicked:
net/http recovers and closes the connection without an answer (``DroppedConnection``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.responses import Response

__all__ = ["ANY_METHOD", "DroppedConnection", "Reject", "go_error"]

# A handler registered on go's ServeMux without a method in its pattern (how go-livepeer registers its
# handlers) receives every method and decides itself; starlette needs them listed.
ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def go_error(message: str, status: int) -> Response:
    """``http.Error(w, message, status)``: the text plus a newline, text/plain, nosniff."""
    return Response(
        (message + "\n").encode(),
        status_code=status,
        media_type="text/plain; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


class DroppedConnection(Response):
    """A handler that panicked: go's net/http recovers, logs and closes the connection unanswered.

    hypercorn cannot close a connection on request, so this sends a 1xx (which HTTP clients skip) and then
    an end of message that h11 refuses in that state; hypercorn then closes the connection. The client sees
    "server disconnected without sending a response" (httpx: ``RemoteProtocolError``), as it does from
    go-livepeer.
    """

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 100, "headers": []})
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class Reject(Exception):
    """A refusal, answered as ``http.Error``; ``status`` DROP means the Go handler panicked instead."""

    DROP = -1

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        if self.status == Reject.DROP:
            return DroppedConnection()
        return go_error(self.message, self.status)
