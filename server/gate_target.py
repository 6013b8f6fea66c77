"""Which operation an API request calls, and its target, from the route, path and query string.

The gate (``server.gate``) resolves these before it authenticates anyone: they need no body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import parse_qs

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from audit.record import Account, event_source
from core.operations import Operation, RequestTarget, operation_of

__all__ = [
    "api_routes",
    "check_registry",
    "declares_body",
    "gated_routes",
    "headers_of",
    "request_parameters",
    "resolve_operation",
    "source_from_path",
]


def api_routes(routes: Sequence[BaseRoute]) -> list[Route]:
    return [r for r in routes if isinstance(r, Route) and r.path.startswith("/api/")]


def check_registry(routes: Sequence[BaseRoute]) -> None:
    """Refuse to start when an API route has no operation: it could not be authorized."""
    api = api_routes(routes)
    if not api:
        raise RuntimeError("no API routes found to authorize: the route registry is miswired")
    missing = [r.path for r in api if operation_of(r.endpoint) is None]
    if missing:
        raise RuntimeError(f"API routes without an operation in the registry: {missing}")


@dataclass(frozen=True, slots=True)
class GatedRoute:
    """An API route with what the gate needs of it beyond matching, worked out once."""

    route: Route
    # The query parameters it declares with one value (not a list).
    single_valued: frozenset[str]


def gated_routes(routes: Sequence[BaseRoute]) -> list[GatedRoute]:
    return [
        GatedRoute(
            route,
            frozenset(
                p.alias for p in _query_fields(route) if not _is_sequence(p.field_info.annotation)
            ),
        )
        for route in api_routes(routes)
    ]


def resolve_operation(
    routes: Sequence[GatedRoute], account: Account, scope: Scope
) -> tuple[Operation, RequestTarget] | None:
    """The operation of the route that matches the request, and the request's target."""
    for gated in routes:
        route, single = gated.route, gated.single_valued
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        op = operation_of(route.endpoint)
        if op is None:  # check_registry makes this unreachable; deny all the same
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        target = RequestTarget(
            path_params=child.get("path_params", {}),
            query={k: v[-1] for k, v in query.items()},
            query_lists=query,
            region=account.region,
            account_id=account.account_id,
            has_body=op.choose is not None and declares_body(scope),
            repeated=tuple(n for n, values in query.items() if len(values) > 1 and n in single),
        )
        if op.choose is not None:
            op = op.choose(target, scope["app"].state)
        return op, target
    return None


def _query_fields(route: Route) -> list[Any]:
    """FastAPI's query parameter fields of a route, its dependencies' included."""
    found: list[Any] = []
    dependants = [getattr(route, "dependant", None)]
    while dependants:
        dependant = dependants.pop()
        if dependant is not None:
            found += dependant.query_params
            dependants += dependant.dependencies
    return found


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_sequence(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return any(_is_sequence(arg) for arg in get_args(annotation))
    return (origin or annotation) in (list, tuple, set, frozenset)


def request_parameters(target: RequestTarget) -> dict[str, Any] | None:
    parameters: dict[str, Any] = {}
    for name, values in target.query_lists.items():
        parameters[name] = values[-1] if len(values) == 1 else list(values)
    parameters.update({k: str(v) for k, v in target.path_params.items()})
    return parameters or None


_PATH_SERVICES = {
    "logs": "logs",
    "queries": "logs",
    "metrics": "cloudwatch",
    "alarms": "cloudwatch",
    "audit": "cloudtrail",
    "iam": "iam",
}


def source_from_path(path: str) -> str:
    parts = path.strip("/").split("/")
    service = parts[2] if len(parts) > 2 and parts[0] == "api" else ""
    return event_source(_PATH_SERVICES.get(service, "api"))


def declares_body(scope: Scope) -> bool:
    headers = headers_of(scope)
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
