"""SQL text for report templates: quoted literals and the fragments every template shares.

``run_audit_query`` takes no bound parameters, so template values reach the SQL as literals made
here and nowhere else: strings single-quoted with quotes doubled (DuckDB standard strings treat
a backslash as a plain character), integers through ``int``. The sandboxed connection could not
reach a file or change the trail even if a literal escaped, but none should. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from core.errors import BadRequest

# Failed authentications (spec audit §7.5).
AUTH_FAILURE_CODES = (
    "MissingAuthenticationTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
)


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal."""
    if "\x00" in value:
        raise BadRequest("a report parameter may not contain a NUL character")
    return "'" + value.replace("'", "''") + "'"


def sql_value(value: str | int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("booleans are not report parameters")
    if isinstance(value, int):
        return str(int(value))
    return sql_string(value)


def sql_list(values: Iterable[str]) -> str:
    """``(v1, v2, …)`` for ``IN``; ``(NULL)`` when empty, which matches nothing."""
    items = [sql_string(v) for v in sorted(set(values))]
    return "(" + ", ".join(items) + ")" if items else "(NULL)"


def sql_relation(columns: Sequence[str], rows: Iterable[Sequence[str | None]]) -> str:
    """A derived table of text columns, for ``FROM``/``JOIN``; empty when there are no rows."""
    names = ", ".join(columns)
    values = ["(" + ", ".join(sql_value(v) for v in row) + ")" for row in rows]
    if not values:
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in columns)
        return f"(SELECT {nulls} WHERE false)"
    return f"(SELECT * FROM (VALUES {', '.join(values)}) AS t({names}))"


def sql_time(at: datetime) -> str:
    return f"TIMESTAMPTZ '{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def _json(path: str) -> str:
    return f"json_extract_string(record_json, '{path}')"


# Shared fragments, available to every template as {name}.
FRAGMENTS: Mapping[str, str] = {
    "actor": (
        "CASE WHEN user_type = 'Root' THEN 'root' "
        "WHEN user_type = 'IAMUser' THEN coalesce(user_name, principal_arn) "
        "WHEN user_type = 'AWSService' THEN coalesce(user_name, 'watchkeep') "
        "ELSE 'unknown' || coalesce(' (key ' || access_key_id || ')', '') END"
    ),
    "principal": (
        "coalesce(principal_arn, CASE WHEN user_type = 'AWSService' THEN user_name END, "
        "'unknown' || coalesce(' (key ' || access_key_id || ')', ''))"
    ),
    "outcome": "CASE WHEN error_code IS NULL THEN 'Success' ELSE error_code END",
    "resources": _json("$.resources[*].ARN"),
    "user_agent": _json("$.userAgent"),
    "error_message": _json("$.errorMessage"),
    "request_parameters": "CAST(json_extract(record_json, '$.requestParameters') AS VARCHAR)",
    "service_details": "CAST(json_extract(record_json, '$.serviceEventDetails') AS VARCHAR)",
    "decision": _json("$.additionalEventData.watchkeep.authorization.decision"),
    "action": _json("$.additionalEventData.watchkeep.authorization.action"),
    "http_status": (
        "CAST(json_extract(record_json, '$.additionalEventData.watchkeep.httpStatus') AS INTEGER)"
    ),
    "auth_codes": sql_list(AUTH_FAILURE_CODES),
}


def bucket_fragments(start: datetime, end: datetime) -> dict[str, str]:
    """``{bucket}``: the time bucket of ``event_time`` as text, sized to the range."""
    span = end - start
    if span <= timedelta(hours=3):
        width, fmt, unit = "INTERVAL 1 MINUTE", "%Y-%m-%d %H:%M", "minute"
    elif span <= timedelta(days=4):
        width, fmt, unit = "INTERVAL 1 HOUR", "%Y-%m-%d %H:00", "hour"
    else:
        width, fmt, unit = "INTERVAL 1 DAY", "%Y-%m-%d", "day"
    # timezone('UTC', …) gives a plain UTC timestamp, so the buckets do not depend on the
    # connection's time zone.
    expr = f"strftime(time_bucket({width}, timezone('UTC', event_time)), '{fmt}')"
    return {"bucket": expr, "bucket_unit": sql_string(unit)}


def fill(sql: str, fragments: Mapping[str, str]) -> str:
    """The SQL with every ``{name}`` replaced; an unknown name is a template bug."""
    try:
        return sql.format_map(fragments)
    except KeyError as exc:
        raise RuntimeError(f"report SQL names no known fragment {exc}") from None


__all__ = [
    "AUTH_FAILURE_CODES",
    "FRAGMENTS",
    "bucket_fragments",
    "fill",
    "sql_list",
    "sql_relation",
    "sql_string",
    "sql_time",
    "sql_value",
]
