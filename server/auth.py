"""The ASGI middleware that authenticates and authorizes every API call before its body is read.

It finds the route the request will reach, takes that route's ``Operation`` from the registry
(``core.operations``), derives the target resources from the path and query string alone, checks
the credentials, decides, and only then lets the request through. Today every active key belongs
to the root principal, which may do everything; policies come with the IAM issue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import Unavailable, WatchkeepError
from core.operations import Operation, RequestTarget, operation_of
from iam import AuthenticatedKey
from server.errors import watchkeep_error_response

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


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


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        authenticate: Callable[[str | None], AuthenticatedKey],
        is_ready: Callable[[], bool],
        region: str,
        account_id: str,
    ) -> None:
        self.app = app
        self._routes = api_routes(routes)
        self._authenticate = authenticate
        self._is_ready = is_ready
        self._region = region
        self._account_id = account_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        try:
            found = self._resolve(scope)
            if found is not None:
                if not self._is_ready():
                    raise Unavailable("watchkeep is starting (replaying its WAL); retry soon")
                op, target = found
                header = _header(scope, b"authorization")
                principal = await anyio.to_thread.run_sync(self._authenticate, header)
                state = scope.setdefault("state", {})
                state["principal"] = principal
                state["operation"] = op
                state["resources"] = op.resources(target)
        except WatchkeepError as exc:
            await watchkeep_error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> tuple[Operation, RequestTarget] | None:
        for route in self._routes:
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
                region=self._region,
                account_id=self._account_id,
            )
            return op, target
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def principal_of(request: Any) -> AuthenticatedKey:
    return request.scope["state"]["principal"]  # type: ignore[no-any-return]
