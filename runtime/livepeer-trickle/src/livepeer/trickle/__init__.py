"""Trickle: segmented HTTP streaming used by Livepeer live sessions (PROTOCOL.md §9).

A channel is a URL; its content is a sequence of numbered segments, each one HTTP request
(``POST {channel}/{seq}`` to publish, ``GET {channel}/{seq}`` to read while it is still being written).

Publish and subscribe::

    from livepeer.trickle import TricklePublisher, TrickleSubscriber

    async with TricklePublisher(url, "video/mp2t") as pub:      # start_seq=-1: GET {url}/next + reset
        async with pub.segment() as seg:                        # one streamed segment
            await seg.write(b"...")
        seq = await pub.write(b"whole segment")                 # returns the seq used
    # leaving the block DELETEs the channel (delete_on_close=False to keep it)

    async with TrickleSubscriber(url, start_seq=-2) as sub:     # -2: segment being written, -1: next
        async for segment in sub:                               # ends on 404 / Lp-Trickle-Closed
            async for chunk in segment: ...                     # bytes while still arriving
            # or: data = await segment.read()

JSON channels::

    async with JsonSegmentWriter(control_url) as w:             # {"keep":"alive"} every 10 s when idle
        await w.write({"prompt": "a cat"})
    async for event in JsonSegmentReader(events_url): ...       # one object per segment
    async with JsonlWriter(data_url, rotate_interval=10.0) as w: await w.write({"row": 1})
    async for row in JsonlReader(data_url): ...                 # newline-delimited JSON

Server (ASGI; mount it where go-livepeer serves ``/ai/trickle/``)::

    server = TrickleServer(idle_timeout=300.0, sweep_interval=60.0, max_segment_size=None)
    server.create_channel("abc-out", mime_type="video/mp2t")
    app = Starlette(routes=[Mount("/ai/trickle", app=server)])

Errors all derive from ``TrickleError``: ``TrickleChannelNotFound`` (404), ``TrickleClosed``,
``TrickleTimeout`` (also a ``TimeoutError``), ``TrickleProtocolError``, ``TrickleInvalidInput`` (also a
``ValueError``: bad URL, seq below -2, ...), ``TrickleSegmentTooLarge`` and ``JsonChannelError``
(``.channel``, ``.seq``; the reader continues after it).

The publisher's memory bound and drop policy are described in ``livepeer.trickle._publisher``; the
server's deviations from go-livepeer (no interim ``100 Continue``) in ``livepeer.trickle._server``.
"""

from livepeer.trickle._errors import (
    JsonChannelError,
    TrickleChannelNotFound,
    TrickleClosed,
    TrickleError,
    TrickleInvalidInput,
    TrickleProtocolError,
    TrickleSegmentTooLarge,
    TrickleTimeout,
)
from livepeer.trickle._json import (
    KEEPALIVE,
    JsonlReader,
    JsonlWriter,
    JsonSegmentReader,
    JsonSegmentWriter,
)
from livepeer.trickle._publisher import PublisherStats, SegmentWriter, TricklePublisher
from livepeer.trickle._server import TrickleServer
from livepeer.trickle._subscriber import Segment, TrickleSubscriber

__version__ = "0.1.0"

__all__ = [
    "KEEPALIVE",
    "JsonChannelError",
    "JsonSegmentReader",
    "JsonSegmentWriter",
    "JsonlReader",
    "JsonlWriter",
    "PublisherStats",
    "Segment",
    "SegmentWriter",
    "TrickleChannelNotFound",
    "TrickleClosed",
    "TrickleError",
    "TrickleInvalidInput",
    "TrickleProtocolError",
    "TricklePublisher",
    "TrickleSegmentTooLarge",
    "TrickleServer",
    "TrickleSubscriber",
    "TrickleTimeout",
    "__version__",
]
