"""The watchkeep audit record (spec audit §2.4): a CloudTrail ``eventVersion`` 1.08 record.

``api_call_record`` turns what the recorder learned about one request into the record,
applying the audit level and redaction on the way; ``service_event_record`` does the same for
things watchkeep does on its own. The trail fills in ``sequenceNumber`` when it appends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audit.levels import Level
from audit.redact import (
    MAX_ADDITIONAL_BYTES,
    MAX_PARAMETERS_BYTES,
    MAX_STRING_BYTES,
    Redactor,
    cap_size,
    not_json_marker,
    truncate_utf8,
)

EVENT_VERSION = "1.08"
API_VERSION = "2025-01-01"
SCHEMA_VERSION = 1
INTERNAL_SOURCE_IP = "watchkeep.internal"

# IAM action prefix -> eventSource.
_SOURCES = {
    "logs": "logs.watchkeep",
    "cloudwatch": "monitoring.watchkeep",
    "cloudtrail": "cloudtrail.watchkeep",
    "iam": "iam.watchkeep",
    "signin": "signin.watchkeep",
}


def event_source(service: str) -> str:
    return _SOURCES.get(service, f"{service}.watchkeep")


@dataclass(frozen=True, slots=True)
class Identity:
    """``userIdentity`` (spec §2.4.1). ``key_status`` goes to the trail's watchkeep block."""

    type: str  # Root | IAMUser | Unknown | AWSService
    principal_id: str | None = None
    arn: str | None = None
    account_id: str | None = None
    access_key_id: str | None = None
    user_name: str | None = None
    invoked_by: str | None = None
    key_status: str | None = None

    @property
    def username(self) -> str | None:
        """The LookupEvents ``Username`` derived from this identity."""
        if self.type == "IAMUser":
            return self.user_name
        if self.type == "Root":
            return "root"
        if self.type == "AWSService":
            return self.invoked_by
        return None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key, value in (
            ("principalId", self.principal_id),
            ("arn", self.arn),
            ("accountId", self.account_id),
            ("accessKeyId", self.access_key_id),
            ("userName", self.user_name),
            ("invokedBy", self.invoked_by),
        ):
            if value is not None:
                out[key] = value
        return out


UNKNOWN = Identity(type="Unknown")


@dataclass(slots=True)
class ApiCall:
    """Everything the recorder learned about one HTTP request."""

    request_id: str
    received_at: datetime
    method: str
    path: str
    source_ip: str
    user_agent: str | None = None
    client_request_id: str | None = None
    event_source: str = "unknown.watchkeep"
    event_name: str = "UnknownOperation"
    event_type: str = "AwsApiCall"
    read_only: bool = False
    management: bool = True
    identity: Identity = UNKNOWN
    authorization: dict[str, Any] = field(default_factory=lambda: {"decision": "NotEvaluated"})
    resources: list[str] = field(default_factory=list)
    http_status: int = 500
    error_code: str | None = None
    error_message: str | None = None
    request_parameters: Any = None
    response_elements: Any = None
    summary: dict[str, Any] | None = None
    request_sensitive: Mapping[str, str] = field(default_factory=dict)  # name -> Treatment
    response_sensitive: Mapping[str, str] = field(default_factory=dict)
    completed_at: datetime | None = None
    # A failed authentication past the flood limit: counted in a summary, not recorded.
    suppressed: bool = False

    @property
    def denied_or_unauthenticated(self) -> bool:
        return self.authorization.get("decision") in ("ExplicitDeny", "ImplicitDeny") or (
            self.identity.type == "Unknown"
        )


@dataclass(frozen=True, slots=True)
class Account:
    region: str
    account_id: str


