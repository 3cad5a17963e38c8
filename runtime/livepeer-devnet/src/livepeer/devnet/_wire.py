"""The devnet's one door into livepeer-client internals: the wire definitions the two must share.

The devnet stands in for go-livepeer when the client is tested, so it must speak exactly the client's wire:
the same generated protobuf messages (``net/lp_rpc.proto``), the same probabilistic-micropayment ticket
arithmetic (``pm/ticket.go``, ``pm/recipient.go``) and the same capability ids (``core/capabilities.go``).
A copy in the devnet could drift from the client unnoticed. Where the two must agree with go-livepeer
independently, the fidelity tests check each against recorded Go vectors; here they share one definition.

These are private client modules, so every devnet module imports them from here and nowhere else
(``tests/devnet/test_wire_boundary.py`` fails otherwise): when the client moves one, this file is the only
devnet edit. What is shared:

- ``pb``: ``livepeer.client._proto.lp_rpc_pb2``, imported on first use (google.protobuf costs ~90 ms and
  ``import livepeer.devnet`` does not need it). Import it inside functions; annotations import it under
  ``TYPE_CHECKING``.
- ``BUILTIN_PIPELINES`` (pipeline name -> capability id), ``BYOC_CAPABILITY_ID``, ``LV2V_CAPABILITY_ID``.
- The ticket helpers of ``livepeer.client._tickets``: hashing, EV, aux data, payments, the 600-nonce limit.
- ``audio_seconds``: audio timed as go-livepeer's ``CalculateAudioDuration`` times it (lpms
  ``GetCodecInfoBytes``: libavformat reading a pipe, then a bitrate estimate). The client pays by it and the
  orchestrator bills by it; ``tests/unit/client/test_audio_timing.py`` checks it against lpms's arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livepeer.client._routes import BUILTIN_PIPELINES, BYOC_CAPABILITY_ID
from livepeer.client._routes.ai_request import audio_seconds
from livepeer.client._tickets import (
    MAX_SENDER_NONCES,
    MAX_WIN_PROB,
    Ticket,
    aux_data,
    make_payment,
    params_ev,
    ticket_ev,
    ticket_hash,
)

if TYPE_CHECKING:
    from livepeer.client._proto import lp_rpc_pb2 as pb
else:

    def __getattr__(name: str) -> object:
        if name != "pb":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from livepeer.client._proto import lp_rpc_pb2

        globals()["pb"] = lp_rpc_pb2
        return lp_rpc_pb2


__all__ = [
    "BUILTIN_PIPELINES",
    "BYOC_CAPABILITY_ID",
    "LV2V_CAPABILITY_ID",
    "MAX_SENDER_NONCES",
    "MAX_WIN_PROB",
    "Ticket",
    "audio_seconds",
    "aux_data",
    "make_payment",
    "params_ev",
    "pb",
    "ticket_ev",
    "ticket_hash",
]

LV2V_CAPABILITY_ID = BUILTIN_PIPELINES["live-video-to-video"]
