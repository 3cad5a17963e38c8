"""The spend ledger and budgets: what every payment is expected to cost, and a cap that holds before it is sent.

Every payment the SDK makes is a bundle of probabilistic tickets. What a bundle costs in expectation is exact
and known before it leaves the process: tickets × face_value × win_prob / (2^256 - 1) (go-livepeer
``pm/ticket.go`` ``ticketEV``). What it costs in fact is only known when a winning ticket is redeemed on chain,
which the SDK never sees; so the ledger counts expected value, exactly (a ``Fraction`` of wei), and shows it in
whole wei rounded up (a budget must not be crossed by rounding). See docs/spend.md.

A budget is checked with the bundle in hand and before it is handed to an orchestrator: a bundle that would
cross ``max_spend`` (per Gateway) or ``max_spend_per_call`` (per run/stream call or live session) is dropped
and the call fails with ``BudgetExceededError``. With a remote signer the signer has already advanced its
session state when we drop the bundle; the state chain is discarded with it (no later payment builds on credit
the orchestrator never got).

The call a payment belongs to travels in a context variable set by the verbs, because payments are made deep
inside route ops that are shared by sync and async drivers; threading a parameter through every op and route
would touch every signature for one bookkeeping concern. Context variables follow both: the sync driver runs
ops in the caller's thread, and tasks started by a live session copy the session's context.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from ._errors import ConfigError, PaymentError

__all__ = [
    "BudgetExceededError",
    "Charge",
    "Spend",
    "SpendSummary",
    "eth",
    "gwei",
]

log = logging.getLogger("livepeer.client")

WEI_PER_GWEI = 10**9
WEI_PER_ETH = 10**18
# Entries kept for inspection; totals are exact regardless (a long-running process must not grow without bound).
MAX_ENTRIES = 1000


def _to_wei(amount: int | float | str | Decimal, scale: int, what: str) -> int:
    if isinstance(amount, bool):
        raise ConfigError(f"{what} must be a number, not a bool")
    try:
        value = Decimal(str(amount)) * scale
    except ArithmeticError:
        raise ConfigError(f"{what} must be a number, got {amount!r}") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{what} must be a finite, non-negative number, got {amount!r}")
    return int(value.to_integral_value(rounding="ROUND_FLOOR"))


def eth(amount: int | float | str | Decimal) -> int:
    """Wei in ``amount`` ETH, for budgets: ``Gateway(max_spend=eth("0.01"))``."""
    return _to_wei(amount, WEI_PER_ETH, "eth()")


def gwei(amount: int | float | str | Decimal) -> int:
    """Wei in ``amount`` gwei: ``Gateway(max_spend_per_call=gwei(500))``."""
    return _to_wei(amount, WEI_PER_GWEI, "gwei()")


def check_budget(value: object, name: str) -> int | None:
    """Validate a budget argument: None or a non-negative whole number of wei."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number of wei (use eth()/gwei()), got {value!r}")
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


class BudgetExceededError(PaymentError):
    """A payment would have crossed a budget, so it was not made."""

    def __init__(
        self, message: str, *, budget: str, limit_wei: int, spent_wei: int, needed_wei: int
    ):
        self.budget = budget
        self.limit_wei = limit_wei
        self.spent_wei = spent_wei
        self.needed_wei = needed_wei
        super().__init__(message)


@dataclass(frozen=True)
class Charge:
    """One payment handed to an orchestrator: its tickets and their expected value."""

    capability: str
    orchestrator: str
    tickets: int
    expected: Fraction  # tickets × face value × win probability / (2^256 - 1), in wei, exact
    price_per_unit: int | None = None
    pixels_per_unit: int | None = None
    unit: str | None = None
    call_id: str | None = None


@dataclass
class _Call:
    call_id: str
    capability: str
    spent: Fraction = Fraction(0)

    @property
    def spent_wei(self) -> int:
        return math.ceil(self.spent)


@dataclass(frozen=True)
class SpendSummary:
    """Totals in wei: overall, per capability, per orchestrator; and the last credit orchestrators reported."""

    total: Fraction  # exact expected value in wei
    tickets: int
    payments: int
    by_capability: Mapping[str, Fraction]
    by_orchestrator: Mapping[str, Fraction]
    credit: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_wei(self) -> int:
        """Expected value of every payment, whole wei rounded up."""
        return math.ceil(self.total)

    @property
    def total_eth(self) -> Decimal:
        return Decimal(self.total.numerator) / Decimal(self.total.denominator) / WEI_PER_ETH


current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "livepeer_spend_call", default=None
)


