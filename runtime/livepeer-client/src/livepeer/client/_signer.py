"""Remote signer client (and the optional local key): identity, job signatures, payments.

Decisions here are pure (``needs_payment``); the network steps are generator ops run by ``_http``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._config import join_path
from ._errors import ConfigError, PaymentError, SignerError, bounded
from ._http import Call, Flights, Op, Reply, Wait

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

# /sign-orchestrator-info is computed once at signer start; cache it per process per signer + headers.
_identity_lock = threading.Lock()
_identity_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Identity] = {}
_identity_flights = Flights()


@dataclass(frozen=True)
class Identity:
    """The sender: EIP-55 address and its EIP-191 signature (``Livepeer-Eth-Address``)."""

    address: str
    signature: str

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


def signer_error(reply: Reply, what: str) -> SignerError:
    return SignerError(
        f"signer {what} failed with {reply.status}: {_error_message(reply)}",
        status_code=reply.status,
    )


class _LocalKey:
    """eth-account backed signing (the ``local-key`` extra)."""

    def __init__(self, private_key: str) -> None:
        try:
            from eth_account import Account
        except ImportError:
            raise ConfigError(
                "a local signing key needs eth-account: pip install 'livepeer-client[local-key]'"
            ) from None
        self._signed: dict[str, str] = {}
        try:
            self._account = Account.from_key(private_key)
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

    def identity(self) -> Identity:
        address = str(self._account.address)
        return Identity(address, self.personal_sign_hash(address))


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
        self.byoc_signing: bool | None = None  # unknown until /sign-byoc-job answers once
        # recipientRandHashes per-request AI chains have started on: a new chain restarts sender nonces at 1,
        # so it must not start on ticket parameters an earlier chain used (pm/recipient.go:369-393).
        self.ai_sessions: set[bytes] = set()

    @property
    def has_local_key(self) -> bool:
        return self._key is not None

    def distrust_remote_job_signing(self) -> bool:
        """After an orchestrator rejected a ``/sign-byoc-job`` signature: use the local key instead.

        Branch signers sign a layout that master orchestrators cannot verify (PROTOCOL §13).
        Returns True when there is a local key to fall back to.
        """
        if self._key is None or not self.byoc_signing:
            return False
        self.byoc_signing = False
        return True

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
            return self._key.identity() if self._key else Identity(ZERO_ADDRESS, "0x")
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
        reply: Reply = yield self._call("/sign-orchestrator-info", {})
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

    def sign_job(self, job: Mapping[str, Any]) -> Op[tuple[str, str] | None]:
        """(sender, sig) for a BYOC JobRequest: signer ``/sign-byoc-job``, else local key, else None."""
        if self.url is not None and self.byoc_signing is not False:
            body = {
                k: job[k] for k in ("id", "capability", "request", "parameters", "timeout_seconds")
            }
            reply: Reply = yield self._call("/sign-byoc-job", body)
            if reply.status == 200:
                self.byoc_signing = True
                try:
                    data = json.loads(reply.body)
                    return str(data["sender"]), str(data["signature"])
                except (ValueError, KeyError, TypeError):
                    raise SignerError("signer /sign-byoc-job returned malformed JSON") from None
            if reply.status in (404, 405):
                self.byoc_signing = False
            else:
                raise signer_error(reply, "/sign-byoc-job")
        if self._key is not None:
            ident = self._key.identity()
            return ident.address, self._key.personal_sign_hash(
                str(job["request"]) + str(job["parameters"])
            )
        return None

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
    ) -> Op[PaymentTokens | None]:
        """``/generate-live-payment`` carrying the state chain of ``key``; None when the signer says skip (482).

        480 and 481 surface as ``SignerError`` with that status: the caller refreshes or moves on.
        """
        if self.url is None:
            raise PaymentError("payment required but no signer_url is configured")
        with self._lock:
            st = self.states.get(key)
            if st is None:
                st = self.states[key] = PaymentState(manifest_id or f"{key[1]}-{id(self):x}")
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
        reply: Reply = yield self._call("/generate-live-payment", body)
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
        with self._lock:
            st.state = new_state if isinstance(new_state, dict) else st.state
            st.info = orchestrator_info
        return tokens

    def chain_info(self, key: tuple[str, str]) -> bytes | None:
        """The OrchestratorInfo the state chain of ``key`` last paid against, if it exists."""
        with self._lock:
            st = self.states.get(key)
            return st.info if st is not None else None

    def forget(self, key: tuple[str, str]) -> None:
        """Drop a state chain (after 481/400 the chain is unusable)."""
        with self._lock:
            self.states.pop(key, None)
