"""Ticket parameters, payment checks and credit balances (the orchestrator side of probabilistic micropayments).

Follows go-livepeer at 176aa415: ``pm/recipient.go`` (``TicketParams``, ``rand``, ``ReceiveTicket``, 600
nonces per recipient rand), ``pm/validator.go`` (recipient, sender, rand hash, signature) and
``core/orchestrator.go`` ``ProcessPayment`` (credit every ticket's EV to ``(payment sender, manifest)``
until the first refused ticket, then report the error). Tickets are never redeemed (there is no chain).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from livepeer.devnet._keys import keccak, recover_message_signer
from livepeer.devnet._wire import MAX_SENDER_NONCES, Ticket, aux_data, ticket_ev, ticket_hash

if TYPE_CHECKING:
    from livepeer.devnet._wire import pb

__all__ = ["Balances", "PaymentError", "TicketBook", "decode_b64_proto"]

# Face value and win probability of every priced ticket the devnet issues: EV = 1e10 / 1000 = 1e7 wei, about
# 36 s of LV2V at the base price, so live sessions pay every so often rather than once.
FACE_VALUE = 10**10
WIN_PROB = (1 << 256) // 1000
AUTH_TOKEN_TTL = 30 * 60
# pm/recipient.go paramsExpirationBlock: ticket params stay valid for 40 L1 blocks.
PARAMS_EXPIRATION_BLOCKS = 40


class PaymentError(Exception):
    """A payment that cannot be accepted; ``status`` is the HTTP status go-livepeer answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int_bytes(value: int) -> bytes:
    """go ``big.Int.Bytes()``: minimal big-endian, empty for zero."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


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
    """Issues ticket parameters and auth tokens for one orchestrator and receives tickets against them."""

    recipient: bytes
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    # Last seen L1 block; params minted now expire PARAMS_EXPIRATION_BLOCKS later.
    block: int = 1000
    creation_round: int = 1
    creation_round_block_hash: bytes = field(default_factory=lambda: keccak(b"devnet-round-1"))
    # recipient rand -> sender nonces seen
    _nonces: dict[int, set[int]] = field(default_factory=dict)
    # recipient rand hash -> price the params were minted at (``price_of``)
    _issued: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    # Expected value (wei, exact) of every ticket accepted since start: what tests compare spend ledgers with.
    received: Fraction = Fraction(0)

    def _rand(
        self,
        seed: int,
        sender: bytes,
        face: int,
        prob: int,
        expiration_block: int,
        price: Fraction,
        aux: bytes,
    ) -> int:
        """``recipient.rand``: HMAC-SHA256 binding seed, sender, face value, win prob, expiry and price."""
        msg = (
            _int_bytes(seed)
            + sender[-20:].rjust(20, b"\0")
            + _int_bytes(face)
            + _int_bytes(prob)
            + _int_bytes(expiration_block)
            + _int_bytes(price.numerator)
            + _int_bytes(price.denominator)
            + aux
        )
        return int.from_bytes(hmac.new(self.secret, msg, hashlib.sha256).digest(), "big")

    def ticket_params(self, price: tuple[int, int], sender: bytes = bytes(20)) -> pb.TicketParams:
        """``recipient.TicketParams(sender, price)``: zero face value and win prob when the price is 0."""
        from livepeer.devnet._wire import pb

        seed = int.from_bytes(os.urandom(32), "big")
        rat = Fraction(price[0], price[1] or 1)
        face, prob = (FACE_VALUE, WIN_PROB) if rat > 0 else (0, 0)
        expiration = self.block + PARAMS_EXPIRATION_BLOCKS
        aux = aux_data(self.creation_round, self.creation_round_block_hash)
        rand = self._rand(seed, sender, face, prob, expiration, rat, aux)
        self._issued[keccak(rand.to_bytes(32, "big"))] = price
        if len(self._issued) > 100_000:  # a long-running devnet: forget the oldest params
            self._issued.pop(next(iter(self._issued)))
        return pb.TicketParams(
            recipient=self.recipient,
            face_value=_int_bytes(face),
            win_prob=_int_bytes(prob),
            recipient_rand_hash=keccak(rand.to_bytes(32, "big")),
            seed=_int_bytes(seed),
            expiration_block=_int_bytes(expiration),
            expiration_params=pb.TicketExpirationParams(
                creation_round=self.creation_round,
                creation_round_block_hash=self.creation_round_block_hash,
            ),
        )

    def price_of(self, params: pb.TicketParams) -> tuple[int, int] | None:
        """The price ``params`` were minted at by this book, or None. A shortcut for callers that do
        not have the sender at hand; ``process_payment`` checks the full sender-bound rand hash."""
        return self._issued.get(bytes(params.recipient_rand_hash))

    def auth_token(self, session_id: str | None = None) -> pb.AuthToken:
        from livepeer.devnet._wire import pb

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

    def process_payment(
        self, payment: pb.Payment, credit: Callable[[bytes, Fraction], object]
    ) -> str | None:
        """``orchestrator.ProcessPayment``: ``credit(sender, ev)`` per accepted ticket; the error text or None.

        As upstream, tickets before the first refused one stay credited, a "fatal" refusal (bad recipient,
        sender or rand hash) stops at once and a non-fatal one (bad signature, repeated nonce, expired
        params) still walks the rest without crediting them.
        """
        has_params = payment.HasField("ticket_params")
        if not payment.sender and has_params:
            return "Could not find Sender for payment"
        if not has_params:
            return None  # a zero-price payment: nothing to credit
        params = payment.ticket_params
        if params.recipient[-20:].rjust(20, b"\0") != self.recipient:
            return "orchestrator is inactive in round, cannot process payments"
        if not payment.HasField("expected_price"):
            return 'invalid expected price sent with payment err="expected price is nil"'
        if payment.expected_price.pixelsPerUnit == 0:
            return 'invalid expected price sent with payment err="pixels per unit is 0"'
        price = Fraction(payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit)
        sender = payment.sender[-20:].rjust(20, b"\0")
        face = int.from_bytes(params.face_value, "big")
        prob = int.from_bytes(params.win_prob, "big")
        expiration = int.from_bytes(params.expiration_block, "big")
        exp = payment.expiration_params
        aux = aux_data(exp.creation_round, exp.creation_round_block_hash)
        rand = self._rand(
            int.from_bytes(params.seed, "big"), sender, face, prob, expiration, price, aux
        )
        error: str | None = None
        ev = ticket_ev(face, prob)
        for tsp in payment.ticket_sender_params:
            # validator.ValidateTicket order; the first three are fatal (FatalReceiveErr).
            if sender == bytes(20):
                return "invalid ticket sender"
            if keccak(rand.to_bytes(32, "big")) != params.recipient_rand_hash[-32:].rjust(
                32, b"\0"
            ):
                return "invalid recipientRand for ticket recipientRandHash"
            ticket = Ticket(
                recipient=params.recipient,
                sender=sender,
                face_value=face,
                win_prob=prob,
                sender_nonce=tsp.sender_nonce,
                recipient_rand_hash=params.recipient_rand_hash,
                creation_round=exp.creation_round,
                creation_round_block_hash=exp.creation_round_block_hash,
            )
            why = None
            signer = recover_message_signer(ticket_hash(ticket), tsp.sig)
            if signer is None or bytes.fromhex(signer[2:]) != sender:
                why = "invalid ticket signature"
            else:
                seen = self._nonces.setdefault(rand, set())
                if tsp.sender_nonce in seen:
                    why = f"invalid ticket senderNonce: already seen sender={_hex(sender)} nonce={tsp.sender_nonce}"
                elif len(seen) >= MAX_SENDER_NONCES:
                    why = f"invalid ticket senderNonce: too many values sender={_hex(sender)} nonce={tsp.sender_nonce}"
                else:
                    seen.add(tsp.sender_nonce)
                    if expiration <= self.block:
                        why = "TicketParams expired"
            if why is not None and error is None:
                error = why
            if error is None:
                self.received += ev
                credit(sender, ev)
        return error

    def credit_of(self, payment: pb.Payment, sender: bytes | None) -> Fraction:
        """Total value of ``payment``'s tickets, or PaymentError (400) at the first refused ticket.

        For routes that credit a whole payment or nothing; BYOC uses ``process_payment``.
        """
        if sender is not None and payment.sender != sender:
            raise PaymentError(400, "ticket sender does not match request sender")
        total = Fraction(0)

        def add(_sender: bytes, ev: Fraction) -> None:
            nonlocal total
            total += ev

        error = self.process_payment(payment, add)
        if error is not None:
            raise PaymentError(400, error)
        if not payment.ticket_sender_params:
            raise PaymentError(400, "no tickets in payment")
        return total


class Balances:
    """Credit in wei per account key (``(sender, capability)`` for BYOC, ``(sender, manifest)`` for AI)."""

    def __init__(self) -> None:
        self._credit: dict[tuple[str, str], Fraction] = {}

    def get(self, key: tuple[str, str]) -> Fraction:
        return self._credit.get(key, Fraction(0))

    def known(self, key: tuple[str, str]) -> bool:
        return key in self._credit

    def accounts(self) -> list[tuple[str, str]]:
        """Every key ever credited or debited (tests check which accounts a client's payments reached)."""
        return list(self._credit)

    def credit(self, key: tuple[str, str], amount: Fraction) -> Fraction:
        self._credit[key] = self.get(key) + amount
        return self._credit[key]

    def debit(self, key: tuple[str, str], amount: Fraction) -> Fraction:
        return self.credit(key, -amount)

    def clear(self) -> None:
        self._credit.clear()


def _hex(address: bytes) -> str:
    """go-ethereum ``Address.Hex()``: EIP-55 checksummed (pm/recipient.go:378 prints the sender so)."""
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(address))


def whole_wei(value: Fraction) -> int:
    """go ``FloatString(0)`` of a balance: rounded half away from zero."""
    sign = -1 if value < 0 else 1
    return sign * math.floor(abs(value) + Fraction(1, 2))
