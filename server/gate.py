"""The gate every API request passes: operation, authentication, authorization, audit record.

A pure ASGI middleware. For each request it finds the route's ``Operation`` in the registry,
derives the target resources from the path and query string alone, authenticates the key,
decides with the principal's policies, and only then lets the handler read the body. Whatever
happens (success, denial, failed authentication, handler crash, client gone), it writes exactly
one audit record, durably, *before* the response leaves (spec audit §2.7): the response is
held back until the trail has acknowledged the record. If the trail cannot write, the caller
gets 503 and the server fails closed until it can.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from audit.digests import Digester
from audit.floods import AuthFailureLimiter
from audit.levels import CallFacts, Level, level_for
from audit.record import Account, ApiCall, Identity, api_call_record, event_source
from audit.trail import AuditTrail, AuditUnavailable
from core.errors import AccessDenied, BadRequest, Unauthenticated, Unavailable, WatchkeepError
from core.operations import Operation
from iam.decide import Decision, allows_any, decide, denial_message
from iam.directory import Directory, Principal
from iam.keystore import KeyRing
from iam.matching import RequestContext
from server.errors import internal_failure_response, watchkeep_error_response
from server.gate_target import check_registry as check_registry  # re-exported for server.app
from server.gate_target import (
    gated_routes,
    headers_of,
    request_parameters,
    resolve_operation,
    source_from_path,
)
from server.held import BodyCapture, HeldResponse, with_body

log = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
INCOMPLETE_BODY = (
    "the request body ended early: the client closed the connection or sent broken chunks"
)


class Services:
    """What the gate needs, opened by the app's lifespan after the gate was built."""

    keyring: KeyRing
    directory: Directory
    trail: AuditTrail
    digester: Digester
    level_policy: Sequence[Any]
    auth_failures: AuthFailureLimiter
    ready: bool = False


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        services: Services,
        account: Account,
        trusted_proxies: Sequence[str] = (),
        is_exempt: Callable[[str], bool] = lambda path: path in EXEMPT_PATHS,
        max_body_bytes: int | None = None,
    ) -> None:
        self.app = app
        self._routes = gated_routes(routes)
        self._services = services
        self._account = account
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._is_exempt = is_exempt
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        trail = self._services.trail
        if trail.degraded and not await anyio.to_thread.run_sync(trail.try_recover):
            trail.refused += 1
            await _unavailable_response()(scope, receive, send)
            return
        call = self._start(scope)
        out = HeldResponse(send, call.request_id)
        body = BodyCapture(receive)
        try:
            try:
                await self._admit(scope, call, body)

                async def record_at_stream_start() -> None:
                    await self.record(scope, call, out, body)

                await self.app(scope, body.receive, out.holding(record_at_stream_start))
            except WatchkeepError as exc:
                if isinstance(exc, Unauthenticated):
                    limiter = self._services.auth_failures
                    call.suppressed = not limiter.admit(
                        call.source_ip, call.identity.access_key_id, exc.code
                    )
                if isinstance(exc, Unauthenticated | AccessDenied) and body.limit:
                    await body.drain()
                out.replace(watchkeep_error_response(exc))
                call.error_code, call.error_message = exc.code, exc.message
            except ClientDisconnect:
                # The body ended short: the client hung up mid-body, or its chunked encoding
                # broke. The client's doing, not a server failure; nobody reads the answer.
                incomplete = BadRequest(INCOMPLETE_BODY)
                out.replace(watchkeep_error_response(incomplete))
                call.error_code, call.error_message = incomplete.code, incomplete.message
            except Exception:
                log.exception("unexpected error (request id %s)", call.request_id)
                out.replace(internal_failure_response(call.request_id))
            except anyio.get_cancelled_exc_class():
                call.error_code = "RequestCancelled"
                call.error_message = "the client went away before the response was sent"
                raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish(scope, call, out, body)

    # ---- before the handler --------------------------------------------------------------

    def _start(self, scope: Scope) -> ApiCall:
        headers = headers_of(scope)
        return ApiCall(
            request_id=str(uuid.uuid4()),
            received_at=datetime.now(UTC),
            method=scope["method"],
            path=scope["path"],
            source_ip=self._source_ip(scope, headers),
            user_agent=headers.get("user-agent"),
            client_request_id=headers.get("x-request-id"),
        )

    async def _admit(self, scope: Scope, call: ApiCall, body: BodyCapture) -> Operation | None:
        """Authenticate and authorize; raise the error the caller gets, or return the op."""
        _check_path_encoding(scope)
        found = resolve_operation(self._routes, self._account, scope)
        op = None
        if found is not None:
            op, target = found
            call.event_source = event_source(op.service)
            call.event_name = op.name
            call.event_type = op.event_type
            call.read_only = op.read_only
            call.management = op.management
            call.resources = op.resources(target)
            call.request_parameters = request_parameters(target)
            call.request_sensitive = op.request_sensitive
            call.response_sensitive = op.response_sensitive
            if op.payload_is_data:
                body.limit = 0  # and the handler checks its own size limits
            else:
                body.max_bytes = self._max_body_bytes
        else:
            call.event_source = source_from_path(scope["path"])
        if not self._services.ready:
            raise Unavailable("watchkeep is starting (replaying its WAL); retry soon")
        header = headers_of(scope).get("authorization")
        try:
            keyring = self._services.keyring
            # A key seen before costs no I/O: checking it here saves a thread hop per request.
            key = keyring.authenticate_cached(header)
            if key is None:
                key = await anyio.to_thread.run_sync(keyring.authenticate, header)
        except Unauthenticated as exc:
            call.identity = Identity(
                type="Unknown",
                access_key_id=exc.details.get("access_key_id"),
                key_status=exc.details.get("key_status"),
            )
            raise
        principal = self._services.directory.principal(key)
        call.identity = _identity(principal, self._account.account_id)
        self._services.directory.usage.note(
            key.access_key_id, call.event_name, call.source_ip, int(time.time() * 1000)
        )
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["audit"] = call
        if op is None:
            return None  # the router answers 404 (recorded as UnknownOperation)
        ctx = RequestContext(
            source_ip=call.source_ip,
            current_time=call.received_at,
            secure_transport=scope.get("scheme") == "https",
            username=principal.user_name,
        )

        def authorize(action: str, resources: list[str]) -> None:
            """Decide an action on targets a handler found: resources named in the body, or
            one more action it needs (creating a group on first use)."""
            decision = decide(principal.policies, action, resources, ctx, is_root=principal.is_root)
            first = op.resources_in_handler and action == op.action and not call.resources
            if first:
                call.resources = list(resources)
            if first or decision.decision != "Allow":
                call.authorization = decision.to_audit()
            if decision.decision != "Allow":
                raise AccessDenied(denial_message(principal.arn, action, decision))

        if not op.resources_in_handler:
            decision = decide(
                principal.policies, op.action, call.resources, ctx, is_root=principal.is_root
            )
            call.authorization = decision.to_audit()
            if decision.decision != "Allow":
                raise AccessDenied(denial_message(principal.arn, op.action, decision))
        elif not principal.is_root and not allows_any(principal.policies, op.action, ctx):
            # The targets are named in the body, but no policy allows this action on anything:
            # refuse before the body is read, so that its validation tells this caller nothing.
            decision = Decision("ImplicitDeny", op.action, (), denied_resource="*")
            call.authorization = decision.to_audit()
            raise AccessDenied(denial_message(principal.arn, op.action, decision))
        if target.repeated:
            name = target.repeated[0]
            count = len(target.query_lists[name])
            raise BadRequest(f"the query parameter {name!r} is given {count} times; it takes one")
        state["operation"] = op
        state["resources"] = call.resources
        state["authorize"] = authorize
        return op

    def _source_ip(self, scope: Scope, headers: dict[str, str]) -> str:
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        if not self._proxies or not self._trusted(peer):
            return peer
        forwarded = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        for address in reversed(forwarded):
            if not self._trusted(address):
                return address
        return peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._proxies)

    # ---- after the handler ---------------------------------------------------------------

    async def _finish(
        self, scope: Scope, call: ApiCall, out: HeldResponse, body: BodyCapture
    ) -> None:
        if not out.streaming:
            await self.record(scope, call, out, body)
        await out.release()

    async def record(
        self, scope: Scope, call: ApiCall, out: HeldResponse, body: BodyCapture
    ) -> None:
        """Write the call's record; on failure turn the held response into a 503."""
        op = scope.get("state", {}).get("operation")
        never_authorized = call.authorization.get("decision") == "NotEvaluated"
        if op is not None and op.resources_in_handler and never_authorized and out.status < 400:
            # Fail closed: a handler that forgot to authorize its targets must not succeed.
            log.error("%s answered without authorizing its targets", op.name)
            out.replace(internal_failure_response(call.request_id))
        call.completed_at = datetime.now(UTC)
        call.http_status = out.status
        if call.error_code is None and out.status >= 400:
            call.error_code, call.error_message = out.error()
        if call.request_parameters is not None or body.data:
            call.request_parameters = with_body(call.request_parameters, body)
        if out.status < 400 and not call.read_only:
            call.response_elements = out.json()
        call.summary = scope.get("state", {}).get("audit_summary")
        level = level_for(
            CallFacts(
                event_source=call.event_source,
                event_name=call.event_name,
                read_only=call.read_only,
                management=call.management,
                user_name=call.identity.username,
                denied_or_unauthenticated=call.denied_or_unauthenticated,
            ),
            self._services.level_policy,
        )
        if level is Level.NONE or call.suppressed:
            return
        record = api_call_record(call, level, self._account)
        try:
            await asyncio.wrap_future(self._services.trail.append(record))
        except AuditUnavailable as exc:
            out.replace(watchkeep_error_response(exc))


def _identity(principal: Principal, account_id: str) -> Identity:
    if principal.is_root:
        return Identity(
            type="Root",
            principal_id=account_id,
            arn=principal.arn,
            account_id=account_id,
            access_key_id=principal.access_key_id,
        )
    return Identity(
        type="IAMUser",
        principal_id=principal.user_id,
        arn=principal.arn,
        account_id=account_id,
        access_key_id=principal.access_key_id,
        user_name=principal.user_name,
    )


def _unavailable_response() -> Any:
    return watchkeep_error_response(
        AuditUnavailable(
            "audit trail unavailable: the server refuses requests until it can record them "
            "again; retry later",
            retry_after_s=5,
        )
    )


def _check_path_encoding(scope: Scope) -> None:
    """Refuse a path whose percent-escapes are not UTF-8: the server would read them as U+FFFD
    and act on a name the client never sent (``/alarms/%ff`` created an alarm named "\ufffd")."""
    raw = scope.get("raw_path") or scope["path"].encode()
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(
            "the request path is not valid UTF-8 once its %-escapes are decoded"
        ) from None