class Spend:
    """The ledger of one Gateway (``gw.spend``): expected value of every payment, and the budgets."""

    def __init__(self, *, max_spend: int | None = None, max_spend_per_call: int | None = None):
        self.max_spend = check_budget(max_spend, "max_spend")
        self.max_spend_per_call = check_budget(max_spend_per_call, "max_spend_per_call")
        self._lock = threading.Lock()
        self._total = Fraction(0)
        self._tickets = 0
        self._payments = 0
        self._by_capability: dict[str, Fraction] = {}
        self._by_orchestrator: dict[str, Fraction] = {}
        self._credit: dict[str, float] = {}
        self._entries: list[Charge] = []

    # -- calls ---------------------------------------------------------------------------------------
    @contextmanager
    def _call(self, capability: str, call_id: str) -> Iterator[_Call]:
        """Scope of one run/stream call or live session: payments inside count towards its budget."""
        scope = _Call(call_id, capability)
        token = current_call.set(scope)
        try:
            yield scope
        finally:
            current_call.reset(token)

    # -- payments ------------------------------------------------------------------------------------
    def _authorize(
        self,
        *,
        capability: str,
        orchestrator: str,
        tickets: int,
        expected: Fraction | int,
        price_per_unit: int | None = None,
        pixels_per_unit: int | None = None,
        unit: str | None = None,
    ) -> Charge:
        """Reserve a payment against the budgets and record it; raise before anything is sent.

        Called with the tickets built but not yet sent. Recording at authorization (not after the
        orchestrator answers) is deliberate: tickets that left the process may win whatever the answer.
        """
        value = Fraction(expected) if expected > 0 else Fraction(0)
        wei = math.ceil(value)
        scope = current_call.get()
        # The call's own name wins: route-internal keys (an AI chain's "{capID}_{modelID}") are not names.
        capability = (scope.capability if scope is not None else "") or capability
        with self._lock:
            if self.max_spend is not None and self._total + value > self.max_spend:
                spent = math.ceil(self._total)
                raise BudgetExceededError(
                    f"payment of {wei} wei to {orchestrator} for {capability!r} not made: it would "
                    f"cross max_spend ({spent} of {self.max_spend} wei spent)",
                    budget="max_spend",
                    limit_wei=self.max_spend,
                    spent_wei=spent,
                    needed_wei=wei,
                )
            per_call = self.max_spend_per_call
            if per_call is not None and scope is not None and scope.spent + value > per_call:
                raise BudgetExceededError(
                    f"payment of {wei} wei to {orchestrator} for {capability!r} not made: it would "
                    f"cross max_spend_per_call ({scope.spent_wei} of {per_call} wei spent by this call)",
                    budget="max_spend_per_call",
                    limit_wei=per_call,
                    spent_wei=scope.spent_wei,
                    needed_wei=wei,
                )
            charge = Charge(
                capability,
                orchestrator,
                tickets,
                value,
                price_per_unit,
                pixels_per_unit,
                unit,
                scope.call_id if scope else None,
            )
            self._total += value
            self._tickets += tickets
            self._payments += 1
            self._by_capability[capability] = self._by_capability.get(capability, 0) + value
            self._by_orchestrator[orchestrator] = self._by_orchestrator.get(orchestrator, 0) + value
            self._entries.append(charge)
            del self._entries[:-MAX_ENTRIES]
            if scope is not None:
                scope.spent += value
        price = f", price {price_per_unit}/{pixels_per_unit or 1} wei per {unit}" if unit else ""
        log.info(
            "paid %s: %d ticket(s), expected %d wei for %r%s",
            orchestrator,
            tickets,
            wei,
            capability,
            price,
        )
        return charge

    @property
    def has_budget(self) -> bool:
        return self.max_spend is not None or self.max_spend_per_call is not None

    def _note_credit(self, orchestrator: str, capability: str, credit: float) -> None:
        """The credit an orchestrator reported (balance header or event), for ``summary().credit``."""
        if math.isfinite(credit):
            with self._lock:
                self._credit[f"{orchestrator} {capability}"] = credit

    # -- reading -------------------------------------------------------------------------------------
    @property
    def total_wei(self) -> int:
        """Expected value of every payment so far, whole wei rounded up."""
        with self._lock:
            return math.ceil(self._total)

    @property
    def entries(self) -> list[Charge]:
        """The most recent payments (up to 1000), oldest first."""
        with self._lock:
            return list(self._entries)

    def summary(self) -> SpendSummary:
        with self._lock:
            return SpendSummary(
                self._total,
                self._tickets,
                self._payments,
                dict(self._by_capability),
                dict(self._by_orchestrator),
                dict(self._credit),
            )

    def __repr__(self) -> str:
        limits = ""
        if self.max_spend is not None:
            limits += f", max_spend={self.max_spend}"
        if self.max_spend_per_call is not None:
            limits += f", max_spend_per_call={self.max_spend_per_call}"
        return f"Spend(total_wei={self.total_wei}{limits})"


def payment_expected_value(payment_b64: str) -> tuple[int, Fraction, int | None, int | None] | None:
    """(tickets, expected value, price per unit, pixels per unit) of a base64 ``Payment`` protobuf.

    A remote signer decides how many tickets it mints; the bundle itself says what it is worth. None when
    the bundle cannot be read (the caller decides: with a budget, an unvalued payment is not sent).
    """
    import base64

    from ._proto import lp_rpc_pb2 as pb

    payment = pb.Payment()
    try:
        payment.ParseFromString(base64.b64decode(payment_b64, validate=True))
    except Exception:
        return None
    from ._tickets import params_ev

    tickets = len(payment.ticket_sender_params)
    ev = params_ev(payment.ticket_params) * tickets
    price = payment.expected_price
    has_price = payment.HasField("expected_price")
    return (
        tickets,
        ev,
        price.pricePerUnit if has_price else None,
        price.pixelsPerUnit if has_price else None,
    )
