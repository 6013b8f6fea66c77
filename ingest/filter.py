"""FilterLogEvents over the store's ``logs`` relation: SQL and the pagination token. No I/O.

Events come in (timestamp, group, sequence) order, oldest or newest first; the token is the
position of the last event returned, so a page never repeats or skips an event even while new
ones arrive. A filter pattern (spec metrics-and-alarms.md §4.3) becomes one more predicate with
bound parameters. The token carries a digest of the pattern and is refused with any other
pattern: a position is meaningful for any pattern, but a client that changes its pattern mid-way
would silently miss the new pattern's earlier events.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import BadRequest
from ingest.filter_pattern import compile_filter_sql, parse_filter_pattern

MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Position:
    ts_ms: int
    group: str
    seq: int


@dataclass(frozen=True, slots=True)
class FilterRequest:
    streams: tuple[str, ...]
    limit: int
    descending: bool
    after: Position | None
    filter_pattern: str = ""


def filter_request(
    *,
    streams: tuple[str, ...],
    limit: int,
    descending: bool,
    next_token: str | None,
    filter_pattern: str = "",
) -> FilterRequest:
    """Check FilterLogEvents' parameters: the pattern first, then the token issued for it."""
    parse_filter_pattern(filter_pattern)  # FilterPatternError (400) names the column
    after = decode_token(next_token, descending, filter_pattern) if next_token else None
    return FilterRequest(streams, limit, descending, after, filter_pattern)


def _pattern_digest(filter_pattern: str) -> str:
    # Short and opaque: enough to tell patterns apart, without putting 1 KiB into every token.
    if not filter_pattern:
        return ""
    return hashlib.sha256(filter_pattern.encode()).hexdigest()[:16]


def encode_token(position: Position, descending: bool, filter_pattern: str = "") -> str:
    raw = orjson.dumps(
        [position.ts_ms, position.group, position.seq, descending, _pattern_digest(filter_pattern)]
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, descending: bool, filter_pattern: str = "") -> Position:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        ts_ms, group, seq, token_descending, digest = orjson.loads(raw)
        position = Position(int(ts_ms), str(group), int(seq))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest(
            "next_token is not a token this server issued; start again without it"
        ) from None
    if bool(token_descending) != descending:
        raise BadRequest("next_token was issued for the other order; keep the same order")
    if digest != _pattern_digest(filter_pattern):
        raise BadRequest(
            "next_token was issued for another filter_pattern; send the same filter_pattern "
            "with it, or start again without next_token"
        )
    return position


def filter_sql(request: FilterRequest) -> tuple[str, list[Any]]:
    """SQL over ``logs`` returning one page (plus one row, to know whether more follow)."""
    where: list[str] = []
    params: list[Any] = []
    if request.streams:
        where.append(f"log_stream IN ({', '.join('?' for _ in request.streams)})")
        params.extend(request.streams)
    if request.after is not None:
        op = "<" if request.descending else ">"
        after = request.after
        where.append(
            f"(ts_ms {op} ? OR (ts_ms = ? AND (log_group {op} ? "
            f"OR (log_group = ? AND seq {op} ?))))"
        )
        params += [after.ts_ms, after.ts_ms, after.group, after.group, after.seq]
    if request.filter_pattern:
        predicate, predicate_params = compile_filter_sql(request.filter_pattern, "message")
        where.append(f"({predicate})")
        params += predicate_params
    direction = "DESC" if request.descending else "ASC"
    sql = (
        "SELECT log_group, log_stream, ts_ms, ingest_ms, seq, message FROM logs"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY ts_ms {direction}, log_group {direction}, seq {direction} LIMIT ?"
    )
    params.append(request.limit + 1)
    return sql, params


def page(rows: list[dict[str, Any]], request: FilterRequest) -> dict[str, Any]:
    """The response body for rows fetched with ``filter_sql``."""
    more = len(rows) > request.limit
    rows = rows[: request.limit]
    events = [
        {
            "log_group": row["log_group"],
            "log_stream": row["log_stream"],
            "timestamp": row["ts_ms"],
            "ingestion_time": row["ingest_ms"],
            "message": row["message"],
            "event_id": f"{row['log_group']}:{row['seq']}",
        }
        for row in rows
    ]
    token = None
    if more and rows:
        last = rows[-1]
        token = encode_token(
            Position(last["ts_ms"], last["log_group"], last["seq"]),
            request.descending,
            request.filter_pattern,
        )
    return {"events": events, "next_token": token}
