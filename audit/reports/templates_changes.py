"""Report templates about what changed and who holds power (spec audit §5): Q3 who-deleted,
Q4 changes-last-24h, Q7 credential-lifecycle, Q8 policy-changes, Q9 audit-trail-access-and-config,
Q12 root-and-admin-activity. Data plus two small ``prepare`` steps; no I/O here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from audit.reports.admins import HISTORY_SQL, admin_set
from audit.reports.model import (
    Chart,
    Param,
    PrepareContext,
    Prepared,
    Section,
    SectionResult,
    Template,
)
from audit.reports.sql import sql_list, sql_relation

# The beginning of the trail, for the history a report needs beyond its range.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DELETES = (
    "event_type <> 'AwsServiceEvent' "
    "AND (event_name LIKE 'Delete%' OR event_name IN ('PutRetentionPolicy', 'ApplyRetention')) "
    "AND ({resource} IS NULL OR list_contains(resource_names, {resource}) "
    "OR json_extract_string(record_json, '$.requestParameters.name') = {resource})"
)

WHO_DELETED = Template(
    name="who-deleted",
    number="Q3",
    title="Who deleted it",
    intent="Who deleted resource X (or anything, without --resource), when, from where, and "
    "whether it worked; retention changes count, since they delete data.",
    params=(
        Param(
            "resource",
            "A resource name or ARN (log group, user, key, policy …); all deletions if omitted.",
        ),
    ),
    sections=(
        Section(
            "by-actor",
            "Deletions by principal and operation",
            f"""SELECT {{actor}} AS actor, {{principal}} AS principal, event_name,
                   count(*) AS calls,
                   count(*) FILTER (WHERE error_code IS NULL) AS succeeded,
                   count(*) FILTER (WHERE error_code IS NOT NULL) AS failed,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_DELETES}
            GROUP BY 1, 2, 3 ORDER BY calls DESC, actor, event_name""",
            chart=Chart("bar", "actor", "calls", "Deletions by principal"),
        ),
        Section(
            "deletions",
            "Every deletion",
            f"""SELECT event_time, event_name, {{actor}} AS actor, principal_arn, user_type,
                   access_key_id, source_ip, {{resources}} AS resources,
                   {{outcome}} AS outcome, {{request_parameters}} AS request_parameters,
                   event_id
            FROM events WHERE {_DELETES} ORDER BY event_time, seq""",
            "Denied and failed attempts are listed too: the outcome column tells.",
        ),
    ),
)

_CHANGES = "NOT read_only AND error_code IS NULL AND event_type = 'AwsApiCall'"

CHANGES = Template(
    name="changes-last-24h",
    number="Q4",
    title="Changes",
    intent="All successful mutating calls in the range (by default the last 24 hours), "
    "grouped by service and operation, with their actors and the calls themselves.",
    notes=(
        "Data-plane writes (PutLogEvents, PutMetricData) are counted in the summary but not "
        "listed one by one.",
    ),
    sections=(
        Section(
            "by-operation",
            "Changes by service and operation",
            f"""SELECT event_source, event_name, event_category AS category, count(*) AS calls,
                   string_agg(DISTINCT {{actor}}, ', ' ORDER BY {{actor}}) AS actors,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_CHANGES}
            GROUP BY 1, 2, 3 ORDER BY calls DESC, event_source, event_name""",
            chart=Chart("bar", "event_name", "calls", "Changes by operation"),
        ),
        Section(
            "changes",
            "Every management change",
            f"""SELECT event_time, event_source, event_name, {{actor}} AS actor, principal_arn,
                   source_ip, {{resources}} AS resources,
                   {{request_parameters}} AS request_parameters
            FROM events WHERE {_CHANGES} AND event_category = 'Management'
            ORDER BY event_time, seq""",
        ),
    ),
)

_LIFECYCLE_EVENTS = (
    "('CreateUser', 'DeleteUser', 'CreateAccessKey', 'UpdateAccessKey', 'DeleteAccessKey', "
    "'CreateLoginProfile', 'UpdateLoginProfile', 'DeleteLoginProfile')"
)


def _credential_context(ctx: PrepareContext) -> Prepared:
    days = int(ctx.params["key_age_days"])
    cutoff_ms = int((ctx.now - timedelta(days=days)).timestamp() * 1000)
    owners = [(str(k["access_key_id"]), str(k["user_name"])) for k in ctx.iam.access_keys]
    old = []
    for key in sorted(ctx.iam.access_keys, key=lambda k: int(k["created_ms"])):
        if key["status"] != "Active" or int(key["created_ms"]) > cutoff_ms:
            continue
        used = key.get("last_used") or {}
        old.append(
            [
                key["access_key_id"],
                key["user_name"],
                _iso_ms(int(key["created_ms"])),
                (int(ctx.now.timestamp() * 1000) - int(key["created_ms"])) // 86_400_000,
                _iso_ms(used["time_ms"]) if used.get("time_ms") else None,
                used.get("operation"),
            ]
        )
    section = SectionResult(
        "old-active-keys",
        f"Active keys older than {days} days (IAM state now)",
        "From the IAM directory at generation time, not from the trail.",
        ["access_key_id", "user_name", "created", "age_days", "last_used", "last_operation"],
        old,
    )
    return Prepared(
        fragments={"key_owners": sql_relation(("key_id", "owner"), owners)}, sections=[section]
    )


CREDENTIAL_LIFECYCLE = Template(
    name="credential-lifecycle",
    number="Q7",
    title="Users and access keys: created, changed, deleted",
    intent="API keys and users created, deactivated or deleted, and who did it; keys older "
    "than N days still active.",
    params=(
        Param(
            "key_age_days", "Flag active keys older than this.", "int", 90, minimum=0, maximum=3650
        ),
    ),
    notes=(
        "watchkeep has no login profiles (the console signs in with access keys), so "
        "CreateLoginProfile, UpdateLoginProfile and DeleteLoginProfile never occur.",
    ),
    prepare=_credential_context,
    sections=(
        Section(
            "by-operation",
            "Changes by operation",
            f"""SELECT event_name, count(*) AS calls,
                   count(*) FILTER (WHERE error_code IS NULL) AS succeeded
            FROM events WHERE event_source = 'iam.watchkeep' AND event_name IN {_LIFECYCLE_EVENTS}
            GROUP BY 1 ORDER BY calls DESC, event_name""",
            chart=Chart("bar", "event_name", "calls", "Credential changes by operation"),
        ),
        Section(
            "changes",
            "Every change to users and keys",
            f"""WITH owners AS (
                SELECT json_extract_string(record_json, '$.responseElements.access_key_id')
                           AS key_id,
                       json_extract_string(record_json, '$.requestParameters.name') AS owner
                FROM events WHERE event_name = 'CreateAccessKey' AND error_code IS NULL
                UNION ALL SELECT key_id, owner FROM {{key_owners}}),
            changes AS (
                SELECT seq, event_time, event_name, {{actor}} AS actor,
                       principal_arn AS actor_arn, source_ip, {{outcome}} AS outcome,
                       json_extract_string(record_json, '$.requestParameters.name') AS named,
                       coalesce(
                           json_extract_string(record_json, '$.responseElements.access_key_id'),
                           json_extract_string(record_json, '$.requestParameters.key_id'))
                           AS access_key_id,
                       json_extract_string(record_json, '$.requestParameters.status')
                           AS new_status
                FROM events
                WHERE event_source = 'iam.watchkeep' AND event_name IN {_LIFECYCLE_EVENTS})
            SELECT c.event_time, c.event_name,
                   coalesce(c.named, (SELECT any_value(o.owner) FROM owners o
                                      WHERE o.key_id = c.access_key_id)) AS user_name,
                   c.access_key_id, c.new_status, c.actor, c.actor_arn, c.source_ip, c.outcome
            FROM changes c ORDER BY c.seq""",
            "A new key's secret is never in the trail; its ID is (responseElements).",
        ),
    ),
)

_POLICY_EVENTS = (
    "('CreatePolicy', 'DeletePolicy', 'PutUserPolicy', 'DeleteUserPolicy', 'AttachUserPolicy', "
    "'DetachUserPolicy', 'AttachGroupPolicy', 'DetachGroupPolicy', 'PutGroupPolicy', "
    "'AddUserToGroup', 'RemoveUserFromGroup', 'PutGuardrailPolicy')"
)


def _admin_context(ctx: PrepareContext) -> Prepared:
    history = ctx.query(HISTORY_SQL, _EPOCH, ctx.end)
    admins = admin_set(ctx.iam, [dict(zip(history.columns, r, strict=True)) for r in history.rows])
    section = SectionResult(
        "admin-principals",
        "Admin principals",
        "Users whose policies grant *, *:* or iam:*, now or at any time in the trail; the root "
        "key always counts.",
        ["principal", "user_name", "why"],
        admins.rows(),
    )
    return Prepared(
        fragments={
            "admin_arns": sql_list(admins.arns()),
            "admin_policies": sql_list(admins.policies),
        },
        sections=[section],
        notes=[
            "The admin set ignores Resource and Condition and keeps anyone ever attached to an "
            "admin policy, so it may list more principals than could act as admins.",
        ],
    )


POLICY_CHANGES = Template(
    name="policy-changes",
    number="Q8",
    title="Permission changes",
    intent="Policies created, replaced, deleted, attached or detached, and group membership "
    "changes, with the policy document: the privilege escalation review.",
    notes=(
        "watchkeep has managed policies only: inline policies (PutUserPolicy, DeleteUserPolicy, "
        "PutGroupPolicy) and guardrail policies (PutGuardrailPolicy) do not exist yet and never "
        "appear.",
    ),
    prepare=_admin_context,
    sections=(
        Section(
            "by-operation",
            "Changes by operation",
            f"""SELECT event_name, count(*) AS calls,
                   count(*) FILTER (WHERE error_code IS NULL) AS succeeded
            FROM events WHERE event_source = 'iam.watchkeep' AND event_name IN {_POLICY_EVENTS}
            GROUP BY 1 ORDER BY calls DESC, event_name""",
            chart=Chart("bar", "event_name", "calls", "Permission changes by operation"),
        ),
        Section(
            "changes",
            "Every permission change",
            f"""WITH changes AS (
                SELECT seq, event_time, event_name, {{actor}} AS actor,
                       principal_arn AS actor_arn, source_ip, {{outcome}} AS outcome,
                       {{http_status}} AS status,
                       json_extract_string(record_json, '$.requestParameters.name') AS name,
                       json_extract_string(record_json, '$.requestParameters.policy') AS attached,
                       json_extract_string(record_json, '$.requestParameters.user') AS member,
                       CAST(coalesce(json_extract(record_json, '$.responseElements.document'),
                                     json_extract(record_json, '$.requestParameters'))
                            AS VARCHAR) AS body
                FROM events
                WHERE event_source = 'iam.watchkeep' AND event_name IN {_POLICY_EVENTS})
            SELECT event_time, event_name,
                   CASE WHEN event_name <> 'CreatePolicy' THEN NULL
                        WHEN status = 201 THEN 'created' WHEN status = 200 THEN 'replaced'
                   END AS change,
                   CASE WHEN event_name IN ('CreatePolicy', 'DeletePolicy') THEN name
                        ELSE attached END AS policy,
                   CASE WHEN event_name LIKE '%UserPolicy' THEN 'user/' || name
                        WHEN event_name LIKE '%GroupPolicy' THEN 'group/' || name
                        WHEN event_name LIKE '%Group' THEN 'user/' || member || ' in group/' || name
                   END AS target,
                   CASE WHEN event_name = 'CreatePolicy' THEN body END AS document,
                   CASE WHEN (CASE WHEN event_name IN ('CreatePolicy', 'DeletePolicy') THEN name
                                   ELSE attached END) IN {{admin_policies}}
                        THEN 'admin policy' END AS flag,
                   actor, actor_arn, source_ip, outcome
            FROM changes ORDER BY seq""",
            "CreatePolicy both creates and replaces (PUT); flag marks policies granting *, *:* "
            "or iam:*.",
        ),
    ),
)

AUDIT_TRAIL_ACCESS = Template(
    name="audit-trail-access-and-config",
    number="Q9",
    title="Access to the audit trail, and its configuration",
    intent="Who read the trail (lookups, queries, reports, status), every change to audit "
    "settings, start and stop, integrity failures and audit outages (PCI DSS 10.2.1.3, "
    "10.2.1.6).",
    notes=(
        "No API changes audit settings yet (UpdateTrail, key rotation): the audit policy, "
        "retention and signing key come from the configuration at start, which the "
        "ServerStarted record shows. There is no StopLogging: the trail cannot be paused.",
    ),
    sections=(
        Section(
            "reads-by-principal",
            "Trail access by principal",
            """SELECT {actor} AS actor, {principal} AS principal, event_name, count(*) AS calls,
                   count(*) FILTER (WHERE error_code IS NOT NULL) AS failed,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE event_source = 'cloudtrail.watchkeep' AND event_type = 'AwsApiCall'
            GROUP BY 1, 2, 3 ORDER BY calls DESC, actor, event_name""",
            chart=Chart("bar", "actor", "calls", "Trail access by principal"),
        ),
        Section(
            "trail-calls",
            "Every call to the audit API",
            """SELECT event_time, event_name, {actor} AS actor, principal_arn, source_ip,
                   {outcome} AS outcome, {request_parameters} AS request_parameters
            FROM events WHERE event_source = 'cloudtrail.watchkeep' AND event_type = 'AwsApiCall'
            ORDER BY event_time, seq""",
            "Query SQL and report parameters are kept: they show what someone looked for.",
        ),
        Section(
            "service-events",
            "Start, stop, integrity and delivery events",
            """SELECT event_time, event_name, user_name AS invoked_by,
                   {service_details} AS details
            FROM events
            WHERE event_type = 'AwsServiceEvent' AND event_name <> 'AuthFailureSummary'
            ORDER BY event_time, seq""",
            "ServerStarted/ServerStopped, AuditIntegrityFailure, AuditDeliveryFailure, "
            "AuditWalRecovered, AuditAnchorFailure and any other service event.",
        ),
    ),
)

_POWERFUL = (
    "event_type <> 'AwsServiceEvent' AND (user_type = 'Root' OR principal_arn IN {admin_arns})"
)

ROOT_AND_ADMIN = Template(
    name="root-and-admin-activity",
    number="Q12",
    title="Root and admin activity",
    intent="Everything done with the root key or by principals whose policies grant *:* or "
    "iam:* (PCI DSS 10.2.1.2).",
    prepare=_admin_context,
    sections=(
        Section(
            "by-principal",
            "Activity by principal",
            f"""SELECT {{actor}} AS actor, {{principal}} AS principal, user_type,
                   count(*) AS calls, count(*) FILTER (WHERE NOT read_only) AS writes,
                   count(*) FILTER (WHERE error_code IS NOT NULL) AS errors,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_POWERFUL}
            GROUP BY 1, 2, 3 ORDER BY calls DESC, actor""",
            chart=Chart("bar", "actor", "calls", "Calls by root and admins"),
        ),
        Section(
            "calls",
            "Every call",
            f"""SELECT event_time, {{actor}} AS actor, user_type, access_key_id, event_source,
                   event_name, read_only, {{resources}} AS resources, source_ip,
                   {{outcome}} AS outcome
            FROM events WHERE {_POWERFUL} ORDER BY event_time, seq""",
        ),
    ),
)


def _iso_ms(millis: Any) -> str:
    return datetime.fromtimestamp(int(millis) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "AUDIT_TRAIL_ACCESS",
    "CHANGES",
    "CREDENTIAL_LIFECYCLE",
    "POLICY_CHANGES",
    "ROOT_AND_ADMIN",
    "WHO_DELETED",
]
