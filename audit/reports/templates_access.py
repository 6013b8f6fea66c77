"""Report templates about who got in, who was kept out, and from where (spec audit §5):
Q1 top-error-principals, Q2 console-logins, Q5 access-denied, Q6 auth-failures-by-source,
Q10 access-key-activity, Q11 new-source-ips. Data only: SQL over ``events``; no I/O here.
"""

from __future__ import annotations

from datetime import timedelta

from audit.reports.model import Chart, Param, PrepareContext, Prepared, Section, Template
from audit.reports.sql import sql_time

_ERRORS = "error_code IS NOT NULL"
_DENIED = "(error_code LIKE 'AccessDenied%' OR error_code LIKE '%Unauthorized%')"
_AUTH_FAILED = "user_type = 'Unknown' AND error_code IN {auth_codes}"
_MFA = "coalesce(json_extract_string(record_json, '$.additionalEventData.MFAUsed'), 'No')"

TOP_ERROR_PRINCIPALS = Template(
    name="top-error-principals",
    number="Q1",
    title="Principals causing the most errors",
    intent="Which principals cause the most errors, and which errors, in the period.",
    params=(Param("top", "How many principals to list.", "int", 20, minimum=1, maximum=1000),),
    sections=(
        Section(
            "by-principal",
            "Errors by principal",
            f"""SELECT {{principal}} AS principal, any_value({{actor}}) AS actor,
                   count(*) AS errors,
                   string_agg(DISTINCT error_code, ', ' ORDER BY error_code) AS error_codes,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_ERRORS}
            GROUP BY 1 ORDER BY errors DESC, principal LIMIT {{top}}""",
            "Every record with an errorCode, counted by userIdentity.arn (or the presented key "
            "for unauthenticated callers).",
            Chart("bar", "actor", "errors", "Errors by principal"),
        ),
        Section(
            "by-principal-and-error",
            "Errors by principal and error code",
            f"""WITH top AS (
                SELECT {{principal}} AS principal FROM events WHERE {_ERRORS}
                GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {{top}})
            SELECT {{principal}} AS principal, error_code, count(*) AS errors,
                   arg_min({{error_message}}, seq) AS sample_message,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_ERRORS} AND {{principal}} IN (SELECT principal FROM top)
            GROUP BY 1, 2 ORDER BY errors DESC, principal, error_code""",
            "The first errorMessage of each pair is shown as a sample.",
        ),
    ),
)

CONSOLE_LOGINS = Template(
    name="console-logins",
    number="Q2",
    title="Console sign-ins",
    intent="Every console sign-in, successful or not, with MFA use, source IP and client; "
    "failures first, sign-ins without MFA flagged.",
    notes=(
        "The watchkeep console signs in with an access key and has no MFA yet, so "
        'additionalEventData.MFAUsed is always "No" and every successful sign-in is flagged.',
    ),
    sections=(
        Section(
            "by-outcome",
            "Sign-ins by outcome",
            f"""SELECT CASE WHEN error_code IS NULL THEN 'Success' ELSE 'Failure' END AS outcome,
                   {_MFA} AS mfa_used, count(*) AS sign_ins,
                   count(DISTINCT source_ip) AS source_ips
            FROM events WHERE event_source = 'signin.watchkeep' AND event_name = 'ConsoleLogin'
            GROUP BY 1, 2 ORDER BY 1, 2""",
            chart=Chart("bar", "outcome", "sign_ins", "Sign-ins by outcome"),
        ),
        Section(
            "sign-ins",
            "Sign-ins (failures first)",
            f"""SELECT event_time,
                   CASE WHEN error_code IS NULL THEN 'Success' ELSE 'Failure' END AS outcome,
                   coalesce(user_name, json_extract_string(record_json,
                            '$.userIdentity.userName'), 'unknown') AS user_name,
                   principal_arn, access_key_id, source_ip, {{user_agent}} AS user_agent,
                   {_MFA} AS mfa_used,
                   CASE WHEN error_code IS NULL AND {_MFA} <> 'Yes'
                        THEN 'sign-in without MFA' END AS flag,
                   error_code, {{error_message}} AS error_message
            FROM events WHERE event_source = 'signin.watchkeep' AND event_name = 'ConsoleLogin'
            ORDER BY error_code IS NULL, event_time, seq""",
        ),
    ),
)

