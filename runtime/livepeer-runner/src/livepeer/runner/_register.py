"""Worker registration with an orchestrator: ``POST {orch}/capability/register`` (PROTOCOL.md §6.7)."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

import anyio

from livepeer.runner._errors import RegistrationError

if TYPE_CHECKING:
    import httpx

__all__ = ["register", "register_async", "unregister", "unregister_async"]

log = logging.getLogger("livepeer.runner")


def _payload(
    name: str,
    url: str,
    price: int,
    capacity: int,
    description: str,
    price_scaling: int,
    currency: str,
    token: str,
) -> dict[str, object]:
    # Field names and types follow go-livepeer's ExternalCapability JSON (prices are int64).
    return {
        "name": name,
        "description": description,
        "url": url,
        "capacity": capacity,
        "price_per_unit": price,
        "price_scaling": price_scaling,
        "currency": currency,
        "token": token,
    }


def _delay(attempt: int, backoff: float) -> float:
    return float(min(backoff * (2**attempt), 8.0) * (0.5 + random.random() / 2))


def _check(response: httpx.Response, what: str) -> bool:
    """True when done; raise on a final refusal; False when worth retrying."""
    if response.status_code == 200:
        return True
    if response.status_code < 500 and response.status_code not in (408, 429):
        # go-livepeer answers 400 for a wrong orchestrator secret: retrying cannot help.
        raise RegistrationError(
            f"{what} refused: {response.status_code} {response.text.strip()[:200]}",
            status_code=response.status_code,
        )
    return False


async def register_async(
    orchestrator_url: str,
    secret: str,
    name: str,
    url: str,
    price: int = 0,
    capacity: int = 1,
    *,
    description: str = "",
    price_scaling: int = 1,
    currency: str = "wei",
    token: str = "",
    retries: int = 5,
    backoff: float = 0.5,
    request_timeout: float = 5.0,
    verify: bool = False,
    client: httpx.AsyncClient | None = None,
) -> None:
    """Register a worker URL as capability ``name``; retries transport errors and 5xx with backoff.

    ``await register_async("https://127.0.0.1:8935", "secret", "text-reversal", "http://127.0.0.1:9000")``
    ``verify`` is False by default because orchestrators use self-signed certificates (PROTOCOL.md §4).
    """
    import httpx

    endpoint = orchestrator_url.rstrip("/") + "/capability/register"
    body = _payload(name, url, price, capacity, description, price_scaling, currency, token)
    headers = {"Authorization": secret}
    own = client is None
    http = client or httpx.AsyncClient(verify=verify, timeout=request_timeout)
    last: str = "no attempt"
    try:
        for attempt in range(retries + 1):
            try:
                response = await http.post(endpoint, json=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if _check(response, f"registration of {name!r}"):
                    return
                last = f"{response.status_code} {response.text.strip()[:200]}"
            if attempt < retries:
                log.warning("registration of %r failed (%s); retrying", name, last)
                await anyio.sleep(_delay(attempt, backoff))
    finally:
        if own:
            await http.aclose()
    raise RegistrationError(
        f"registration of {name!r} at {endpoint} failed after {retries + 1} tries: {last}"
    )


def register(
    orchestrator_url: str,
    secret: str,
    name: str,
    url: str,
    price: int = 0,
    capacity: int = 1,
    *,
    description: str = "",
    price_scaling: int = 1,
    currency: str = "wei",
    token: str = "",
    retries: int = 5,
    backoff: float = 0.5,
    request_timeout: float = 5.0,
    verify: bool = False,
) -> None:
    """Blocking twin of :func:`register_async`: ``register(orch, secret, "text-reversal", worker_url)``."""

    async def main() -> None:
        await register_async(
            orchestrator_url,
            secret,
            name,
            url,
            price,
            capacity,
            description=description,
            price_scaling=price_scaling,
            currency=currency,
            token=token,
            retries=retries,
            backoff=backoff,
            request_timeout=request_timeout,
            verify=verify,
        )

    anyio.run(main)


async def unregister_async(
    orchestrator_url: str,
    secret: str,
    name: str,
    *,
    request_timeout: float = 5.0,
    verify: bool = False,
    client: httpx.AsyncClient | None = None,
) -> None:
    """Remove capability ``name``: ``POST {orch}/capability/unregister`` with the bare name as body."""
    import httpx

    endpoint = orchestrator_url.rstrip("/") + "/capability/unregister"
    own = client is None
    http = client or httpx.AsyncClient(verify=verify, timeout=request_timeout)
    try:
        try:
            response = await http.post(
                endpoint, content=name.encode(), headers={"Authorization": secret}
            )
        except httpx.HTTPError as exc:
            raise RegistrationError(f"unregistration of {name!r} failed: {exc}") from exc
        if response.status_code != 200:
            raise RegistrationError(
                f"unregistration of {name!r} refused: {response.status_code} {response.text.strip()[:200]}",
                status_code=response.status_code,
            )
    finally:
        if own:
            await http.aclose()


def unregister(
    orchestrator_url: str,
    secret: str,
    name: str,
    *,
    request_timeout: float = 5.0,
    verify: bool = False,
) -> None:
    """Blocking twin of :func:`unregister_async`."""

    async def main() -> None:
        await unregister_async(
            orchestrator_url, secret, name, request_timeout=request_timeout, verify=verify
        )

    anyio.run(main)
