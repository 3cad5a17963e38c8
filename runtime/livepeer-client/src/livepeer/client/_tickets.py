"""Probabilistic micropayment tickets, hashed and counted exactly as go-livepeer's ``pm`` package does.

One implementation for the client (BYOC payments signed by ``private_key=``) and the devnet (its remote
signer makes tickets with it, its orchestrator checks them with ``ticket_hash``). Facts from go-livepeer at
176aa415: ``pm/ticket.go`` ``flatten``/``Hash``/``AuxData``/``ticketEV`` (EV divides by 2^256 - 1, the
``maxWinProb``), ``byoc/payment.go`` ``createPayment``/``ticketCountForCost`` (how many tickets a BYOC job
sends), ``pm/recipient.go`` (600 sender nonces per recipient rand hash). Pure functions except ``sign``,
which the caller supplies: personal_sign over the 32-byte ticket hash (``crypto/verify.go`` applies the
EIP-191 text hash to that hash before recovering).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livepeer.client._proto import lp_rpc_pb2 as pb

__all__ = [
    "MAX_SENDER_NONCES",
    "MAX_WIN_PROB",
    "Ticket",
    "aux_data",
    "make_payment",
    "params_ev",
    "ticket_count_for_cost",
    "ticket_ev",
    "ticket_hash",
]

MAX_WIN_PROB = (1 << 256) - 1
# pm/recipient.go maxSenderNonces: a recipient accepts at most this many nonces per recipient rand hash.
MAX_SENDER_NONCES = 600
# byoc/payment.go ticketCountForCost caps one BYOC payment at the same 600.
MAX_TICKETS_PER_PAYMENT = 600


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _fit(raw: bytes, size: int) -> bytes:
    """go-ethereum ``BytesToAddress``/``BytesToHash``: keep the last ``size`` bytes, left-pad shorter input."""
    return raw[-size:].rjust(size, b"\0")


def aux_data(creation_round: int, creation_round_block_hash: bytes) -> bytes:
    """``TicketExpirationParams.AuxData``: empty when both are zero, else round (32 bytes) + block hash."""
    block_hash = _fit(creation_round_block_hash, 32)
    if creation_round == 0 and block_hash == bytes(32):
        return b""
    return creation_round.to_bytes(32, "big", signed=True) + block_hash


@dataclass(frozen=True)
class Ticket:
    """The fields of ``pm.Ticket`` that its hash covers."""

    recipient: bytes
    sender: bytes
    face_value: int
    win_prob: int
    sender_nonce: int
    recipient_rand_hash: bytes
    creation_round: int = 0
    creation_round_block_hash: bytes = b""

    def flatten(self) -> bytes:
        return (
            _fit(self.recipient, 20)
            + _fit(self.sender, 20)
            + _word(self.face_value)
            + _word(self.win_prob)
            + _word(self.sender_nonce)
            + _fit(self.recipient_rand_hash, 32)
            + aux_data(self.creation_round, self.creation_round_block_hash)
        )


def ticket_hash(ticket: Ticket) -> bytes:
    """``Ticket.Hash``: keccak256 of the tightly packed fields."""
    from eth_utils.crypto import keccak

    return bytes(keccak(ticket.flatten()))


def ticket_ev(face_value: int, win_prob: int) -> Fraction:
    """Expected value in wei: ``face_value × win_prob / (2^256 - 1)``."""
    return Fraction(face_value * win_prob, MAX_WIN_PROB)


def params_ev(params: pb.TicketParams) -> Fraction:
    """Expected value in wei of one ticket on ``params`` (big-endian face value and win probability)."""
    return ticket_ev(
        int.from_bytes(params.face_value, "big"), int.from_bytes(params.win_prob, "big")
    )


def ticket_count_for_cost(cost: Fraction, ev: Fraction, timeout_seconds: int) -> int:
    """``ticketCountForCost``: tickets that cover ``cost`` (0 for a zero EV, at most 600)."""
    if ev == 0:
        return 0
    count = float(cost / ev)
    if math.isinf(count):
        return timeout_seconds
    if count > MAX_TICKETS_PER_PAYMENT:
        return MAX_TICKETS_PER_PAYMENT
    return int(max(0.0, math.ceil(count)))


def make_payment(
    params: pb.TicketParams,
    *,
    sender: bytes,
    expected_price: tuple[int, int],
    nonces: Sequence[int],
    sign: Callable[[bytes], bytes],
) -> pb.Payment:
    """A ``net.Payment`` of one ticket per nonce in ``nonces``, each signed by ``sign(ticket hash)``.

    ``expected_price`` must be the price the params were issued at: the recipient binds it (and the
    sender) into its rand hash, so any other price makes every ticket invalid.
    """
    from livepeer.client._proto import lp_rpc_pb2 as pb

    exp = params.expiration_params
    payment = pb.Payment(
        ticket_params=params,
        sender=sender,
        expiration_params=pb.TicketExpirationParams(
            creation_round=exp.creation_round,
            creation_round_block_hash=exp.creation_round_block_hash,
        ),
        expected_price=pb.PriceInfo(
            pricePerUnit=expected_price[0], pixelsPerUnit=expected_price[1]
        ),
    )
    face = int.from_bytes(params.face_value, "big")
    prob = int.from_bytes(params.win_prob, "big")
    for nonce in nonces:
        ticket = Ticket(
            recipient=params.recipient,
            sender=sender,
            face_value=face,
            win_prob=prob,
            sender_nonce=nonce,
            recipient_rand_hash=params.recipient_rand_hash,
            creation_round=exp.creation_round,
            creation_round_block_hash=exp.creation_round_block_hash,
        )
        payment.ticket_sender_params.add(sender_nonce=nonce, sig=sign(ticket_hash(ticket)))
    return payment
