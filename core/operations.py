"""The registry of API operations: what action each route performs, on which resources.

Every route under ``/api`` declares an ``Operation`` with the ``@operation`` decorator. The
server's auth middleware looks the operation up *before* the body is read, derives the resource
ARNs from the path and query string alone, and authorizes; a route without an operation is
refused at start-up, so nothing can be served unauthorized by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_ATTRIBUTE = "__watchkeep_operation__"


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """What is known of a request before its body is read."""

    path_params: Mapping[str, Any]
    query: Mapping[str, str]
    query_lists: Mapping[str, list[str]]
    region: str
    account_id: str
    # The request declares a body (a non-zero Content-Length, or chunked): known from the
    # headers alone, so that an operation can be chosen before the body is read.
    has_body: bool = False
    # Query parameters that take one value but were given more than once (refused: the
    # handler would use one value while the gate authorized and audited them all).
    repeated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # PascalCase API operation, e.g. PutLogEvents (the audit record's eventName)
    action: str  # IAM action, e.g. logs:PutLogEvents
    read_only: bool
    management: bool
    resources: Callable[[RequestTarget], list[str]] = field(default=lambda _target: [])
    # The body is data (log events, datapoints): the audit record summarizes, never copies it.
    payload_is_data: bool = False
    # The targets are known only once the handler has looked (log groups named in the body,
    # or those of a stored query): the handler authorizes them with
    # ``request.state.authorize``, and the gate refuses to send a success never authorized.
    resources_in_handler: bool = False
    # The audit record's eventType: "AwsApiCall", or "AwsConsoleSignIn" for console sign-in.
    event_type: str = "AwsApiCall"
    # Members that must not reach the audit record as sent: "drop" (credentials, such as a
    # new key's secret) or "hide" (replaced by HIDDEN_DUE_TO_SECURITY_REASONS).
    request_sensitive: Mapping[str, str] = field(default_factory=dict)
    response_sensitive: Mapping[str, str] = field(default_factory=dict)
    # When the path alone does not name the operation (a PUT that creates a log group or
    # changes an existing one): the gate calls ``choose(target, app_state)`` before the body is
    # read, and authorizes and records the operation it returns.
    choose: Callable[[RequestTarget, Any], Operation] | None = None

    @property
    def service(self) -> str:
        return self.action.split(":", 1)[0]


F = TypeVar("F", bound=Callable[..., Any])


def operation(op: Operation) -> Callable[[F], F]:
    """Mark a route handler with the operation it performs."""

    def mark(handler: F) -> F:
        setattr(handler, _ATTRIBUTE, op)
        return handler

    return mark


def operation_of(handler: Callable[..., Any]) -> Operation | None:
    return getattr(handler, _ATTRIBUTE, None)


def log_group_arn(target: RequestTarget, group: str) -> str:
    return group_arn(target.region, target.account_id, group)


def group_arn(region: str, account_id: str, group: str) -> str:
    """A log group's ARN, for callers that have no request target (scheduled jobs)."""
    return f"arn:watchkeep:logs:{region}:{account_id}:log-group:{group}"
