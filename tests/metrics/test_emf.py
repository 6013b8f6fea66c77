"""Embedded Metric Format extraction (spec §3): valid documents, and invalid ones per §3.3."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.emf import EmfExtraction, extract_emf

NOW = 1_767_225_630_000  # 2026-01-01T00:00:30Z
TS = 1_767_225_600_000

SPEC_EXAMPLE: dict[str, Any] = {
    "_aws": {
        "Timestamp": TS,
        "CloudWatchMetrics": [
            {
                "Namespace": "Shop/API",
                "Dimensions": [["Service"], ["Service", "Operation"]],
                "Metrics": [
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "Errors", "Unit": "Count"},
                ],
            }
        ],
    },
    "Service": "checkout",
    "Operation": "PlaceOrder",
    "Latency": [120, 95],
    "Errors": 0,
    "requestId": "8f14e45f",
}


def extract(document: Any, **kw: Any) -> EmfExtraction:
    return extract_emf(
        document if isinstance(document, str) else json.dumps(document), now_ms=NOW, **kw
    )


def summary(result: EmfExtraction) -> list[tuple[str, str, str, str, int, list[float]]]:
    return [
        (
            r["namespace"],
            r["metric_name"],
            r["dims"],
            r["unit"],
            r["storage_resolution"],
            r["values"],
        )
        for r in result.rows
    ]


def test_the_spec_example_gives_four_series() -> None:
    result = extract(SPEC_EXAMPLE)
    assert (result.is_emf, result.parsing_errors, result.validation_errors) == (True, 0, 0)
    assert summary(result) == [
        ("Shop/API", "Latency", "Service=checkout", "Milliseconds", 60, [120.0, 95.0]),
        ("Shop/API", "Errors", "Service=checkout", "Count", 60, [0.0]),
        (
            "Shop/API",
            "Latency",
            "Operation=PlaceOrder,Service=checkout",
            "Milliseconds",
            60,
            [120.0, 95.0],
        ),
        ("Shop/API", "Errors", "Operation=PlaceOrder,Service=checkout", "Count", 60, [0.0]),
    ]
    latency = result.rows[0]
    assert latency["ts_ms"] == TS
    assert latency["dimensions"] == {"Service": "checkout"}
    assert (
        latency["sample_count"],
        latency["sum"],
        latency["minimum"],
        latency["maximum"],
        latency["counts"],
    ) == (2, 215, 95, 120, [1.0, 1.0])


def with_directive(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(SPEC_EXAMPLE)
    document["_aws"]["CloudWatchMetrics"][0].update(changes)
    return document


def test_empty_dimension_set_and_high_resolution() -> None:
    document = with_directive(Dimensions=[[]], Metrics=[{"Name": "Errors", "StorageResolution": 1}])
    document["_aws"]["Timestamp"] = TS + 1_234
    (row,) = extract(document).rows
    assert (
        row["dims"],
        row["dimensions"],
        row["unit"],
        row["storage_resolution"],
        row["ts_ms"],
    ) == ("", {}, "None", 1, TS + 1_000)


def test_standard_resolution_truncates_to_the_minute() -> None:
    document = copy.deepcopy(SPEC_EXAMPLE)
    document["_aws"]["Timestamp"] = TS + 59_999
    assert {r["ts_ms"] for r in extract(document).rows} == {TS}


def test_dotted_keys_are_top_level_members_not_paths() -> None:
    document = with_directive(Dimensions=[["A.a"]], Metrics=[{"Name": "B.b"}])
    document |= {"A.a": "x", "B.b": 3, "A": {"a": "nested"}}
    assert summary(extract(document)) == [("Shop/API", "B.b", "A.a=x", "None", 60, [3.0])]


def test_two_directives_one_invalid_keeps_the_other() -> None:
    document = copy.deepcopy(SPEC_EXAMPLE)
    good = {"Namespace": "Other", "Dimensions": [[]], "Metrics": [{"Name": "Errors"}]}
    bad = {"Namespace": "Bad", "Dimensions": [["Missing"]], "Metrics": [{"Name": "Errors"}]}
    document["_aws"]["CloudWatchMetrics"] = [bad, good]
    result = extract(document)
    assert summary(result) == [("Other", "Errors", "", "None", 60, [0.0])]
    assert (result.parsing_errors, result.validation_errors) == (0, 1)
    assert "CloudWatchMetrics[0]" in result.problems[0] and "Missing" in result.problems[0]


def test_the_runtime_prefix_needs_the_log_group_option() -> None:
    line = "2026-01-01T00:00:00.000Z\t8f14e45f\tINFO\t" + json.dumps(SPEC_EXAMPLE)
    assert extract(line).is_emf is False
    assert len(extract(line, allow_prefix=True).rows) == 4


NOT_EMF = [
    ("plain-text", "GET /index.html 200"),
    ("json-without-aws", '{"a": 1}'),
    ("aws-only-nested", '{"x": {"_aws": {}}}'),
    ("json-array", '[{"_aws": {}}]'),
    ("text-mentioning-aws", 'could not read "_aws" from config'),
]


@pytest.mark.parametrize("message", [c[1] for c in NOT_EMF], ids=[c[0] for c in NOT_EMF])
def test_events_that_are_not_emf(message: str) -> None:
    assert extract(message) == EmfExtraction(False)


PARSING_ERRORS = [
    ("broken-json", '{"_aws": {"Timestamp": 1, '),
    ("nan", '{"_aws": {"Timestamp": NaN, "CloudWatchMetrics": []}}'),
    ("aws-not-object", {"_aws": []}),
    ("no-timestamp", {"_aws": {"CloudWatchMetrics": []}}),
    ("string-timestamp", {"_aws": {"Timestamp": "2026-01-01T00:00:00Z", "CloudWatchMetrics": []}}),
    ("boolean-timestamp", {"_aws": {"Timestamp": True, "CloudWatchMetrics": []}}),
    ("no-directives", {"_aws": {"Timestamp": TS}}),
    ("directives-not-array", {"_aws": {"Timestamp": TS, "CloudWatchMetrics": {}}}),
]


@pytest.mark.parametrize(
    "document", [c[1] for c in PARSING_ERRORS], ids=[c[0] for c in PARSING_ERRORS]
)
def test_parsing_errors(document: Any) -> None:
    result = extract(document)
    assert (result.is_emf, result.rows, result.parsing_errors, result.validation_errors) == (
        True,
        (),
        1,
        0,
    )


def member(**members: Any) -> dict[str, Any]:
    return copy.deepcopy(SPEC_EXAMPLE) | members


VALIDATION_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("namespace-missing", with_directive(Namespace=None), "namespace"),
    ("namespace-reserved", with_directive(Namespace="AWS/EC2"), "reserved"),
    ("namespace-colon", with_directive(Namespace=":x"), "':'"),
    ("dimensions-missing", with_directive(Dimensions=None), "Dimensions must be an array"),
    ("dimensions-empty", with_directive(Dimensions=[]), "at least 1"),
    ("dimension-set-not-array", with_directive(Dimensions=["Service"]), "array of member names"),
    (
        "dimension-set-too-long",
        with_directive(Dimensions=[[f"d{i}" for i in range(31)]]),
        "30 members",
    ),
    ("dimension-set-duplicate", with_directive(Dimensions=[["Service", "Service"]]), "twice"),
    (
        "dimension-member-missing",
        with_directive(Dimensions=[["Region"]]),
        "'Region' is not a member",
    ),
    ("dimension-member-number", with_directive(Dimensions=[["Errors"]]), "must be a string"),
    ("dimension-member-too-long", member(Service="x" * 1025), "1 to 1024"),
    ("dimension-member-blank", member(Service="   "), "other than whitespace"),
    ("metrics-missing", with_directive(Metrics=None), "Metrics must be an array"),
    ("metrics-too-many", with_directive(Metrics=[{"Name": "Errors"}] * 101), "at most 100"),
    ("metric-not-object", with_directive(Metrics=["Errors"]), "must be an object"),
    ("metric-name-missing", with_directive(Metrics=[{"Unit": "Count"}]), "metric name"),
    (
        "metric-bad-unit",
        with_directive(Metrics=[{"Name": "Errors", "Unit": "Parsecs"}]),
        "unknown unit",
    ),
    (
        "metric-list-unit",
        with_directive(Metrics=[{"Name": "Errors", "Unit": ["Count"]}]),
        "unknown unit",
    ),
    (
        "metric-bad-resolution",
        with_directive(Metrics=[{"Name": "Errors", "StorageResolution": 10}]),
        "1 or 60",
    ),
    ("metric-member-missing", with_directive(Metrics=[{"Name": "Throughput"}]), "not a member"),
    ("metric-member-string", member(Errors="0"), "not a number"),
    ("metric-member-boolean", member(Errors=True), "not a number"),
    ("metric-member-object", member(Errors={"v": 1}), "not a number"),
    ("metric-member-empty-array", member(Latency=[]), "1 to 100 values"),
    ("metric-member-101-values", member(Latency=list(range(101))), "1 to 100 values"),
    ("metric-member-huge", member(Errors=2.0**361), "2^360"),
    ("metric-member-tiny", member(Errors=2.0**-361), "2^-360"),
    ("metric-member-null-in-array", member(Latency=[1, None]), "not a number"),
]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [c[1:] for c in VALIDATION_ERRORS],
    ids=[c[0] for c in VALIDATION_ERRORS],
)
def test_validation_errors_drop_the_directive(document: dict[str, Any], fragment: str) -> None:
    result = extract(document)
    assert (result.is_emf, result.rows, result.parsing_errors, result.validation_errors) == (
        True,
        (),
        0,
        1,
    )
    assert fragment in result.problems[0]


@pytest.mark.parametrize(
    ("offset_ms", "valid"),
    [
        (-14 * 86_400_000, True),
        (-14 * 86_400_000 - 1, False),
        (2 * 3_600_000, True),
        (2 * 3_600_000 + 1, False),
    ],
)
def test_the_timestamp_window(offset_ms: int, valid: bool) -> None:
    document = copy.deepcopy(SPEC_EXAMPLE)
    document["_aws"]["Timestamp"] = NOW + offset_ms
    result = extract(document)
    assert (len(result.rows) == 4) is valid
    assert result.validation_errors == (0 if valid else 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Namespace",
                    "Dimensions",
                    "Metrics",
                    "Name",
                    "Unit",
                    "Timestamp",
                    "CloudWatchMetrics",
                    "Service",
                    "Errors",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_arbitrary_aws_members_never_crash(aws: Any, directive: Any) -> None:
    documents = [
        {"_aws": aws, "Errors": 1, "Service": "s"},
        {"_aws": {"Timestamp": TS, "CloudWatchMetrics": [directive]}, "Errors": 1, "Service": "s"},
    ]
    for document in documents:
        result = extract(document)
        assert result.is_emf
        assert result.parsing_errors + result.validation_errors + len(result.rows) >= 0
