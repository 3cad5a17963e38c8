"""Ticket parameters, payment checks and credit balances (the orchestrator side of probabilistic micropayments).

Tickets are checked for shape, sender and recipient and credited at their expected value
(``face_value × win_prob / 2^256``); they are never redeemed (there is no chain).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from livepeer.devnet._keys import keccak

if TYPE_CHECKING:
    from livepeer.client._proto import lp_rpc_pb2 as pb

__all__ = ["Balances", "PaymentError", "TicketBook", "decode_b64_proto", "ticket_ev"]

# Face value and win probability of every ticket the devnet issues: EV = 1e10 / 1000 = 1e7 wei, about
# 36 s of LV2V at the base price, so live sessions pay every so often rather than once.
FACE_VALUE = 10**10
WIN_PROB = (1 << 256) // 1000
AUTH_TOKEN_TTL = 30 * 60
TICKET_TTL_BLOCKS = 10


class PaymentError(Exception):
    """A payment that cannot be accepted; ``status`` is the HTTP status go-livepeer answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def ticket_ev(params: pb.TicketParams) -> Fraction:
    face = int.from_bytes(params.face_value, "big")
    prob = int.from_bytes(params.win_prob, "big")
    return Fraction(face * prob, 1 << 256)


def decode_b64_proto(value: str, message: pb.Payment | pb.SegData) -> bool:
    """Parse standard base64 protobuf into ``message``; False when either layer is malformed."""
    try:
        raw = base64.b64decode(value, validate=True)
        message.ParseFromString(raw)
    except (binascii.Error, ValueError, Exception):  # protobuf raises DecodeError (an Exception)
        return False
    return True


@dataclass
class TicketBook:
    """Issues ticket parameters and auth tokens for one orchestrator and recognises them later."""

    recipient: bytes
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    # seed -> price (pricePerUnit, pixelsPerUnit) the params were minted at: go-livepeer binds the price
    # into the recipient rand hash, so a ticket is valid only at the price it was issued for.
    _issued: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    block: int = 1000

    def ticket_params(self, price: tuple[int, int]) -> pb.TicketParams:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        seed = os.urandom(16)
        rand = hmac.new(self.secret, seed, hashlib.sha256).digest()
        self._issued[seed] = price
        return pb.TicketParams(
            recipient=self.recipient,
            face_value=_int_bytes(FACE_VALUE),
            win_prob=_int_bytes(WIN_PROB),
            recipient_rand_hash=keccak(rand),
            seed=seed,
            expiration_block=_int_bytes(self.block + TICKET_TTL_BLOCKS),
            expiration_params=pb.TicketExpirationParams(
                creation_round=1, creation_round_block_hash=keccak(b"devnet-round-1")
            ),
        )

    def price_of(self, params: pb.TicketParams) -> tuple[int, int] | None:
        rand = hmac.new(self.secret, params.seed, hashlib.sha256).digest()
        if keccak(rand) != params.recipient_rand_hash:
            return None
        return self._issued.get(params.seed)

    def auth_token(self, session_id: str | None = None) -> pb.AuthToken:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        sid = session_id or os.urandom(8).hex()
        expiration = int(time.time()) + AUTH_TOKEN_TTL
        return pb.AuthToken(
            token=self._token(sid, expiration), session_id=sid, expiration=expiration
        )

    def check_auth_token(self, token: pb.AuthToken) -> str | None:
        """None when valid, else why not (go-livepeer: 403 on a missing, invalid or expired token)."""
        if not token.token:
            return "missing auth token"
        if not hmac.compare_digest(token.token, self._token(token.session_id, token.expiration)):
            return "invalid auth token"
        if token.expiration < time.time():
            return "expired auth token"
        return None

    def _token(self, session_id: str, expiration: int) -> bytes:
        return hmac.new(self.secret, f"{session_id}:{expiration}".encode(), hashlib.sha256).digest()

    def credit_of(self, payment: pb.Payment, sender: bytes | None) -> Fraction:
        """Value of ``payment``'s tickets, or PaymentError (400) if they are not ours or malformed."""
        if len(payment.sender) != 20:
            raise PaymentError(400, "invalid ticket sender")
        if sender is not None and payment.sender != sender:
            raise PaymentError(400, "ticket sender does not match request sender")
        params = payment.ticket_params
        if params.recipient != self.recipient:
            raise PaymentError(400, "invalid ticket recipient")
        minted_at = self.price_of(params)
        if minted_at is None:
            raise PaymentError(400, "invalid recipientRandHash")
        expected = payment.expected_price
        if (expected.pricePerUnit, expected.pixelsPerUnit or 1) != (
            minted_at[0],
            minted_at[1] or 1,
        ):
            raise PaymentError(400, "invalid expected price")
        if not payment.ticket_sender_params:
            raise PaymentError(400, "no tickets in payment")
        for tsp in payment.ticket_sender_params:
            if len(tsp.sig) != 65:
                raise PaymentError(400, "invalid ticket signature")
        return ticket_ev(params) * len(payment.ticket_sender_params)


class Balances:
    """Credit in wei per account key (``(sender, capability)`` for BYOC, ``(sender, manifest)`` for AI)."""

    def __init__(self) -> None:
        self._credit: dict[tuple[str, str], Fraction] = {}

    def get(self, key: tuple[str, str]) -> Fraction:
        return self._credit.get(key, Fraction(0))

    def credit(self, key: tuple[str, str], amount: Fraction) -> Fraction:
        self._credit[key] = self.get(key) + amount
        return self._credit[key]

    def debit(self, key: tuple[str, str], amount: Fraction) -> Fraction:
        return self.credit(key, -amount)

    def clear(self) -> None:
        self._credit.clear()
