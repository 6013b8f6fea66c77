"""PutMetricData bodies -> metric-table rows (``ingest.metric_data``), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from core.metric_errors import InvalidParameterCombination, InvalidParameterValue, MissingParameter
from ingest.metric_data import decode_metric_data, load_document

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def decode(*data: Any, namespace: str = "App") -> Any:
    return decode_metric_data({"namespace": namespace, "metric_data": list(data)}, now_ms=NOW)


def test_the_three_value_forms_become_rows() -> None:
    batch = decode(
        {"metric_name": "a", "value": 2, "dimensions": {"B": "2", "A": "1"}},
        {"metric_name": "b", "values": [1, 5], "counts": [2, 3], "unit": "Count"},
        {
            "metric_name": "c",
            "statistic_values": {"sample_count": 2, "sum": 3, "minimum": 1, "maximum": 2},
        },
    )
    rows = batch.rows.to_pylist()
    assert [
        (r["metric_name"], r["dims"], r["sample_count"], r["sum"], r["values"], r["counts"])
        for r in rows
    ] == [
        ("a", "A=1,B=2", 1.0, 2.0, [2.0], [1.0]),
        ("b", "", 5.0, 17.0, [1.0, 5.0], [2.0, 3.0]),
        ("c", "", 2.0, 3.0, [], []),
    ]
    assert rows[1]["unit"] == "Count" and rows[0]["unit"] == "None"
    assert batch.response() == {"accepted": 3, "rejected": []}
    assert batch.audit_summary() == {"metricDatumCount": 3, "metricNames": ["a", "b", "c"]}


def test_timestamps_default_to_now_and_are_truncated_by_resolution() -> None:
    batch = decode(
        {"metric_name": "a", "value": 1},
        {"metric_name": "a", "value": 1, "timestamp": NOW - 61_500},
        {
            "metric_name": "a",
            "value": 1,
            "timestamp": "2025-12-31T23:58:59.900Z",
            "storage_resolution": 1,
        },
    )
    assert batch.rows.column("ts_ms").to_pylist() == [NOW, NOW - 120_000, NOW - 61_000]
    assert batch.rows.column("storage_resolution").to_pylist() == [60, 60, 1]


def test_dimension_lists_are_accepted() -> None:
    batch = decode({"metric_name": "a", "value": 1, "dimensions": [{"name": "H", "value": "x"}]})
    assert batch.rows.column("dimensions").to_pylist() == [[("H", "x")]]


def test_rejections_keep_their_index_and_code() -> None:
    batch = decode(
        {"metric_name": "a"},
        {"metric_name": "a", "value": 1},
        {"metric_name": "a", "value": 1, "values": [1]},
    )
    assert batch.rows.num_rows == 1
    assert [(r.index, r.code) for r in batch.rejected] == [
        (0, MissingParameter.code),
        (2, InvalidParameterCombination.code),
    ]


def test_all_rejected_raises_the_first_error() -> None:
    batch = decode({"metric_name": "a", "values": [1], "counts": [-1]}, {"metric_name": "a"})
    with pytest.raises(InvalidParameterValue) as error:
        batch.raise_if_empty()
    assert error.value.details["index"] == 0
    assert len(error.value.details["rejected"]) == 2
    assert "metric_data[0]: counts[0]: must be above 0" in error.value.message


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[]", InvalidParameterValue),
        (b"{", InvalidParameterValue),
    ],
)
def test_load_document(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_document(body)
