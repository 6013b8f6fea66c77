"""``Store.logs_schema`` (metadata only) agrees with the schema of the relation itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.engine import Store
from tests.query.conftest import T0, ingest, open_store


def _sql_schema(store: Store, groups: list[str], start_ms: int, end_ms: int) -> dict[str, str]:
    table = store.query_logs(groups, start_ms, end_ms, "SELECT * FROM logs LIMIT 0", [])
    return {f.name: str(f.type) for f in table.schema}


@pytest.mark.parametrize("groups", [["app"], ["web"], ["app", "web"]])
def test_schema_from_metadata_matches_the_relation(store: Store, groups: list[str]) -> None:
    for start, end in [(T0 - 10**7, T0 + 10**8), (0, 1)]:
        assert store.logs_schema(groups, start, end) == _sql_schema(store, groups, start, end)


def test_clashing_types_are_text(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        ingest(store, "g", "s", b'{"x": 1, "y": true}', "application/x-ndjson", T0)
        store.flush(force=True)
        ingest(store, "g", "s", b'{"x": "one", "y": false}', "application/x-ndjson", T0)
        schema = store.logs_schema(["g"], T0 - 1000, T0 + 10**8)
        assert schema == _sql_schema(store, ["g"], T0 - 1000, T0 + 10**8)
        assert schema["x"] == "string"
    finally:
        store.close()


@pytest.mark.parametrize("groups", [["app"], ["web"], ["app", "web"]])
@pytest.mark.parametrize(
    ("start", "end"),
    [(T0 - 10**7, T0 + 10**8), (T0 + 2000, T0 + 4000), (T0 + 700_000, T0 + 10**8), (0, 1)],
    ids=["whole", "inside-a-segment", "from-the-middle", "nothing"],
)
def test_scan_totals_match_a_scan(store: Store, groups: list[str], start: int, end: int) -> None:
    sql = "SELECT count(*), coalesce(sum(message_bytes), 0) FROM logs"
    expected = tuple(store.query_logs(groups, start, end, sql, []).to_pylist()[0].values())
    assert store.scan_totals(groups, start, end) == expected
    assert store.scan_totals(groups, start, end) == expected  # remembered segments
