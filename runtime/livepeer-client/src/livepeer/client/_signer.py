"""Remote signer client (and the optional local key): identity, job signatures, payments.

Decisions here are pure (``needs_payment``); the network steps are generator ops (``_ops``) run by ``_io``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._config import join_path
from ._errors import (
    ConfigError,
    PaymentError,
    SignerError,
    SignerPriceError,
    SignerRefreshError,
    SignerSkipError,
    bounded,
)
from ._ops import Call, Flights, Op, Reply, Wait, request
from ._spend import Spend, payment_expected_value

log = logging.getLogger("livepeer.client")

if TYPE_CHECKING:
    from ._proto import lp_rpc_pb2 as pb

__all__ = [
    "Identity",
    "PaymentTokens",
    "Signer",
    "needs_payment",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# go-livepeer's gateway sends no BYOC payment while the balance covers 120 s of the price.
PAYMENT_THRESHOLD_SECONDS = 120
SIGNER_TIMEOUT = 10.0
# Fresh ticket parameters fetched for one payment after signer 480s, before the 480 is the caller's.
MAX_REFRESH = 3

# /sign-orchestrator-info is computed once at signer start; cache it per process per signer + headers.
_identity_lock = threading.Lock()
_identity_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Identity] = {}
_identity_flights = Flights()


@dataclass(frozen=True)
class Identity:
    """The sender: EIP-55 address and its EIP-191 signature (``Livepeer-Eth-Address``).

    ``job_key`` is the identity BYOC uses when it differs (a local key next to a remote signer): the key
    that signs BYOC jobs must be the one whose tickets pay for them (D-byoc-1).
    """

    address: str
    signature: str
    job_key: Identity | None = None

    def for_byoc(self) -> Identity:
        return self.job_key or self

    def eth_address_header(self) -> str:
        raw = json.dumps({"addr": self.address, "sig": self.signature}, separators=(",", ":"))
        return base64.b64encode(raw.encode()).decode()

    def address_bytes(self) -> bytes:
        return bytes.fromhex(self.address[2:]) if self.address != ZERO_ADDRESS else b""

    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.signature[2:]) if len(self.signature) > 2 else b""


@dataclass(frozen=True)
class PaymentTokens:
    """``Livepeer-Payment`` / ``Livepeer-Segment`` header values from ``/generate-live-payment``."""

    payment: str
    seg_creds: str


@dataclass
class PaymentState:
    """The signer's opaque state chain for one (orchestrator, capability)."""

    manifest_id: str
    state: Mapping[str, Any] | None = None
    # The OrchestratorInfo the chain last paid against: per-request AI chains keep using it, because a
    # chain's sender nonces are only unique under its own ticket parameters (pm/recipient.go:369-393).
    info: bytes | None = None


def needs_payment(price_per_second: float, balance: float | None) -> bool:
    """Pay only when priced and the known balance is under ``PAYMENT_THRESHOLD_SECONDS`` of price."""
    if price_per_second <= 0:
        return False
    return balance is None or balance < PAYMENT_THRESHOLD_SECONDS * price_per_second


def _error_message(reply: Reply) -> str:
    try:
        data = json.loads(reply.body)
        msg = data["error"]["message"]
        if isinstance(msg, str):
            return bounded(msg, 300)
    except (ValueError, KeyError, TypeError):
        pass
    return bounded(reply.body, 300)


# The signer's own statuses (go-livepeer server/remote_signer.go), each with the one thing a caller does.
_SIGNER_ERRORS: dict[int, type[SignerError]] = {
    480: SignerRefreshError,
    481: SignerPriceError,
    482: SignerSkipError,
}


def signer_error(reply: Reply, what: str) -> SignerError:
    cls = _SIGNER_ERRORS.get(reply.status, SignerError)
    return cls(
        f"signer {what} failed with {reply.status}: {_error_message(reply)}",
        status_code=reply.status,
    )


