"""Size limits on what an orchestrator, signer or discovery service can make the client hold in memory.

Each is a module constant read at call time; change one for the whole process, e.g.
``livepeer.client.limits.MAX_RESULT_BYTES = 1 << 30``. Exceeding a limit raises ``LimitError`` (a
``ProtocolError``) naming the limit; inside selection it rejects that orchestrator and the call moves on.
Sizes count decoded bytes: a gzip reply is measured after decompression, which is itself bounded.
See docs/reliability.md.
"""

from __future__ import annotations

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_PROBE_BYTES",
    "MAX_RESULT_BYTES",
    "MAX_SSE_EVENT_BYTES",
    "MAX_SSE_LINE_BYTES",
]

#: A batch result (``run``): JSON, media bytes, or a non-SSE reply to ``stream``.
MAX_RESULT_BYTES = 256 << 20
#: A result the client decodes as JSON (``run``'s JSON results are parsed into Python objects, ~10x).
MAX_JSON_BYTES = 64 << 20
#: Discovery lists (``discovery_url``, the signer's ``/discover-orchestrators``).
MAX_PROBE_BYTES = 8 << 20
#: One line of a server-sent event stream.
MAX_SSE_LINE_BYTES = 1 << 20
#: One server-sent event being assembled from its ``data:`` lines.
MAX_SSE_EVENT_BYTES = 16 << 20
#: Nesting depth of any JSON the client parses (deeper input could exhaust the parser's stack).
MAX_JSON_DEPTH = 256
