"""Queries -> rows on a real store seeded through the real ingest path (DuckDB is the oracle).

The seed (tests/data/queries): ``app`` holds eight JSON events (five in Parquet, three in the
memtable), ``web`` four access-log lines. See conftest.py for the timestamps.
"""

from __future__ import annotations

import pytest

from query.run import decode_ptr, run_query
from store.engine import Store
from tests.query.conftest import T0

Row = dict[str, str]

CASES: list[tuple[str, str, str, list[Row]]] = [
    # ---- fields, display, default projection and order (spec §6.3, §6.1)
    (
        "default-projection-newest-first",
        "web",
        "limit 2",
        [
            {
                "@timestamp": "2024-06-03 14:10:03.000",
                "@message": "not-an-ip - - GET /x 500 0 1000ms",
            },
            {
                "@timestamp": "2024-06-03 14:10:02.000",
                "@message": "2001:db8::1 - - GET /item7 200 100 40ms",
            },
        ],
    ),
    (
        "fields-discovered-json",
        "app",
        "fields status, latency, ok, note, user.id, `@@version`, `content-type`, tags.1",
        [
            {"status": "unknown", "latency": "n/a"},
            {"status": "200", "latency": "1000", "@@version": "1", "content-type": "json"},
            {"status": "204", "latency": "20", "user.id": "u2"},
            {"status": "200", "latency": "15", "ok": "0", "note": "   ", "user.id": "u3"},
            {"status": "500", "latency": "300", "tags.1": "b"},
            {"status": "950", "latency": "7.1", "note": "", "user.id": "u1"},
            {"status": "200", "latency": "10", "ok": "1", "user.id": "u2"},
            {"status": "503", "latency": "120.5", "user.id": "u1"},
        ],
    ),
    (
        "fields-then-filter-on-alias",
        "app",
        "fields `@@version` + 1 as v | filter ispresent(v) | display v",
        [{"v": "2"}],
    ),
    (
        "display-last-wins",
        "app",
        "display level | filter level = 'ERROR' | display @timestamp, level",
        [
            {"@timestamp": "2024-06-03 14:01:01.000", "level": "ERROR"},
            {"@timestamp": "2024-06-03 14:00:01.000", "level": "ERROR"},
        ],
    ),
    (
        "system-fields",
        "web",
        "stats count(*) by @logStream, @log",
        [{"@logStream": "nginx", "@log": "000000000000:web", "count(*)": "4"}],
    ),
    # ---- filter and operators (spec §7.3, §8)
    (
        "like-is-literal",
        "app",
        'filter msg like "50%" | display msg',
        [{"msg": "db 50% slow_query"}],
    ),
    (
        "like-regex-case-insensitive",
        "app",
        "filter msg like /(?i)UPSTREAM/ | display msg",
        [{"msg": "upstream timed out"}],
    ),
    (
        "string-literal-compares-numerically",
        "app",
        'filter status = "503" | display status',
        [{"status": "503"}],
    ),
    (
        "not-equal-drops-missing-and-non-numeric",
        "app",
        "filter status != 200 | sort status asc | display status",
        [{"status": "204"}, {"status": "500"}, {"status": "503"}, {"status": "950"}],
    ),
    (
        "not-in",
        "app",
        'filter region not in ["eu"] | display region',
        [{"region": "ap"}, {"region": "us"}],
    ),
    (
        "json-booleans-are-numbers",
        "app",
        "filter ok = 1 or ok = 0 | display ok",
        [{"ok": "0"}, {"ok": "1"}],
    ),
    ("number-as-condition", "app", "filter ok | display ok", [{"ok": "1"}]),
    (
        "isblank-counts-missing",
        "app",
        "filter isblank(note) and ispresent(note) | display note",
        [{"note": "   "}, {"note": ""}],
    ),
    (
        "arithmetic",
        "app",
        "filter level = 'DEBUG' | fields 7 / 2 as a, -7 % 3 as b, 2 ^ 10 as c, 1 / 0 as d, "
        "latency * 2 as e | display a, b, c, d, e",
        [{"a": "3.5", "b": "-1", "c": "1024", "e": "2000"}],
    ),
    # ---- stats (spec §7.4, §10, §12)
    (
        "count-by-bin",
        "app",
        "stats count(*) by bin(1m)",
        [
            {"bin(1m)": "2024-06-03 14:00:00.000", "count(*)": "3"},
            {"bin(1m)": "2024-06-03 14:01:00.000", "count(*)": "3"},
            {"bin(1m)": "2024-06-03 14:05:00.000", "count(*)": "2"},
        ],
    ),
    (
        "two-stats",
        "app",
        "stats count(*) as c by bin(1m) as t | stats max(c) as peak, min(c) as low, "
        "count(*) as buckets",
        [{"peak": "3", "low": "2", "buckets": "3"}],
    ),
    (
        "stats-rows-in-natural-key-order",
        "app",
        "stats count(*) as c by level",
        [
            {"level": "DEBUG", "c": "1"},
            {"level": "ERROR", "c": "2"},
            {"level": "INFO", "c": "3"},
            {"level": "WARN", "c": "1"},
            {"level": "error", "c": "1"},
        ],
    ),
    (
        "having-and-null-group",
        "app,web",
        "stats count(*) as c by level | filter c > 1 | sort c desc",
        [{"c": "4"}, {"level": "INFO", "c": "3"}, {"level": "ERROR", "c": "2"}],
    ),
    (
        "numeric-aggregates",
        "app",
        "stats avg(latency) as a, sum(latency) as s, min(latency) as mn, max(latency) as mx, "
        "pct(latency, 90) as p90, pct(latency, 0) as p0, count(latency) as n",
        [
            {
                "a": "210.37142857142857",
                "s": "1472.6",
                "mn": "n/a",
                "mx": "1000",
                "p90": "1000",
                "p0": "7.1",
                "n": "8",
            }
        ],
    ),
    (
        "earliest-latest",
        "app",
        "stats earliest(status) as e, latest(status) as l, latest(user.id) as lu",
        [{"e": "503", "l": "unknown", "lu": "u2"}],
    ),
    (
        "sorts-first-last-natural",
        "app",
        "stats sortsFirst(item) as f, sortsLast(item) as l, count_distinct(level) as d",
        [{"f": "9b", "l": "item10", "d": "5"}],
    ),
    (
        "stats-with-no-events",
        "app",
        "filter ispresent(nonexistent) | stats count(*) as c, avg(latency) as a",
        [{"c": "0"}],
    ),
    (
        "calendar-buckets",
        "app,web",
        "stats count(*) as c by datefloor(@timestamp, 1mo) as month, "
        "dateceil(@timestamp, 1w) as week",
        [{"month": "2024-06-01 00:00:00.000", "week": "2024-06-10 00:00:00.000", "c": "12"}],
    ),
    # ---- sort, limit, dedup (spec §7.5-§7.8, §11)
    (
        "natural-sort-missing-last",
        "app",
        "sort item asc | display item | limit 5",
        [{"item": "9b"}, {"item": "Item7"}, {"item": "item9"}, {"item": "item10"}, {}],
    ),
    (
        "sort-default-desc",
        "app",
        "fields latency * 2 as d | sort d | limit 3 | display d",
        [{"d": "2000"}, {"d": "600"}, {"d": "241"}],
    ),
    (
        "limits-chain",
        "app",
        "limit 3 | limit 2 | display level",
        [{"level": "error"}, {"level": "DEBUG"}],
    ),
    (
        "dedup-keeps-newest-and-nulls",
        "app",
        "filter level in ['ERROR', 'WARN', 'INFO'] | display level, user.id | dedup user.id",
        [
            {"level": "INFO", "user.id": "u2"},
            {"level": "INFO", "user.id": "u3"},
            {"level": "ERROR"},
            {"level": "WARN", "user.id": "u1"},
        ],
    ),
    # ---- parse (spec §7.7)
    (
        "parse-glob",
        "web",
        'parse @message "* - - * * * * *ms" as ip, method, path, status, bytes, ms '
        "| filter status >= 400 | display ip, status, ms",
        [
            {"ip": "not-an-ip", "status": "500", "ms": "1000"},
            {"ip": "192.168.1.20", "status": "401", "ms": "3"},
        ],
    ),
    (
        "parse-regex-stats",
        "web",
        r"parse @message /^(?<ip>\S+) .* (?<ms>\d+)ms$/ "
        "| stats avg(ms) as a, pct(ms, 50) as p, sum(ms) as s, count(ip) as n",
        [{"a": "263.75", "p": "12", "s": "1055", "n": "4"}],
    ),
    (
        "parse-optional-group-missing",
        "app",
        r"filter ispresent(item) | parse item /(?<word>[a-z]+)?(?<num>\d+)/ | display word, num",
        [
            {"num": "9"},
            {"word": "tem", "num": "7"},
            {"word": "item", "num": "9"},
            {"word": "item", "num": "10"},
        ],
    ),
    (
        "parse-no-match-is-missing",
        "app",
        'parse msg "db * *" as pct, what | filter ispresent(pct) | display pct, what',
        [{"pct": "50%", "what": "slow_query"}],
    ),
    (
        "parse-glob-literal-star-and-chain",
        "app",
        r'fields "a*b 5" as src | parse src "a\*b *" as n | parse n "*" as again '
        "| limit 1 | display n, again",
        [{"n": "5", "again": "5"}],
    ),
    (
        "parse-empty-capture-is-present",
        "app",
        'fields "[] x" as src | parse src "[*] *" as a, b | limit 1 | display a, b',
        [{"a": "", "b": "x"}],
    ),
    # ---- functions (spec §9)
    (
        "ip-functions",
        "web",
        'parse "* -" as ip | fields isValidIp(ip) as v, isValidIpV4(ip) as v4, '
        'isValidIpV6(ip) as v6, isIpInSubnet(ip, "192.168.0.0/16") as priv, '
        "ipv4ToNumber(ip) as num | display ip, v, v4, v6, priv, num",
        [
            {"ip": "not-an-ip", "v": "0", "v4": "0", "v6": "0", "priv": "0"},
            {"ip": "2001:db8::1", "v": "1", "v4": "0", "v6": "1", "priv": "0"},
            {
                "ip": "192.168.1.20",
                "v": "1",
                "v4": "1",
                "v6": "0",
                "priv": "1",
                "num": "3232235796",
            },
            {"ip": "10.0.0.1", "v": "1", "v4": "1", "v6": "0", "priv": "0", "num": "167772161"},
        ],
    ),
    (
        "string-functions",
        "web",
        'fields substr("abcdef", 2, 3) as a, trim("yxyhiyx", "xy") as b, strlen("日本") as c, '
        'concat(@logStream, ":", 1.5) as d, toupper("x") as e, strcontains("abc", "B", true) as f, '
        'replace("a-b-c", "-", "+") as g, ltrim("  x") as h, isempty("") as i | limit 1 '
        "| display a, b, c, d, e, f, g, h, i",
        [
            {
                "a": "cde",
                "b": "hi",
                "c": "2",
                "d": "nginx:1.5",
                "e": "X",
                "f": "1",
                "g": "a+b+c",
                "h": "x",
                "i": "1",
            }
        ],
    ),
    (
        "ipv6-and-extended-functions",
        "web",
        'parse "* -" as ip | filter isIpv6InSubnet(ip, "2001:db8::/32") '
        '| fields regexReplace(@message, "[0-9]+", "N") as r, base64encode(ip) as b, '
        'startsWith(ip, "2001") as s, round(2.5) as h, toInt("7.9") as i, '
        'if(ispresent(ip), "y", "n") as f, case(false, 1, true, 2) as c | display r, b, s, h, i, f, c',
        [
            {
                "r": "N:dbN::N - - GET /itemN N N Nms",
                "b": "MjAwMTpkYjg6OjE=",
                "s": "1",
                "h": "3",
                "i": "7",
                "f": "y",
                "c": "2",
            }
        ],
    ),
    (
        "numeric-and-time-functions",
        "web",
        "fields abs(-2) as a, ceil(1.2) as b, floor(-1.2) as c, greatest(1, 3, 2) as d, "
        "log(0) as e, sqrt(-1) as f, fromMillis(toMillis(@timestamp) + 1) as g, "
        "coalesce(nothing, 'x') as h | limit 1 | display a, b, c, d, e, f, g, h",
        [
            {
                "a": "2",
                "b": "2",
                "c": "-2",
                "d": "3",
                "e": "-Infinity",
                "g": "2024-06-03 14:10:03.001",
                "h": "x",
            }
        ],
    ),
]