ACCESS_DENIED = Template(
    name="access-denied",
    number="Q5",
    title="Access denied",
    intent="Every authorization failure: who tried which action on which resource, explicit "
    "or implicit deny, counted per principal and action.",
    sections=(
        Section(
            "by-principal-and-action",
            "Denials by principal and action",
            f"""SELECT {{actor}} AS actor, {{principal}} AS principal, {{action}} AS action,
                   {{decision}} AS decision, count(*) AS denials,
                   string_agg(DISTINCT source_ip, ', ' ORDER BY source_ip) AS source_ips,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_DENIED}
            GROUP BY 1, 2, 3, 4 ORDER BY denials DESC, principal, action""",
            chart=Chart("bar", "action", "denials", "Denials by action"),
        ),
        Section(
            "denials",
            "Every denial",
            f"""SELECT event_time, {{actor}} AS actor, principal_arn, access_key_id,
                   {{action}} AS action, {{decision}} AS decision,
                   json_extract_string(record_json,
                       '$.additionalEventData.watchkeep.authorization.resources[*]') AS resources,
                   json_extract_string(record_json,
                       '$.additionalEventData.watchkeep.authorization.matchedPolicy')
                       AS matched_policy,
                   json_extract_string(record_json,
                       '$.additionalEventData.watchkeep.authorization.matchedSid') AS matched_sid,
                   source_ip, event_name, error_code
            FROM events WHERE {_DENIED} ORDER BY event_time, seq""",
            "matchedPolicy and matchedSid name the statement of an explicit deny; they are in "
            "the trail only, never in the caller's error.",
        ),
    ),
)

AUTH_FAILURES_BY_SOURCE = Template(
    name="auth-failures-by-source",
    number="Q6",
    title="Failed authentications by source",
    intent="Failed authentications (unknown key, bad signature, inactive key, no credentials) "
    "by source IP and presented key ID; bursts above a threshold per minute are flagged.",
    params=(
        Param(
            "threshold_per_minute",
            "Flag a source with more failures than this in one minute.",
            "int",
            10,
            minimum=1,
            maximum=100_000,
        ),
    ),
    sections=(
        Section(
            "by-source",
            "Failures by source IP and presented key",
            f"""SELECT source_ip,
                   coalesce(access_key_id, '(none or malformed)') AS presented_key_id,
                   count(*) AS failures,
                   string_agg(DISTINCT error_code, ', ' ORDER BY error_code) AS error_codes,
                   string_agg(DISTINCT {{user_agent}}, ' | ' ORDER BY {{user_agent}})
                       AS user_agents,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_AUTH_FAILED}
            GROUP BY 1, 2 ORDER BY failures DESC, source_ip, presented_key_id""",
            "The secret presented is never recorded; a key ID only when well-formed.",
            Chart("bar", "source_ip", "failures", "Failures by source IP"),
        ),
        Section(
            "bursts",
            "Bursts above the threshold (possible brute force)",
            f"""SELECT source_ip,
                   strftime(time_bucket(INTERVAL 1 MINUTE, timezone('UTC', event_time)),
                            '%Y-%m-%d %H:%M') AS minute,
                   count(*) AS failures,
                   string_agg(DISTINCT coalesce(access_key_id, '-'), ', ') AS key_ids,
                   'possible brute force' AS flag
            FROM events WHERE {_AUTH_FAILED}
            GROUP BY 1, 2 HAVING count(*) > {{threshold_per_minute}} ORDER BY minute, source_ip""",
        ),
        Section(
            "flood-summaries",
            "Flood summaries (failures past the per-minute recording limit)",
            """SELECT event_time,
                   json_extract_string(record_json, '$.serviceEventDetails.sourceIPAddress')
                       AS source_ip,
                   CAST(json_extract(record_json, '$.serviceEventDetails.suppressedCount')
                        AS BIGINT) AS summarized_failures,
                   CAST(json_extract(record_json, '$.serviceEventDetails.recordedCount')
                        AS BIGINT) AS recorded_failures,
                   json_extract_string(record_json, '$.serviceEventDetails.accessKeyIds[*]')
                       AS key_ids,
                   json_extract_string(record_json, '$.serviceEventDetails.errorCodes[*]')
                       AS error_codes,
                   'flood: recording limit reached' AS flag
            FROM events WHERE event_type = 'AwsServiceEvent' AND event_name = 'AuthFailureSummary'
            ORDER BY seq""",
            "AuthFailureSummary service events (spec audit §2.7.5).",
        ),
        Section(
            "over-time",
            "Failures over time",
            f"""SELECT {{bucket}} AS bucket, count(*) AS failures
            FROM events WHERE {_AUTH_FAILED} GROUP BY 1 ORDER BY 1""",
            chart=Chart("columns", "bucket", "failures", "Failed authentications over time"),
        ),
    ),
)

_KEY = "access_key_id = {access_key}"

