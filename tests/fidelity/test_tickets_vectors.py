"""go-livepeer's own ticket and signature test vectors (176aa415), run against our one ticket implementation
(``livepeer.client._tickets``, used by the client's BYOC payments and by the devnet signer) and the devnet's
signature check. Each test names the Go test whose inputs and expected outputs it carries.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from livepeer.client._tickets import (
    MAX_WIN_PROB,
    Ticket,
    aux_data,
    make_payment,
    ticket_count_for_cost,
    ticket_ev,
    ticket_hash,
)
from livepeer.devnet._keys import EthKey, recover_message_signer

Z20, Z32 = bytes(20), bytes(32)
BLOCK_HASH = bytes.fromhex("7624778dedc75f8b322b9fa1632a610d40b85e106c7d9bf0e743a9ce291b9c6f")
RAND_HASH = bytes.fromhex("41b1a0649752af1b28b3dc29a1556eee781e4a4c3a1f7f53f90fa834de098c4d")


@pytest.mark.parametrize(
    ("face", "prob", "expected"),
    [
        (1000, MAX_WIN_PROB // 2, 500),
        (1000, 0, 0),
        (1000, MAX_WIN_PROB, 1000),
        (0, 999, 0),
    ],
)
def test_ev__pm_ticket_test_TestEV(face: int, prob: int, expected: int) -> None:
    # Go prints FloatString(0) (rounded); the exact value is within half a wei of it.
    assert round(ticket_ev(face, prob)) == expected


@pytest.mark.parametrize(
    ("prob", "expected"),
    [
        (MAX_WIN_PROB // 2, "0.5"),
        (MAX_WIN_PROB // 4, "0.25"),
        (0, "0"),
        (MAX_WIN_PROB, "1"),
    ],
)
def test_win_prob_rat__pm_ticket_test_TestWinProbRat(prob: int, expected: str) -> None:
    ratio = Fraction(prob, MAX_WIN_PROB)
    digits = len(expected.split(".")[1]) if "." in expected else 0
    assert f"{float(ratio):.{digits}f}" == expected


@pytest.mark.parametrize(
    ("creation_round", "block_hash", "expected"),
    [
        (0, BLOCK_HASH, bytes(32) + BLOCK_HASH),
        (5, Z32, (5).to_bytes(32, "big") + Z32),
        (5, b"", (5).to_bytes(32, "big") + Z32),  # "nil block hash"
        (0, Z32, b""),
        (5, BLOCK_HASH, (5).to_bytes(32, "big") + BLOCK_HASH),
    ],
)
def test_aux_data__pm_ticket_test_TestAuxData(
    creation_round: int, block_hash: bytes, expected: bytes
) -> None:
    assert aux_data(creation_round, block_hash) == expected


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        (
            Ticket(Z20, Z20, 0, 0, 2**32 - 1, Z32),
            "e1393fc7f6de093780674022f96cb8e3872235167d037c04d554e58c0e63d280",
        ),
        (
            Ticket(Z20, Z20, 0, 0, 1, Z32),
            "ce0918ba94518293e9712effbe5fca4f1f431089833a5b8c257cb1e024595f68",
        ),
        (
            Ticket(Z20, Z20, 1, 500, 0, Z32),
            "87ef13f2d37e4d5352a01d3c77b8179d80e0887f1953bfabfd0bfd7b0f689ddd",
        ),
        (
            Ticket(Z20, Z20, 500, 1, 0, Z32),
            "aa4b35071043587992ac8b9dd1b2cf1d8311130e6458cf0b2342484e21af5f5b",
        ),
        (
            Ticket(bytes.fromhex("73AEd7b5dEb30222fa896f399d46cC99c7BEe57F"), Z20, 0, 0, 0, Z32),
            "81e353ae39046e2b77b9f996abbaeed527fda559b61ef90f299c4499dd508ccc",
        ),
        (
            Ticket(Z20, Z20, 0, 0, 0, RAND_HASH),
            "be5eaf9a49a39540b9bb02f1a21904f61324a29819e2c032824bfaa10c100b17",
        ),
        (
            Ticket(Z20, Z20, 0, 0, 0, Z32, 10, RAND_HASH),
            "e502907c16036ab3d11b78c5a2e93c20f3d6415c67f91de4ed01348182b3b2e2",
        ),
    ],
)
def test_hash__pm_ticket_test_TestHash(ticket: Ticket, expected: str) -> None:
    assert ticket_hash(ticket).hex() == expected


def test_batch_tickets__pm_ticket_test_TestTickets() -> None:
    """A batch shares params, expiration params and sender; each ticket has its own nonce and sig."""
    from livepeer.client._proto import lp_rpc_pb2 as pb

    key = EthKey.generate()
    params = pb.TicketParams(
        recipient=b"\x11" * 20,
        face_value=(10**6).to_bytes(3, "big"),
        win_prob=(MAX_WIN_PROB // 3).to_bytes(32, "big"),
        recipient_rand_hash=RAND_HASH,
        seed=b"\x01",
        expiration_block=b"\x10",
        expiration_params=pb.TicketExpirationParams(
            creation_round=10, creation_round_block_hash=BLOCK_HASH
        ),
    )
    assert (
        len(
            make_payment(
                params,
                sender=key.address_bytes,
                expected_price=(1, 1),
                nonces=[],
                sign=key.sign_raw,
            ).ticket_sender_params
        )
        == 0
    )
    payment = make_payment(
        params, sender=key.address_bytes, expected_price=(1, 1), nonces=[0, 1], sign=key.sign_raw
    )
    assert [t.sender_nonce for t in payment.ticket_sender_params] == [0, 1]
    assert payment.sender == key.address_bytes
    assert payment.expiration_params.creation_round == 10
    for tsp in payment.ticket_sender_params:
        ticket = Ticket(
            b"\x11" * 20, key.address_bytes, 10**6, MAX_WIN_PROB // 3, tsp.sender_nonce,
            RAND_HASH, 10, BLOCK_HASH,
        )  # fmt: skip
        assert recover_message_signer(ticket_hash(ticket), tsp.sig) == key.address


ECRECOVER_ADDR = "0x3BadDb1eeE2105893136A3F96c8a963E9C6309d6"
ECRECOVER_MSG = bytes.fromhex("b7da355477356fc4c47fcabcf232dc77a6db9b07b7e48b76261cc55cc8fbabb3")
ECRECOVER_SIG = bytes.fromhex(
    "206443228e8f784bc3a122de0d85eb3ebff82d6a79cca26c7eeb907099a6404f"
    "6dff57bc6828f28bd6cd073c89d94cf3364204679ed8365fa45b5ee6af19a9841c"
)
HIGH_S_SIG = bytes.fromhex(
    "e742ff452d41413616a5bf43fe15dd88294e983d3d36206c2712f39083d638bd"
    "e0a0fc89be718fbc1033e1d30d78be1c68081562ed2e97af876f286f3453231d1b"
)


def test_ecrecover__crypto_verify_test_TestEcrecover() -> None:
    """The devnet's VerifySig: the same refusals as go's ecrecover, the same recovered address."""
    assert recover_message_signer(ECRECOVER_MSG, ECRECOVER_SIG[:64]) is None  # invalid length
    assert recover_message_signer(ECRECOVER_MSG, HIGH_S_SIG) is None  # s value too high
    assert recover_message_signer(ECRECOVER_MSG, bytes(64) + bytes([256 - 27])) is None  # bad v
    assert recover_message_signer(ECRECOVER_MSG, ECRECOVER_SIG[:64] + b"\x00") is None  # v=0 too
    assert recover_message_signer(ECRECOVER_MSG, ECRECOVER_SIG) == ECRECOVER_ADDR
    assert recover_message_signer(b"", ECRECOVER_SIG) != ECRECOVER_ADDR  # FromHex("foo") is empty


def test_verify_sig__crypto_verify_test_TestVerifySig() -> None:
    assert recover_message_signer(ECRECOVER_MSG, ECRECOVER_SIG) == ECRECOVER_ADDR
    assert recover_message_signer(b"", ECRECOVER_SIG) != ECRECOVER_ADDR


R = Fraction


@pytest.mark.parametrize(
    ("cost", "ev", "timeout", "expected"),
    [
        # byoc/payment_test.go TestTicketCountForCost (table)
        (R(100), R(0), 60, 0),
        (R(0), R(10), 60, 0),
        (R(100), R(25), 60, 4),
        (R(101), R(25), 60, 5),
        (R(50), R(100), 60, 1),
        (R(10), R(1000), 60, 1),
        (R(99), R(100), 60, 1),
        (R(1000000), R(10000), 60, 100),
        (R(100), R(1, 100), 60, 600),
        (R(1), R(0), 300, 0),
        (R(1000000), R(1), 60, 600),
        (R(12000), R(20), 60, 600),
        (R(125), R(20), 60, 7),
        (R(-100), R(10), 60, 0),
        (R(100), R(-10), 60, 0),
        # TestTicketCountForCost_EdgeCases
        (R((2**63 - 1) * 2), R(1), 100, 600),
        (R(1, 1000000), R(1, 2000000), 60, 2),
        (R(100), R(100), 60, 1),
        (R(1), R(1000), 60, 1),
        # TestTicketCountForCost_BoundaryConditions
        (R(600), R(1), 60, 600),
        (R(601), R(1), 60, 600),
        (R(100), R(10), 0, 10),
        # TestTicketCountForCost_RealWorldScenarios
        (R(500000000000000000), R(10000000000000000), 300, 50),
        (R(100000000000000000), R(500000000000000000), 60, 1),
        (R(1000000000000000000), R(2000000000000000), 60, 500),
        (R(10**19), R(10**15), 60, 600),
        # TestTicketCountForCost_CalculationAccuracy
        (R(10), R(3), 60, 4),
        (R(15), R(4), 60, 4),
        (R(16), R(4), 60, 4),
        (R(17), R(4), 60, 5),
        (R(100), R(30), 60, 4),
        (R(100), R(10), 60, 10),
        (R(200), R(20), 60, 10),
        (R(300), R(30), 60, 10),
        (R(7), R(3), 60, 3),
    ],
)
def test_ticket_count__byoc_payment_test_TestTicketCountForCost(
    cost: Fraction, ev: Fraction, timeout: int, expected: int
) -> None:
    assert ticket_count_for_cost(cost, ev, timeout) == expected