class _LocalKey:
    """eth-account backed signing (the ``local-key`` extra)."""

    def __init__(self, private_key: str | None) -> None:
        """``private_key`` None: a fresh throwaway key (zero-price on-chain BYOC jobs, D-byoc-1)."""
        try:
            from eth_account import Account
        except ImportError:
            raise ConfigError(
                "a local signing key needs eth-account: pip install 'livepeer-client[local-key]'"
            ) from None
        self._signed: dict[str, str] = {}
        try:
            self._account = (
                Account.create() if private_key is None else Account.from_key(private_key)
            )
        except (ValueError, TypeError):
            raise ConfigError("the configured private key is not a valid secp256k1 key") from None

    def personal_sign_hash(self, text: str) -> str:
        """EIP-191 signature of keccak256(text), the scheme go-livepeer verifies (memoized: jobs
        sign the same ``request + parameters`` text every time)."""
        cached = self._signed.get(text)
        if cached is not None:
            return cached
        from eth_account.messages import encode_defunct
        from eth_utils.crypto import keccak

        signed = self._account.sign_message(encode_defunct(primitive=keccak(text=text)))
        sig = "0x" + bytes(signed.signature).hex()
        if len(self._signed) < 64:
            self._signed[text] = sig
        return sig

    def sign_digest(self, digest: bytes) -> bytes:
        """EIP-191 signature of ``digest`` as given (tickets: go-livepeer signs the 32-byte ticket hash)."""
        from eth_account.messages import encode_defunct

        return bytes(self._account.sign_message(encode_defunct(primitive=digest)).signature)

    @property
    def address(self) -> str:
        return str(self._account.address)

    def identity(self) -> Identity:
        return Identity(self.address, self.personal_sign_hash(self.address))


