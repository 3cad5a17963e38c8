"""Devnet fixtures (shared session devnets and a factory) plus small request builders for curl-level tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from livepeer.devnet._keys import EthKey
from livepeer.devnet.pytest_plugin import devnet, devnet_factory, devnet_onchain  # noqa: F401


@pytest.fixture(scope="session")
def sender() -> EthKey:
    """A client key (stands in for a gateway's signer key)."""
    return EthKey.generate()


def b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@pytest.fixture
def job_header() -> Any:
    """``job_header(key_or_None, capability, request="{}")`` -> base64 ``Livepeer`` header (master signature)."""

    def build(
        key: EthKey | None,
        capability: str,
        request: str = "{}",
        parameters: str = "",
        timeout_seconds: int = 30,
    ) -> str:
        body: dict[str, Any] = {
            "id": "job-1",
            "request": request,
            "parameters": parameters,
            "capability": capability,
            "timeout_seconds": timeout_seconds,
        }
        if key is not None:
            body["sender"] = key.address
            body["sig"] = "0x" + key.sign_hash_of(request + parameters).hex()
        return b64json(body)

    return build


@pytest.fixture
def eth_address_header() -> Any:
    def build(key: EthKey) -> str:
        return b64json({"addr": key.address, "sig": "0x" + key.sign_hash_of(key.address).hex()})

    return build


@pytest.fixture(autouse=True)
def _fresh_signer_identities() -> None:
    """Each devnet has its own signer key, and a later devnet may get an earlier one's port: a process-wide
    identity cached for that URL would be another key's (the client recovers in a retry round, docs/client.md, but a
    test that allows no retry or counts signer calls would see it)."""
    from livepeer.client import _signer

    _signer._identity_cache.clear()