def _rows(result_rows: list[list[dict[str, str]]]) -> list[Row]:
    return [{p["field"]: p["value"] for p in row if p["field"] != "@ptr"} for row in result_rows]


@pytest.mark.parametrize(
    ("groups", "query", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_query_rows(store: Store, groups: str, query: str, expected: list[Row]) -> None:
    result = run_query(store, query, groups.split(","), T0 - 3_600_000, T0 + 3_600_000)
    assert _rows(result.rows) == expected


def test_statistics_count_filters_before_stats(store: Store) -> None:
    result = run_query(
        store, "filter status >= 500 | stats count(*) by level", ["app", "web"], T0, T0 + 10**7
    )
    assert result.statistics == {
        "recordsMatched": 3.0,
        "recordsScanned": 12.0,
        "bytesScanned": 1271.0,
        "estimatedRecordsSkipped": 0.0,
        "estimatedBytesSkipped": 0.0,
        "logGroupsScanned": 2.0,
    }


def test_records_matched_ignores_limit(store: Store) -> None:
    result = run_query(store, "filter ispresent(user.id) | limit 2", ["app"], T0, T0 + 10**7)
    assert len(result.rows) == 2
    assert result.statistics["recordsMatched"] == 5.0


def test_records_matched_when_the_cap_cuts_the_rows(store: Store) -> None:
    capped = run_query(store, "filter ispresent(user.id)", ["app"], T0, T0 + 10**7, limit=2)
    assert len(capped.rows) == 2
    assert capped.statistics["recordsMatched"] == 5.0
    whole = run_query(store, "filter ispresent(user.id)", ["app"], T0, T0 + 10**7, limit=9)
    assert len(whole.rows) == 5
    assert whole.statistics["recordsMatched"] == 5.0


def test_hex_to_ascii(store: Store) -> None:
    query = (
        'fields hexToAscii("48656c6c6f") as a, hexToAscii("0x4869") as b, hexToAscii("zz") as c,'
        ' hexToAscii("abc") as d, hexToAscii("ff") as e | limit 1'
    )
    result = run_query(store, query, ["app"], T0, T0 + 10**7)
    assert [(p["field"], p["value"]) for p in result.rows[0][:-1]] == [("a", "Hello"), ("b", "Hi")]


def test_time_range_is_inclusive_at_both_ends(store: Store) -> None:
    result = run_query(store, "fields @timestamp", ["app"], T0 + 1000, T0 + 3000)
    assert [r[0]["value"] for r in result.rows] == [
        "2024-06-03 14:00:03.000",
        "2024-06-03 14:00:02.000",
        "2024-06-03 14:00:01.000",
    ]
    assert result.statistics["recordsScanned"] == 3.0


def test_ptr_on_event_rows_only(store: Store) -> None:
    events = run_query(store, "fields level | limit 1", ["app"], T0, T0 + 10**7)
    pairs = events.rows[0]
    assert pairs[-1]["field"] == "@ptr"
    assert decode_ptr(pairs[-1]["value"]) == ("app", 8)
    stats = run_query(store, "stats count(*)", ["app"], T0, T0 + 10**7)
    assert all(p["field"] != "@ptr" for row in stats.rows for p in row)


def test_request_limit_caps_rows(store: Store) -> None:
    result = run_query(store, "fields @timestamp", ["app", "web"], T0, T0 + 10**7, limit=3)
    assert len(result.rows) == 3
    assert result.fields == ("@timestamp", "@ptr")


@pytest.mark.parametrize(
    ("query", "matched"),
    [
        ("filter level = 'INFO' | stats count(*) by status", 3.0),
        ("filter level = 'INFO' | stats count(*) as c by status | filter c > 100", 3.0),
        ("filter level = 'INFO' | stats count(*) as c by status | stats sum(c)", 3.0),
        ("filter level = 'nope' | stats count(*) by status", 0.0),
        ("filter level = 'INFO' | dedup status", 3.0),
        ("stats count(*) by status", 8.0),
        ("filter level = 'nope' | fields level", 0.0),
        ("filter level = 'INFO' | fields level | limit 1", 3.0),
        ("fields level | limit 1", 8.0),
    ],
)
def test_records_matched_with_stats(store: Store, query: str, matched: float) -> None:
    result = run_query(store, query, ["app"], T0, T0 + 10**7)
    assert result.statistics["recordsMatched"] == matched
    assert result.statistics["recordsScanned"] == 8.0
    assert result.statistics["bytesScanned"] > 0
    if "nope" in query and "stats" not in query:
        assert result.rows == []