ACCESS_KEY_ACTIVITY = Template(
    name="access-key-activity",
    number="Q10",
    title="Activity of one access key",
    intent="Incident response for a leaked key: everything key K did, in time order, with its "
    "source IPs and user agents and first/last seen.",
    params=(
        Param(
            "access_key",
            "The access key ID (WKIA… or the root key's ID).",
            required=True,
            pattern=r"[A-Z0-9]{16,32}",
        ),
    ),
    sections=(
        Section(
            "summary",
            "Summary",
            f"""SELECT {{access_key}} AS access_key_id,
                   string_agg(DISTINCT {{principal}}, ', ') AS principals,
                   count(*) AS calls, count(*) FILTER (WHERE error_code IS NOT NULL) AS errors,
                   count(DISTINCT source_ip) AS source_ips,
                   count(DISTINCT {{user_agent}}) AS user_agents,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_KEY}""",
            "Calls signed with the key, and failed attempts that presented it.",
        ),
        Section(
            "source-ips",
            "Source IPs",
            f"""SELECT source_ip, count(*) AS calls,
                   count(*) FILTER (WHERE error_code IS NOT NULL) AS errors,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_KEY} GROUP BY 1 ORDER BY first_seen, source_ip""",
            chart=Chart("bar", "source_ip", "calls", "Calls by source IP"),
        ),
        Section(
            "user-agents",
            "User agents",
            f"""SELECT coalesce({{user_agent}}, '(none)') AS user_agent, count(*) AS calls,
                   min(event_time) AS first_seen, max(event_time) AS last_seen
            FROM events WHERE {_KEY} GROUP BY 1 ORDER BY first_seen, user_agent""",
        ),
        Section(
            "over-time",
            "Calls over time",
            f"""SELECT {{bucket}} AS bucket, count(*) AS calls
            FROM events WHERE {_KEY} GROUP BY 1 ORDER BY 1""",
            chart=Chart("columns", "bucket", "calls", "Calls with the key over time"),
        ),
        Section(
            "key-changes",
            "Changes to the key",
            """SELECT event_time, event_name, {actor} AS actor, source_ip, {outcome} AS outcome,
                   {request_parameters} AS request_parameters
            FROM events
            WHERE event_source = 'iam.watchkeep'
              AND (json_extract_string(record_json, '$.requestParameters.key_id') = {access_key}
                   OR json_extract_string(record_json, '$.responseElements.access_key_id')
                      = {access_key})
            ORDER BY seq""",
            "Creation, deactivation and deletion of the key, by whoever did them.",
        ),
        Section(
            "timeline",
            "Every call, in order",
            f"""SELECT seq, event_time, event_source, event_name, read_only, source_ip,
                   {{user_agent}} AS user_agent, {{outcome}} AS outcome,
                   {{resources}} AS resources
            FROM events WHERE {_KEY} ORDER BY seq""",
        ),
    ),
)


def _baseline_notes(ctx: PrepareContext) -> Prepared:
    days = int(ctx.params["baseline_days"])
    baseline_start = ctx.start - timedelta(days=days)
    result = ctx.query(
        "SELECT min(event_time) AS first, count(*) AS records FROM events",
        baseline_start,
        ctx.start,
    )
    first, records = result.rows[0] if result.rows else (None, 0)
    notes = [
        f"Baseline: {days} days before the range ({baseline_start:%Y-%m-%dT%H:%M:%SZ} to "
        f"{ctx.start:%Y-%m-%dT%H:%M:%SZ}), {records} records."
    ]
    if not records:
        notes.append("The trail holds no record in the baseline, so every pair counts as new.")
    elif first is not None and first > f"{baseline_start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}":
        notes.append(
            f"The trail starts at {first}, after the baseline's start: IPs used before that "
            "cannot be seen, so more pairs may look new than are."
        )
    return Prepared(fragments={"baseline_start": sql_time(baseline_start)}, notes=notes)


NEW_SOURCE_IPS = Template(
    name="new-source-ips",
    number="Q11",
    title="Principals acting from new source IPs",
    intent="Principals acting from an IP they had not used in the baseline days before the range.",
    params=(
        Param(
            "baseline_days",
            "Days before the range that count as known.",
            "int",
            30,
            minimum=1,
            maximum=400,
        ),
    ),
    prepare=_baseline_notes,
    sections=(
        Section(
            "new-pairs",
            "New (principal, source IP) pairs",
            """WITH windowed AS (
                SELECT principal_arn, source_ip, any_value({actor}) AS actor,
                       min(event_time) AS first_seen, max(event_time) AS last_seen,
                       count(*) AS calls,
                       string_agg(DISTINCT event_name, ', ' ORDER BY event_name) AS event_names
                FROM events
                WHERE event_time >= {start} AND principal_arn IS NOT NULL
                  AND source_ip <> 'watchkeep.internal'
                GROUP BY 1, 2),
            known AS (
                SELECT DISTINCT principal_arn, source_ip FROM events
                WHERE event_time < {start} AND principal_arn IS NOT NULL)
            SELECT w.principal_arn AS principal, w.actor, w.source_ip, w.first_seen,
                   w.last_seen, w.calls, w.event_names
            FROM windowed w
            ANTI JOIN known k ON w.principal_arn = k.principal_arn AND w.source_ip = k.source_ip
            ORDER BY w.first_seen, principal, w.source_ip""",
            "Only authenticated principals; internal service events are left out.",
            Chart("bar", "source_ip", "calls", "Calls from new source IPs"),
            baseline=True,
        ),
    ),
)

__all__ = [
    "ACCESS_DENIED",
    "ACCESS_KEY_ACTIVITY",
    "AUTH_FAILURES_BY_SOURCE",
    "CONSOLE_LOGINS",
    "NEW_SOURCE_IPS",
    "TOP_ERROR_PRINCIPALS",
]