class Signer:
    """Signer access for one Gateway; state is kept per (orchestrator, capability)."""

    def __init__(
        self, url: str | None, headers: Mapping[str, str], private_key: str | None = None
    ) -> None:
        self.url = url
        self.headers = dict(headers)
        self._key = _LocalKey(private_key) if private_key else None
        self._lock = threading.Lock()
        self.states: dict[tuple[str, str], PaymentState] = {}
        # recipientRandHashes per-request AI chains have started on: a new chain restarts sender nonces at 1,
        # so it must not start on ticket parameters an earlier chain used (pm/recipient.go:369-393).
        self.ai_sessions: set[bytes] = set()
        self._ephemeral: _LocalKey | None = None
        # Every payment passes the Gateway's ledger, which records it and enforces the budgets (_spend.py).
        self.spend = Spend()
        # Last sender nonce used per recipient rand hash (go-livepeer refuses a repeated nonce).
        self._nonces: dict[bytes, int] = {}

    @property
    def has_local_key(self) -> bool:
        return self._key is not None

    @property
    def onchain(self) -> bool:
        return self.url is not None or self._key is not None

    def _call(self, path: str, body: object) -> Call:
        assert self.url is not None
        return Call(
            "POST",
            join_path(self.url, path),
            headers=self.headers,
            json=body,
            timeout=SIGNER_TIMEOUT,
            service=True,
            limit=1 << 20,
        )

    def identity(self) -> Op[Identity]:
        """``/sign-orchestrator-info`` (cached per process), the local key, or the offchain zero sender."""
        if self.url is None:
            # Offchain orchestrators hex-decode the signature before ignoring it: "" passes, "0x" does
            # not (byoc/job_orchestrator.go:597-605 at 176aa415).
            return self._key.identity() if self._key else Identity(ZERO_ADDRESS, "")
        remote = yield from self._remote_identity()
        if self._key is not None:
            return replace(remote, job_key=self._key.identity())
        return remote

    def _remote_identity(self) -> Op[Identity]:
        assert self.url is not None
        key = (self.url, tuple(sorted(self.headers.items())))
        with _identity_lock:
            cached = _identity_cache.get(key)
        if cached is not None:
            return cached
        flight = _identity_flights.join(key)
        if flight is not None:
            yield Wait([flight], SIGNER_TIMEOUT)
            with _identity_lock:
                cached = _identity_cache.get(key)
            if cached is not None:
                return cached
            # The leader failed; try on our own so that its error does not become ours silently.
            return (yield from self._fetch_identity(key))
        try:
            return (yield from self._fetch_identity(key))
        finally:
            _identity_flights.done(key)

    def _fetch_identity(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> Op[Identity]:
        reply = yield from request(self._call("/sign-orchestrator-info", {}))
        if reply.status != 200:
            raise signer_error(reply, "/sign-orchestrator-info")
        try:
            data = json.loads(reply.body)
            ident = Identity(str(data["address"]), str(data["signature"]))
        except (ValueError, KeyError, TypeError):
            raise SignerError("signer /sign-orchestrator-info returned malformed JSON") from None
        if not ident.address.startswith("0x") or not ident.signature.startswith("0x"):
            raise SignerError(
                "signer /sign-orchestrator-info returned a malformed address or signature"
            )
        with _identity_lock:
            _identity_cache[key] = ident
        return ident

    def job_signature(
        self, ident: Identity, job: Mapping[str, Any], *, onchain: bool, priced: bool
    ) -> tuple[str, str]:
        """(sender, sig) for a BYOC JobRequest; raises ConfigError when no key can sign it.

        Offchain orchestrators verify nothing but hex-decode ``sig``: send "". On-chain, the job signer is
        the account the orchestrator reads credit from, so it must be the key that pays (D-byoc-1): the
        local key; for a zero-price capability with only a remote signer, a throwaway key (go-livepeer
        checks no reserve and no balance at price 0). A master signer cannot sign BYOC jobs.
        """
        if not onchain:
            return ident.for_byoc().address, ""
        key = self._key
        if key is None:
            if priced:
                raise missing_byoc_key(str(job.get("capability", "")))
            with self._lock:
                if self._ephemeral is None:
                    self._ephemeral = _LocalKey(None)
                key = self._ephemeral
        return key.address, key.personal_sign_hash(str(job["request"]) + str(job["parameters"]))

    def byoc_payment(
        self,
        token: Mapping[str, Any],
        *,
        price: tuple[int, int],
        seconds: int,
        orchestrator: str = "",
    ) -> str | None:
        """``Livepeer-Payment`` with tickets for ``seconds`` of ``price``, signed by the local key.

        Built from the JobToken's ticket params as go-livepeer's gateway builds it (byoc/payment.go
        ``createPayment``): expected price = the token's price, sender = the key, fresh nonces per
        recipient rand hash. None when the token cannot be paid (no ticket params or zero EV).
        """
        from fractions import Fraction

        from ._tickets import (
            MAX_SENDER_NONCES,
            make_payment,
            params_ev,
            ticket_count_for_cost,
        )

        if self._key is None:
            raise missing_byoc_key(str(token.get("capability", "")))
        params = ticket_params_from_token(token)
        if params is None:
            return None
        ev = params_ev(params)
        cost = Fraction(price[0], price[1] or 1) * seconds
        count = ticket_count_for_cost(cost, ev, seconds)
        if count <= 0:
            return None
        with self._lock:
            first = self._nonces.get(params.recipient_rand_hash, 0) + 1
            last = min(first + count - 1, MAX_SENDER_NONCES)
            if last < first:
                raise PaymentError(
                    "these ticket parameters carry no more sender nonces; fetch a fresh /process/token"
                )
            # The budget check comes before the nonces are used: a refused payment costs nothing.
            self.spend._authorize(
                capability="",  # the call's own name (the spend scope's)
                orchestrator=orchestrator or str(token.get("service_addr") or ""),
                tickets=last - first + 1,
                expected=ev * (last - first + 1),
                price_per_unit=price[0],
                pixels_per_unit=price[1],
                unit="seconds",
            )
            self._nonces[params.recipient_rand_hash] = last
            if len(self._nonces) > 4096:
                self._nonces.pop(next(iter(self._nonces)))
        payment = make_payment(
            params,
            sender=bytes.fromhex(self._key.address[2:]),
            expected_price=price,
            nonces=range(first, last + 1),
            sign=self._key.sign_digest,
        )
        return base64.b64encode(payment.SerializeToString()).decode()

    def payment(
        self,
        key: tuple[str, str],
        orchestrator_info: bytes,
        *,
        billing: str | None,
        manifest_id: str | None = None,
        app: str | None = None,
        in_pixels: int | None = None,
        max_price: Mapping[str, object] | None = None,
        capabilities: bytes | None = None,
    ) -> Op[PaymentTokens | None]:
        """``/generate-live-payment`` carrying the state chain of ``key``; None when the signer says skip (482).

        480, 481 and 482 where it is an error are ``SignerRefreshError``, ``SignerPriceError`` and
        ``SignerSkipError`` (``pay_refreshing`` handles 480).
        """
        if self.url is None:
            raise PaymentError("payment required but no signer_url is configured")
        with self._lock:
            st = self.states.get(key)
            if st is None:
                st = self.states[key] = PaymentState(manifest_id or f"{key[1]}-{id(self):x}")
            elif manifest_id:
                # The id is the orchestrator's account for these tickets (its /payment credits the segment
                # credentials' ManifestID, segment_rpc.go:260) and may change within a chain, whose signed
                # state holds no id (remote_signer.go:148-162): an LV2V session is started under the
                # gateway's stream id and then paid under the orchestrator's manifest_id, the account the
                # session debits (ai_http.go:1043, 1097-1111; the Go gateway, ai_mediaserver.go:815-818).
                st.manifest_id = manifest_id
        body: dict[str, Any] = {
            "orchestrator": base64.b64encode(orchestrator_info).decode(),
            "ManifestID": st.manifest_id,
        }
        if st.state is not None:
            body["state"] = st.state
        if billing:
            body["type"] = billing
        if app:
            body["app"] = app
        if in_pixels is not None and not billing:
            body["inPixels"] = in_pixels
        if max_price is not None:
            body["maxPrice"] = dict(max_price)
        if capabilities:
            # []byte in RemotePaymentRequest: base64 in JSON (remote_signer.go:193-194)
            body["capabilities"] = base64.b64encode(capabilities).decode()
        reply = yield from request(self._call("/generate-live-payment", body))
        if reply.status == 482:
            return None
        if reply.status != 200:
            raise signer_error(reply, "/generate-live-payment")
        try:
            data = json.loads(reply.body)
            tokens = PaymentTokens(str(data["payment"]), str(data.get("segCreds") or ""))
            new_state = data.get("state")
        except (ValueError, KeyError, TypeError):
            raise SignerError("signer /generate-live-payment returned malformed JSON") from None
        self._authorize_remote(key, tokens, billing=billing)
        with self._lock:
            st.state = new_state if isinstance(new_state, dict) else st.state
            st.info = orchestrator_info
        return tokens

    def pay_refreshing(
        self,
        key: tuple[str, str],
        orchestrator_info: bytes,
        refresh: Callable[[], Op[bytes]],
        *,
        billing: str | None,
        manifest_id: str | None = None,
        app: str | None = None,
        in_pixels: int | None = None,
        max_price: Mapping[str, object] | None = None,
        capabilities: bytes | None = None,
    ) -> Op[tuple[PaymentTokens | None, bytes]]:
        """``payment``, refreshed on 480 (stale ticket parameters or auth token): ``refresh`` fetches a new
        ``OrchestratorInfo`` the route's way and the same state pays again, at most ``MAX_REFRESH`` times.
        Returns the tokens (None on 482) and the info they were made on. Every route pays through this one
        loop (issue 16); 481 (``SignerPriceError``) and the rest are the caller's."""
        refreshes = 0
        while True:
            try:
                tokens = yield from self.payment(
                    key, orchestrator_info, billing=billing, manifest_id=manifest_id, app=app,
                    in_pixels=in_pixels, max_price=max_price, capabilities=capabilities,
                )  # fmt: skip
            except SignerRefreshError:
                if refreshes == MAX_REFRESH:
                    raise
                refreshes += 1
                orchestrator_info = yield from refresh()
                continue
            return tokens, orchestrator_info

    def chain_info(self, key: tuple[str, str]) -> bytes | None:
        """The OrchestratorInfo the state chain of ``key`` last paid against, if it exists."""
        with self._lock:
            st = self.states.get(key)
            return st.info if st is not None else None

    def _authorize_remote(
        self, key: tuple[str, str], tokens: PaymentTokens, *, billing: str | None
    ) -> None:
        """Ledger and budgets for a signer-made bundle, before it is sent; over budget, drop the chain too."""
        valued = payment_expected_value(tokens.payment)
        if valued is None:
            if self.spend.has_budget:
                self.forget(key)
                raise PaymentError(
                    "the signer returned a payment that is not a valid Payment message, so its cost is "
                    "unknown; with a budget set it is not sent"
                )
            log.debug("signer payment for %s is not a readable Payment; not counted", key[0])
            return
        tickets, expected, per_unit, pixels = valued
        unit = {"lv2v": "720p-pixel-seconds", "live": "seconds", "fixed": "fixed"}.get(
            billing or "", "pixels"
        )
        try:
            self.spend._authorize(
                capability=key[1],
                orchestrator=key[0],
                tickets=tickets,
                expected=expected,
                price_per_unit=per_unit,
                pixels_per_unit=pixels,
                unit=unit,
            )
        except PaymentError:
            # The signer already counted this bundle as credit at the orchestrator; a chain that
            # believes in credit that was never delivered must not be continued.
            self.forget(key)
            raise

    def forget(self, key: tuple[str, str]) -> None:
        """Drop a state chain (after 481/400 the chain is unusable)."""
        with self._lock:
            self.states.pop(key, None)

    def forget_identity(self) -> None:
        """Drop this signer's cached ``/sign-orchestrator-info`` answer; the next ``identity`` asks again.

        The answer is cached per process because go-livepeer computes it once at signer start, but a signer
        restarted with another key at the same URL makes every cached copy a signature orchestrators refuse
        ("orchestrator req sig check failed", server/rpc.go:679-683)."""
        if self.url is not None:
            with _identity_lock:
                _identity_cache.pop((self.url, tuple(sorted(self.headers.items()))), None)


def missing_byoc_key(capability: str) -> ConfigError:
    what = f"{capability!r}" if capability else "this capability"
    return ConfigError(
        f"on-chain BYOC payments for {what} need private_key= (or LIVEPEER_PRIVATE_KEY): the key that "
        "signs a BYOC job must be the key whose tickets pay for it, and a remote signer can sign neither "
        "the job nor tickets for another account (only zero-price capabilities work without a key)"
    )


def ticket_params_from_token(token: Mapping[str, Any]) -> pb.TicketParams | None:
    """The JobToken's ``ticket_params`` (go's JSON: base64 bytes, omitted when empty) as protobuf."""
    from ._proto import lp_rpc_pb2 as pb

    tp = token.get("ticket_params")
    if not isinstance(tp, Mapping):
        return None
    try:
        params = pb.TicketParams()
        for name in (
            "recipient",
            "face_value",
            "win_prob",
            "recipient_rand_hash",
            "seed",
            "expiration_block",
        ):
            if tp.get(name):
                setattr(params, name, base64.b64decode(str(tp[name]), validate=True))
        ep = tp.get("expiration_params") or {}
        if isinstance(ep, Mapping):
            params.expiration_params.creation_round = int(ep.get("creation_round") or 0)
            if ep.get("creation_round_block_hash"):
                params.expiration_params.creation_round_block_hash = base64.b64decode(
                    str(ep["creation_round_block_hash"]), validate=True
                )
    except (ValueError, TypeError):
        return None
    return params
