"""FilterLogEvents over the store's ``logs`` relation: SQL and the pagination token. No I/O.

Events come in (timestamp, group, sequence) order, oldest or newest first; the token is the
position of the last event returned, so a page never repeats or skips an event even while new
ones arrive.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import BadRequest

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


def encode_token(position: Position, descending: bool) -> str:
    raw = orjson.dumps([position.ts_ms, position.group, position.seq, descending])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, descending: bool) -> Position:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        ts_ms, group, seq, token_descending = orjson.loads(raw)
        position = Position(int(ts_ms), str(group), int(seq))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest(
            "next_token is not a token this server issued; start again without it"
        ) from None
    if bool(token_descending) != descending:
        raise BadRequest("next_token was issued for the other order; keep the same order")
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
            Position(last["ts_ms"], last["log_group"], last["seq"]), request.descending
        )
    return {"events": events, "next_token": token}