def api_call_record(call: ApiCall, level: Level, account: Account) -> dict[str, Any]:
    """The record of one API call at ``level`` (which must not be ``NONE``)."""
    completed = call.completed_at or datetime.now(UTC)
    redactor = Redactor()
    parameters = None
    if level >= Level.REQUEST:
        parameters = _redacted(
            redactor, call.request_parameters, "requestParameters", call.request_sensitive
        )
    response = None
    if level >= Level.REQUEST_RESPONSE and not call.read_only and call.error_code is None:
        response = _redacted(
            redactor, call.response_elements, "responseElements", call.response_sensitive
        )
    watchkeep: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "receivedAt": rfc3339_micro(call.received_at),
        "completedAt": rfc3339_micro(completed),
        "httpMethod": call.method,
        "httpStatus": call.http_status,
        "auditLevel": level.label,
        "authorization": call.authorization,
    }
    if call.identity.key_status is not None:
        watchkeep["keyStatus"] = call.identity.key_status
    if call.summary:
        watchkeep["summary"] = call.summary
    if call.client_request_id:
        watchkeep["clientRequestId"] = call.client_request_id[:128]

    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": call.identity.to_record(),
        "eventTime": event_time(completed),
        "eventSource": call.event_source,
        "eventName": call.event_name,
        "awsRegion": account.region,
        "sourceIPAddress": call.source_ip,
        "requestParameters": cap_size(parameters, MAX_PARAMETERS_BYTES),
        "responseElements": cap_size(response, MAX_PARAMETERS_BYTES),
        "requestID": truncate_utf8(call.request_id, MAX_STRING_BYTES),
        "eventID": str(uuid.uuid4()),
        "eventType": call.event_type,
        "managementEvent": call.management,
        "readOnly": call.read_only,
        "recipientAccountId": account.account_id,
        "eventCategory": "Management" if call.management else "Data",
    }
    additional: dict[str, Any] = {}
    if call.event_type == "AwsApiCall":
        record["apiVersion"] = API_VERSION
    elif call.event_type == "AwsConsoleSignIn":
        # Keys are the only factor today: no MFA (spec audit §2.4, sign-in events).
        additional = {"MFAUsed": "No", "LoginTo": "/"}
    if call.user_agent is not None:
        record["userAgent"] = redactor.scrub_text(call.user_agent, "userAgent")
    if call.error_code is not None:
        record["errorCode"] = call.error_code
        record["errorMessage"] = redactor.scrub_text(call.error_message or "", "errorMessage")
    if call.resources:
        record["resources"] = [resource_entry(arn, account.account_id) for arn in call.resources]
    if redactor.paths:
        watchkeep["redactedPaths"] = redactor.paths
    record["additionalEventData"] = {
        **additional,
        "watchkeep": cap_size(watchkeep, MAX_ADDITIONAL_BYTES),
    }
    return record


def _redacted(redactor: Redactor, value: Any, root: str, sensitive: Mapping[str, str]) -> Any:
    """``redactor.redact``, except that a member nested deeper than Python recurses (orjson
    reads bodies of 1,024 levels) is replaced by a marker: the call is still recorded, with
    the rest of its parameters (the alarm or group it names)."""
    before = len(redactor.paths)
    try:
        return redactor.redact(value, root, sensitive)
    except RecursionError:
        del redactor.paths[before:]
    if not isinstance(value, dict):
        redactor.paths.append(root)
        return not_json_marker(value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        before = len(redactor.paths)
        try:
            out.update(redactor.redact({key: item}, root, sensitive))
        except RecursionError:
            del redactor.paths[before:]
            redactor.paths.append(f"{root}.{key}")
            out[key] = not_json_marker(item)
    return out


def service_event_record(
    event_name: str,
    details: dict[str, Any],
    account: Account,
    *,
    invoked_by: str = "cloudtrail.watchkeep",
    event_source_name: str = "cloudtrail.watchkeep",
    at: datetime | None = None,
) -> dict[str, Any]:
    """An ``AwsServiceEvent``: something watchkeep did on its own (start, recovery, ...)."""
    at = at or datetime.now(UTC)
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": Identity(type="AWSService", invoked_by=invoked_by).to_record(),
        "eventTime": event_time(at),
        "eventSource": event_source_name,
        "eventName": event_name,
        "awsRegion": account.region,
        "sourceIPAddress": INTERNAL_SOURCE_IP,
        "requestParameters": None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "readOnly": False,
        "recipientAccountId": account.account_id,
        "eventCategory": "Management",
        "serviceEventDetails": details,
        "additionalEventData": {
            "watchkeep": {"schemaVersion": SCHEMA_VERSION, "receivedAt": rfc3339_micro(at)}
        },
    }


# ---- resources ---------------------------------------------------------------------------

# (marker inside the ARN's resource part, resource type); the name follows the marker.
_RESOURCE_KINDS = (
    (":log-stream:", "Watchkeep::Logs::LogStream"),
    (":log-group:", "Watchkeep::Logs::LogGroup"),
    (":alarm:", "Watchkeep::CloudWatch::Alarm"),
    (":metric-namespace:", "Watchkeep::CloudWatch::MetricNamespace"),
    (":trail/", "Watchkeep::CloudTrail::Trail"),
    (":access-key/", "Watchkeep::IAM::AccessKey"),
    (":user/", "Watchkeep::IAM::User"),
    (":group/", "Watchkeep::IAM::Group"),
    (":policy/", "Watchkeep::IAM::Policy"),
)


def resource_type_and_name(arn: str) -> tuple[str | None, str]:
    """The resource type and the short name LookupEvents matches (spec §3.2)."""
    for marker, kind in _RESOURCE_KINDS:
        at = arn.find(marker)
        if at >= 0:
            return kind, arn[at + len(marker) :]
    return None, arn


def resource_entry(arn: str, account_id: str) -> dict[str, Any]:
    kind, _name = resource_type_and_name(arn)
    return {"ARN": arn, "accountId": account_id, "type": kind}


# ---- time --------------------------------------------------------------------------------


def event_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
