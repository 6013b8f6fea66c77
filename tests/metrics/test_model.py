"""The metric data model (spec §1): identity rules, the dims string, one row per datum."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.metric_model import (
    UNITS,
    canonical_dims,
    datum_row,
    dimension_name_problem,
    dimension_value_problem,
    metric_name_problem,
    namespace_problem,
    parse_dims,
    value_problem,
)

DIMS_CASES = [
    ("empty", {}, ""),
    ("one", {"Service": "api"}, "Service=api"),
    ("sorted-by-name", {"Service": "api", "Host": "a"}, "Host=a,Service=api"),
    ("code-point-order", {"b": "1", "B": "2", "_": "3"}, "B=2,_=3,b=1"),
    ("escapes", {"a=b": "c,d", "e\\": "=f"}, "a\\=b=c\\,d,e\\\\=\\=f"),
    ("value-may-start-with-colon", {"k": ":v"}, "k=:v"),
]


@pytest.mark.parametrize(
    ("dimensions", "expected"), [c[1:] for c in DIMS_CASES], ids=[c[0] for c in DIMS_CASES]
)
def test_canonical_dims(dimensions: dict[str, str], expected: str) -> None:
    assert canonical_dims(dimensions) == expected
    assert parse_dims(expected) == dimensions


def test_ambiguous_looking_sets_stay_apart() -> None:
    assert canonical_dims({"a=b": "c"}) != canonical_dims({"a": "b=c"})
    assert canonical_dims({"a": "b,c=d"}) != canonical_dims({"a": "b", "c": "d"})


@given(
    st.dictionaries(
        st.text(alphabet="ab=,\\ :", min_size=1, max_size=4),
        st.text(alphabet="ab=,\\ :", min_size=1, max_size=4),
        max_size=4,
    )
)
def test_dims_round_trip(dimensions: dict[str, str]) -> None:
    assert parse_dims(canonical_dims(dimensions)) == dimensions


def test_27_units() -> None:
    assert len(UNITS) == 27 and "None" in UNITS and "Count/Second" in UNITS


PROBLEMS = [
    ("namespace-ok", namespace_problem("Shop/API"), None),
    ("namespace-empty", namespace_problem(""), "1 to 255"),
    ("namespace-long", namespace_problem("n" * 256), "1 to 255"),
    ("namespace-ascii", namespace_problem("Café"), "ASCII"),
    ("namespace-control", namespace_problem("a\tb"), "control"),
    ("namespace-colon", namespace_problem(":x"), "':'"),
    ("namespace-aws", namespace_problem("AWS/EC2"), "reserved"),
    ("namespace-watchkeep", namespace_problem("Watchkeep/Logs"), "reserved"),
    (
        "namespace-aws-allowed-internally",
        namespace_problem("Watchkeep/Logs", allow_reserved=True),
        None,
    ),
    ("metric-name-ok", metric_name_problem("Latency p99 (ms)"), None),
    ("metric-name-empty", metric_name_problem(""), "1 to 255"),
    ("dimension-name-blank", dimension_name_problem("  "), "whitespace"),
    ("dimension-name-colon", dimension_name_problem(":a"), "':'"),
    ("dimension-name-long", dimension_name_problem("d" * 256), "1 to 255"),
    ("dimension-value-colon-ok", dimension_value_problem(":a"), None),
    ("dimension-value-long", dimension_value_problem("v" * 1025), "1 to 1024"),
    ("dimension-value-number", dimension_value_problem(5), "string"),
    ("value-ok", value_problem(-1.5), None),
    ("value-zero", value_problem(0), None),
    ("value-nan", value_problem(float("nan")), "finite"),
    ("value-inf", value_problem(float("-inf")), "finite"),
    ("value-huge", value_problem(2.0**361), "2^360"),
    ("value-huge-int", value_problem(10**400), "2^360"),
    ("value-tiny", value_problem(2.0**-361), "2^-360"),
    ("value-bool", value_problem(True), "not a number"),
]


@pytest.mark.parametrize(
    ("problem", "fragment"), [c[1:] for c in PROBLEMS], ids=[c[0] for c in PROBLEMS]
)
def test_identity_and_value_rules(problem: str | None, fragment: str | None) -> None:
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


def test_datum_rows() -> None:
    base: dict[str, Any] = {
        "namespace": "N",
        "metric_name": "M",
        "dimensions": {"H": "a"},
        "ts_ms": 1_767_225_659_999,
    }
    single = datum_row(**base, values=[5.0])
    assert single | {"dimensions": None} == {
        "namespace": "N",
        "metric_name": "M",
        "dims": "H=a",
        "dimensions": None,
        "ts_ms": 1_767_225_600_000,
        "unit": "None",
        "storage_resolution": 60,
        "sample_count": 1.0,
        "sum": 5.0,
        "minimum": 5.0,
        "maximum": 5.0,
        "values": [5.0],
        "counts": [1.0],
    }
    weighted = datum_row(
        **base, values=[1.0, 3.0], counts=[2, 5], storage_resolution=1, unit="Count"
    )
    assert (
        weighted["ts_ms"],
        weighted["sample_count"],
        weighted["sum"],
        weighted["minimum"],
        weighted["maximum"],
    ) == (1_767_225_659_000, 7, 17, 1, 3)
    stats = datum_row(
        **base, statistic_values={"SampleCount": 3, "Sum": 6, "Minimum": 1, "Maximum": 3}
    )
    assert (stats["sample_count"], stats["sum"], stats["values"], stats["counts"]) == (3, 6, [], [])
    with pytest.raises(ValueError):
        datum_row(**base, values=[1.0], counts=[1, 2])


def test_the_package_exports_its_public_names() -> None:
    import query.metrics

    assert sorted(query.metrics.__all__) == sorted(set(query.metrics.__all__))
    for name in query.metrics.__all__:
        assert hasattr(query.metrics, name), name
