"""The router: which request shapes (``Route``) serve a capability name, and the route of a probe.

A built-in pipeline name (``text-to-image``) is the ``ai`` route. Any other name is a BYOC capability or a
live-runner app (``apps``): BYOC is probed first and an app is tried where an orchestrator has no BYOC
capability of that name, unless the caller forces one (``route="byoc"`` / ``"app"``, docs/client.md
"Routing"). The policy that uses routes (probe, rank, attempt, fail over) is the dispatcher's (``_dispatch``).
"""

from __future__ import annotations

from collections.abc import Mapping

from livepeer.client._route import (
    BUILTIN_PIPELINES,
    BYOC_CAPABILITY_ID,
    Probe,
    Request,
    Route,
    body_fields,
    check_path,
    downgrades,
    request_url,
    safe_url,
    same_host,
)
from livepeer.client._routes import ai, apps, byoc

__all__ = [
    "BUILTIN_PIPELINES",
    "BYOC_CAPABILITY_ID",
    "ROUTES",
    "Probe",
    "Request",
    "Route",
    "body_fields",
    "check_path",
    "downgrades",
    "request_url",
    "route_kind",
    "routes_for",
    "safe_url",
    "same_host",
]

ROUTES: Mapping[str, Route] = {"ai": ai.ROUTE, "byoc": byoc.ROUTE, "apps": apps.ROUTE}


def route_kind(capability: str) -> str:
    """The route a name is probed on first: ``ai`` for built-in pipelines, else ``byoc``."""
    return "ai" if capability in BUILTIN_PIPELINES else "byoc"


def routes_for(capability: str, route: str | None) -> list[Route]:
    """The routes that may serve ``capability``, in the order they are probed: a built-in pipeline is
    ``ai``; another name is BYOC then a live-runner app, or only the one forced by ``route``."""
    if capability in BUILTIN_PIPELINES:
        return [ROUTES["ai"]]
    if route is not None:
        return [ROUTES["apps" if route == "app" else "byoc"]]
    return [ROUTES["byoc"], ROUTES["apps"]]
