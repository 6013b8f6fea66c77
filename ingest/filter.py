"""FilterLogEvents over the store's ``logs`` relation: SQL and the pagination token. No I/O.

Events come in (timestamp, group, sequence) order, oldest or newest first; the token is the
position of the last event returned, so a page never repeats or skips an event even while new
ones arrive. A filter pattern (spec metrics-and-alarms.md §4.3) becomes one more predicate with
bound parameters. The token carries a digest of the pattern and is refused with any other
pattern: a position is meaningful for any pattern, but a client that changes its pattern mid-way
would silently miss the new pattern's earlier events.

``order=ingest`` lists events in the order they were ingested instead: by group, then by the
group's ingestion sequence (``seq``, which the store assigns in WAL order and makes visible in
that order). Its token is a cursor, the last sequence number seen in each group, and every
answer also carries a ``follow_token``: polling with it returns exactly the events ingested
since, whatever their timestamps (late and backfilled events included), without repeats. That
is what ``watchkeep tail -f`` follows. Once the events in range are exhausted the follow token
moves to the groups' high-water mark, taken before the page: events outside the time range or
the pattern that were already there are never returned by a later poll with another range.
A deleted and re-created group starts its sequence again, so the cursor names each group's
incarnation (its catalog id, never reused) with its number: a number seen in an older
incarnation of the group means nothing for the new one, which is read from its beginning
(``bind_cursor``). Tokens issued while the incarnation was the creation time name no current
id, so their groups are read again from the beginning: events may repeat once, none is skipped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from core.errors import BadRequest
from ingest.filter_pattern import compile_filter_sql, parse_filter_pattern

MAX_LIMIT = 10_000
ORDERS = ("asc", "desc", "ingest")
_INGEST = "ingest"


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
    # order=ingest: the last sequence number seen in each group read (0: none yet), and the
    # id of the incarnation of the group it was seen in, where known.
    ingest_order: bool = False
    cursor: Mapping[str, int] = field(default_factory=dict)
    incarnations: Mapping[str, int] = field(default_factory=dict)
    # order=ingest: the request's own time range, None when it has none (the ``logs``
    # relation applies it; without one it holds all of time, as a cursor cannot prune by it).
    range_ms: tuple[int, int] | None = None

    @property
    def narrowed(self) -> bool:
        """Whether some events of the groups may be left out (range, streams or pattern)."""
        return bool(self.range_ms or self.streams or self.filter_pattern)


def filter_request(
    *,
    groups: tuple[str, ...],
    streams: tuple[str, ...],
    limit: int,
    order: str,
    next_token: str | None,
    filter_pattern: str = "",
    range_ms: tuple[int, int] | None = None,
) -> FilterRequest:
    """Check FilterLogEvents' parameters: the pattern first, then the token issued for it."""
    parse_filter_pattern(filter_pattern)  # FilterPatternError (400) names the column
    if order == _INGEST:
        seen, incarnations = decode_cursor(next_token, filter_pattern) if next_token else ({}, {})
        # Every group has a place in the cursor (0: nothing seen): a group added since the
        # token was issued starts from its beginning, one dropped leaves the token.
        cursor = {group: seen.get(group, 0) for group in groups}
        return FilterRequest(
            streams,
            limit,
            False,
            None,
            filter_pattern,
            ingest_order=True,
            cursor=cursor,
            incarnations={g: incarnations[g] for g in cursor if g in incarnations},
            range_ms=range_ms,
        )
    descending = order == "desc"
    after = decode_token(next_token, descending, filter_pattern) if next_token else None
    return FilterRequest(streams, limit, descending, after, filter_pattern)


def _pattern_digest(filter_pattern: str) -> str:
    # Short and opaque: enough to tell patterns apart, without putting 1 KiB into every token.
    if not filter_pattern:
        return ""
    return hashlib.sha256(filter_pattern.encode()).hexdigest()[:16]


