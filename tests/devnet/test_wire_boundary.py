"""Only ``livepeer.devnet._wire`` may import livepeer-client internals (see its docstring for why)."""

from __future__ import annotations

import ast
from pathlib import Path

import livepeer.devnet
from livepeer.devnet import _wire

DEVNET = Path(livepeer.devnet.__file__).parent


def _client_imports(path: Path) -> list[str]:
    """Every ``livepeer.client...`` module the file imports, TYPE_CHECKING and function-level included."""
    found = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("livepeer.client")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("livepeer.client"):
            found.append(str(node.module))
    return found


def test_no_devnet_module_but_wire_imports_the_client() -> None:
    offenders = {
        str(p.relative_to(DEVNET)): names
        for p in sorted(DEVNET.rglob("*.py"))
        if p.name != "_wire.py" and (names := _client_imports(p))
    }
    assert offenders == {}
    # The scan does see imports: the one allowed module has them.
    assert "livepeer.client._tickets" in _client_imports(DEVNET / "_wire.py")


def test_wire_gives_the_clients_own_definitions() -> None:
    from livepeer.client import _routes, _tickets
    from livepeer.client._proto import lp_rpc_pb2

    assert _wire.pb is lp_rpc_pb2
    assert _wire.BUILTIN_PIPELINES is _routes.BUILTIN_PIPELINES
    assert _wire.ticket_hash is _tickets.ticket_hash
    assert _wire.audio_seconds is _routes.ai_request.audio_seconds
    assert _wire.LV2V_CAPABILITY_ID == 35  # core/capabilities.go Capability_LiveVideoToVideo