def _encode(value: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _decode(token: str) -> Any:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return orjson.loads(raw)


_NOT_OURS = "next_token is not a token this server issued; start again without it"
_OTHER_PATTERN = (
    "next_token was issued for another filter_pattern; send the same filter_pattern "
    "with it, or start again without next_token"
)


def encode_token(position: Position, descending: bool, filter_pattern: str = "") -> str:
    return _encode(
        [position.ts_ms, position.group, position.seq, descending, _pattern_digest(filter_pattern)]
    )


def decode_token(token: str, descending: bool, filter_pattern: str = "") -> Position:
    try:
        value = _decode(token)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest(_NOT_OURS) from None
    if isinstance(value, list) and value[:1] == [_INGEST]:
        raise BadRequest(
            "next_token was issued for order=ingest; send it with order=ingest",
            details={"order": "desc" if descending else "asc"},
        )
    try:
        ts_ms, group, seq, token_descending, digest = value
        position = Position(int(ts_ms), str(group), int(seq))
    except (ValueError, TypeError):
        raise BadRequest(_NOT_OURS) from None
    if bool(token_descending) != descending:
        raise BadRequest("next_token was issued for the other order; keep the same order")
    if digest != _pattern_digest(filter_pattern):
        raise BadRequest(_OTHER_PATTERN)
    return position


def encode_cursor(
    cursor: Mapping[str, int],
    filter_pattern: str = "",
    incarnations: Mapping[str, int] | None = None,
) -> str:
    """An order=ingest token: the last sequence number seen in each group, with the id of the
    group's incarnation it was seen in (``[group, seq, incarnation]``)."""
    known = incarnations or {}
    entries = [
        [group, seq, known[group]] if group in known else [group, seq]
        for group, seq in sorted(cursor.items())
    ]
    return _encode([_INGEST, entries, _pattern_digest(filter_pattern)])


def decode_cursor(token: str, filter_pattern: str = "") -> tuple[dict[str, int], dict[str, int]]:
    """The cursor and the incarnations of an order=ingest token. A token issued before
    incarnations were recorded has ``[group, seq]`` entries: its numbers are taken as they
    are (as they were before), rather than shown again from the beginning."""
    try:
        value = _decode(token)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest(_NOT_OURS) from None
    if not (isinstance(value, list) and value[:1] == [_INGEST]):
        raise BadRequest(
            "next_token was issued for order=asc or order=desc; keep that order, "
            "or start again without next_token",
            details={"order": _INGEST},
        )
    cursor: dict[str, int] = {}
    incarnations: dict[str, int] = {}
    try:
        _, entries, digest = value
        for group, seq, *created in entries:
            cursor[str(group)] = int(seq)
            if len(created) > 1:
                raise ValueError(created)
            if created:
                incarnations[str(group)] = int(created[0])
    except (ValueError, TypeError):
        raise BadRequest(_NOT_OURS) from None
    if any(seq < 0 for seq in cursor.values()):
        raise BadRequest(_NOT_OURS)
    if digest != _pattern_digest(filter_pattern):
        raise BadRequest(_OTHER_PATTERN)
    return cursor, incarnations


def bind_cursor(request: FilterRequest, incarnations: Mapping[str, int]) -> FilterRequest:
    """The request with its cursor bound to the groups' current incarnations (group -> its
    catalog id): a number seen in another incarnation of its group restarts at 0,
    and the tokens issued for the page name the current incarnations."""
    cursor = dict(request.cursor)
    for group, seen_in in request.incarnations.items():
        if incarnations.get(group) != seen_in:
            cursor[group] = 0
    current = {group: incarnations[group] for group in cursor if group in incarnations}
    return replace(request, cursor=cursor, incarnations=current)


def _cursor_predicate(cursor: Mapping[str, int]) -> tuple[str, list[Any]]:
    """Events after the cursor (which holds every group read). Its first term, a plain lower
    bound on ``seq``, is what DuckDB pushes into the Parquet scans: a segment entirely behind
    the cursor is skipped on its statistics instead of read."""
    if not cursor:
        return "", []
    if len(cursor) == 1:
        return "seq > ?", [*cursor.values()]
    exact = " OR ".join("(log_group = ? AND seq > ?)" for _ in cursor)
    params: list[Any] = [min(cursor.values())]
    for group, seq in sorted(cursor.items()):
        params += [group, seq]
    return f"seq > ? AND ({exact})", params


def filter_sql(request: FilterRequest) -> tuple[str, list[Any]]:
    """SQL over ``logs`` returning one page (plus one row, to know whether more follow)."""
    where: list[str] = []
    params: list[Any] = []
    if request.streams:
        where.append(f"log_stream IN ({', '.join('?' for _ in request.streams)})")
        params.extend(request.streams)
    if request.ingest_order:
        predicate, predicate_params = _cursor_predicate(request.cursor)
        if predicate:
            where.append(predicate)
            params += predicate_params
    elif request.after is not None:
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
    if request.ingest_order:
        order_by = "log_group, seq"
    else:
        direction = "DESC" if request.descending else "ASC"
        order_by = f"ts_ms {direction}, log_group {direction}, seq {direction}"
    sql = (
        "SELECT log_group, log_stream, ts_ms, ingest_ms, seq, message FROM logs"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {order_by} LIMIT ?"
    )
    params.append(request.limit + 1)
    return sql, params


def page(
    rows: list[dict[str, Any]],
    request: FilterRequest,
    *,
    high_water: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The response body for rows fetched with ``filter_sql``.

    ``high_water`` (order=ingest) is each group's last sequence number, taken before ``rows``.
    """
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
    if request.ingest_order:
        return {"events": events, **_ingest_tokens(rows, request, more, high_water or {})}
    token = None
    if more and rows:
        last = rows[-1]
        token = encode_token(
            Position(last["ts_ms"], last["log_group"], last["seq"]),
            request.descending,
            request.filter_pattern,
        )
    return {"events": events, "next_token": token}


def _ingest_tokens(
    rows: list[dict[str, Any]],
    request: FilterRequest,
    more: bool,
    high_water: Mapping[str, int],
) -> dict[str, Any]:
    cursor = dict(request.cursor)
    for row in rows:  # by group, then seq: the last row of a group is its newest
        cursor[row["log_group"]] = row["seq"]
    if not more:
        # Everything in range up to the high-water mark has been shown: skip what was left out.
        for group, seq in high_water.items():
            cursor[group] = max(cursor.get(group, 0), seq)
    token = encode_cursor(cursor, request.filter_pattern, request.incarnations)
    return {"next_token": token if more else None, "follow_token": token}
