"""The pure evaluation (spec §5.3-§5.7): the AWS tables of §5.5.4 row by row, and more."""

from __future__ import annotations

from typing import Any

import pytest

from alarms.evaluate import Datapoint, anchor_ms, cadence_s, evaluate, low_sample_limit
from alarms.reads import alarm_datapoints
from alarms.rules import MetricAlarm
from query.metrics.alarm_reads import AlarmBucket
from query.metrics.statistic import parse_statistic

T = 1_767_261_900_000  # 2026-01-01T10:05:00Z
BREACH, GOOD = 90.0, 10.0


def alarm(**overrides: Any) -> MetricAlarm:
    spec: dict[str, Any] = {
        "name": "a",
        "metric": {"namespace": "NS", "name": "M"},
        "statistic": "Average",
        "period": 300,
        "evaluation_periods": 3,
        "comparison": "GreaterThanThreshold",
        "threshold": 80,
    }
    spec.update(overrides)
    return MetricAlarm.model_validate(spec)


def points(pattern: str, period_s: int = 300, at: int = T) -> list[Datapoint]:
    """`0 - X - X`, oldest bucket first: X breaching, 0 not breaching, - missing."""
    cells = pattern.split()
    out = []
    for index, cell in enumerate(cells):
        age = len(cells) - index
        if cell != "-":
            value = BREACH if cell == "X" else GOOD
            out.append(Datapoint(at - age * period_s * 1_000, value, 10.0))
    return out


TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
# spec §5.5.4: (M, buckets, outcome per treatment); "keep" leaves the state unchanged
TABLE = [
    (3, "0 - X - X", ("OK", "OK", "OK", "OK")),
    (3, "0 - - - -", ("OK", "OK", "OK", "OK")),
    (3, "- - - - -", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    (3, "0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (3, "- - X - -", ("ALARM", "keep", "ALARM", "OK")),
    (3, "- - - - X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    (3, "X - - - -", ("ALARM", "keep", "ALARM", "OK")),
    (2, "0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, "0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, "0 - X - -", ("OK", "OK", "ALARM", "OK")),
    (2, "- - - - 0", ("OK", "OK", "ALARM", "OK")),
    (2, "- - - X -", ("ALARM", "keep", "ALARM", "OK")),
    (2, "- - - - X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
]
CASES = [
    pytest.param(
        m, buckets, treatment, outcomes[i], id=f"M{m}-{buckets.replace(' ', '')}-{treatment}"
    )
    for m, buckets, outcomes in TABLE
    for i, treatment in enumerate(TREATMENTS)
]


@pytest.mark.parametrize("m, buckets, treatment, expected", CASES)
@pytest.mark.parametrize("previous", ["OK", "ALARM", "INSUFFICIENT_DATA"])
def test_aws_tables(m: int, buckets: str, treatment: str, expected: str, previous: str) -> None:
    rule = alarm(datapoints_to_alarm=m, treat_missing_data=treatment)
    result = evaluate(rule, points(buckets), previous, T)
    if expected == "keep":
        assert result.kept and result.state == previous and not result.transition
    else:
        assert not result.kept
        assert result.state == expected
        assert result.transition == (expected != previous)


PREMATURE = [  # spec §5.5.3 examples, treatment missing
    ("- - - - X", 3, "INSUFFICIENT_DATA"),
    ("- - - X -", 3, "INSUFFICIENT_DATA"),
    ("- - - X -", 2, "ALARM"),
    ("- - X - -", 3, "ALARM"),
    ("X - - - -", 3, "ALARM"),
    ("0 - X - -", 2, "OK"),
    ("- - 0 X -", 2, "ALARM"),
]


@pytest.mark.parametrize(
    "buckets, m, expected", PREMATURE, ids=[f"{b.replace(' ', '')}-M{m}" for b, m, _ in PREMATURE]
)
def test_premature_alarm_rule(buckets: str, m: int, expected: str) -> None:
    result = evaluate(alarm(datapoints_to_alarm=m), points(buckets), "OK", T)
    assert result.state == expected


def test_premature_reason() -> None:
    result = evaluate(alarm(), points("- - X - -"), "OK", T)
    assert "premature-alarm rule" in result.reason
    assert "has stood for 3 periods" in result.reason


def test_isolated_breach_over_six_evaluations() -> None:
    """§5.5.5: one breach with missing and M = N = 3."""
    rule = alarm(period=60)
    breach = [Datapoint(T - 60_000, BREACH, 1.0)]
    state = "INSUFFICIENT_DATA"
    seen = []
    for step in range(6):
        result = evaluate(rule, breach, state, T + step * 60_000)
        state = result.state
        seen.append(state)
    assert seen == [
        "INSUFFICIENT_DATA",
        "INSUFFICIENT_DATA",
        "ALARM",
        "ALARM",
        "ALARM",
        "INSUFFICIENT_DATA",
    ]


def test_look_back_holds_alarm_with_not_breaching() -> None:
    """§5.5.5: N = 1, notBreaching, stays in ALARM while the breach is inside the range."""
    rule = alarm(period=60, evaluation_periods=1, treat_missing_data="notBreaching")
    breach = [Datapoint(T - 60_000, BREACH, 1.0)]
    seen = [evaluate(rule, breach, "ALARM", T + step * 60_000).state for step in range(4)]
    assert seen == ["ALARM", "ALARM", "ALARM", "OK"]


def test_evaluation_range_n_disables_look_back() -> None:
    rule = alarm(
        period=60, evaluation_periods=1, treat_missing_data="notBreaching", evaluation_range=1
    )
    breach = [Datapoint(T - 60_000, BREACH, 1.0)]
    assert evaluate(rule, breach, "OK", T).state == "ALARM"
    assert evaluate(rule, breach, "ALARM", T + 60_000).state == "OK"


def test_heartbeat_with_breaching_needs_three_empty_periods() -> None:
    rule = alarm(
        period=60, evaluation_periods=1, comparison="<", threshold=1, treat_missing_data="breaching"
    )
    good = [Datapoint(T - 60_000, 1.0, 1.0)]
    seen = [evaluate(rule, good, "OK", T + step * 60_000).state for step in range(4)]
    assert seen == ["OK", "OK", "OK", "ALARM"]


M_OF_N = [  # (N, M, newest-last values, expected): case 1 ignores missing data
    (5, 3, "X X X 0 0", "ALARM"),
    (5, 3, "X X 0 0 0", "OK"),
    (5, 3, "0 X 0 X X", "ALARM"),
    (5, 5, "X X X X 0", "OK"),
    (1, 1, "X", "ALARM"),
    (1, 1, "0", "OK"),
]


@pytest.mark.parametrize("n, m, values, expected", M_OF_N)
def test_m_out_of_n(n: int, m: int, values: str, expected: str) -> None:
    rule = alarm(
        period=60, evaluation_periods=n, datapoints_to_alarm=m, treat_missing_data="ignore"
    )
    result = evaluate(rule, points(values, 60), "INSUFFICIENT_DATA", T)
    assert result.state == expected
    assert len(result.datapoints_used) == n


def test_case_one_reaches_past_missing_buckets() -> None:
    rule = alarm(period=60, evaluation_periods=3)
    result = evaluate(rule, points("X X - X -", 60), "OK", T)
    assert result.state == "ALARM"
    assert [p.start_ms for p in result.datapoints_used] == [T - 120_000, T - 240_000, T - 300_000]


OPERATORS = [
    ("GreaterThanThreshold", (80.0, False), (80.5, True), (79.5, False)),
    ("GreaterThanOrEqualToThreshold", (80.0, True), (80.5, True), (79.5, False)),
    ("LessThanThreshold", (80.0, False), (80.5, False), (79.5, True)),
    ("LessThanOrEqualToThreshold", (80.0, True), (80.5, False), (79.5, True)),
    (">", (80.0, False), (80.5, True), (79.5, False)),
    (">=", (80.0, True), (80.5, True), (79.5, False)),
    ("<", (80.0, False), (80.5, False), (79.5, True)),
    ("<=", (80.0, True), (80.5, False), (79.5, True)),
]


@pytest.mark.parametrize("operator, at, above, below", OPERATORS)
def test_operators_at_and_around_threshold(operator: str, at: Any, above: Any, below: Any) -> None:
    rule = alarm(period=60, evaluation_periods=1, comparison=operator)
    for value, breaching in (at, above, below):
        result = evaluate(rule, [Datapoint(T - 60_000, value, 1.0)], "OK", T)
        assert result.state == ("ALARM" if breaching else "OK"), value


LOW_SAMPLE_LIMITS = [
    ("p99", 1000),
    ("p90", 100),
    ("p10", 100),
    ("p50", 20),
    ("p99.9", 10000),
    ("p0", None),
    ("p100", None),
    ("Average", None),
]


@pytest.mark.parametrize("statistic, limit", LOW_SAMPLE_LIMITS)
def test_low_sample_limits(statistic: str, limit: int | None) -> None:
    assert low_sample_limit(parse_statistic(statistic)) == limit


@pytest.mark.parametrize(
    "mode, samples, expected",
    [
        ("ignore", 99, "keep"),
        ("ignore", 100, "ALARM"),  # exactly 100 samples are enough for p90
        ("evaluate", 5, "ALARM"),
    ],
)
def test_low_sample_percentile(mode: str, samples: int, expected: str) -> None:
    rule = alarm(
        period=60, evaluation_periods=2, statistic="p90", evaluate_low_sample_count_percentile=mode
    )
    data = [Datapoint(T - 60_000, BREACH, float(samples)), Datapoint(T - 120_000, BREACH, 500.0)]
    result = evaluate(rule, data, "OK", T)
    if expected == "keep":
        assert result.kept and result.state == "OK"
        assert (
            result.reason
            == f"Percentile evaluation skipped: {samples} samples, fewer than the 100 needed for p90."
        )
    else:
        assert result.state == expected and not result.kept


def test_low_sample_in_case_three_uses_every_real_datapoint() -> None:
    rule = alarm(
        period=60,
        evaluation_periods=3,
        statistic="p90",
        evaluate_low_sample_count_percentile="ignore",
    )
    data = [Datapoint(T - 300_000, GOOD, 3.0), Datapoint(T - 60_000, BREACH, 500.0)]
    assert evaluate(rule, data, "ALARM", T).kept


def test_reason_and_reason_data() -> None:
    rule = alarm(
        period=60, evaluation_periods=3, metric={"namespace": "NS", "name": "M", "unit": "Percent"}
    )
    data = [
        Datapoint(T - 60_000, 91.0, 12.0),
        Datapoint(T - 120_000, 95.5, 12.0),
        Datapoint(T - 180_000, 90.2, 12.0),
    ]
    result = evaluate(rule, data, "OK", T)
    assert result.state == "ALARM" and result.transition
    assert result.reason == (
        "Threshold Crossed: 3 out of the last 3 datapoints [91.0 (01/01/26 10:04:00), 95.5 (01/01/26 10:03:00), "
        "90.2 (01/01/26 10:02:00)] were greater than the threshold (80.0) (minimum 3 datapoints for OK -> ALARM transition)."
    )
    assert result.reason_data == {
        "version": "1.0",
        "queryDate": "2026-01-01T10:05:00.000+0000",
        "startDate": "2026-01-01T10:02:00.000+0000",
        "statistic": "Average",
        "period": 60,
        "unit": "Percent",
        "recentDatapoints": [90.2, 95.5, 91.0],
        "threshold": 80.0,
        "evaluatedDatapoints": [
            {"timestamp": "2026-01-01T10:04:00.000+0000", "sampleCount": 12.0, "value": 91.0},
            {"timestamp": "2026-01-01T10:03:00.000+0000", "sampleCount": 12.0, "value": 95.5},
            {"timestamp": "2026-01-01T10:02:00.000+0000", "sampleCount": 12.0, "value": 90.2},
        ],
    }
    assert result.breach is not None and result.breach.delta == pytest.approx(11.0)


@pytest.mark.parametrize(
    "treatment, reason",
    [
        ("missing", "Insufficient Data: 3 datapoints were unknown."),
        (
            "breaching",
            "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were treated as [Breaching].",
        ),
        (
            "notBreaching",
            "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were treated as [NonBreaching].",
        ),
    ],
)
def test_no_data_reasons(treatment: str, reason: str) -> None:
    result = evaluate(alarm(treat_missing_data=treatment), [], "OK", T)
    assert result.reason == reason


def test_extended_statistic_in_reason_data() -> None:
    rule = alarm(period=60, evaluation_periods=1, statistic="p99")
    data = evaluate(rule, [Datapoint(T - 60_000, 1.0, 5000.0)], "OK", T).reason_data
    assert data["extendedStatistic"] == "p99" and "statistic" not in data


def test_data_outside_the_range_is_ignored() -> None:
    rule = alarm(period=60, evaluation_periods=1)
    data = [Datapoint(T, BREACH, 1.0), Datapoint(T - 10 * 60_000, BREACH, 1.0)]
    assert evaluate(rule, data, "OK", T).state == "INSUFFICIENT_DATA"


def test_cadence_and_anchor() -> None:
    assert cadence_s(alarm(period=10)) == 10
    assert cadence_s(alarm(period=300)) == 60
    daily = alarm(period=3600, evaluation_periods=30)
    assert cadence_s(daily) == 3600
    assert anchor_ms(daily, T) == T - 5 * 60_000


def test_math_alarm_datapoints() -> None:
    rule = alarm(
        metric=None,
        statistic=None,
        period=None,
        query=[
            {
                "id": "errors",
                "metric": {"namespace": "NS", "name": "E"},
                "statistic": "Sum",
                "period": 60,
            },
            {
                "id": "requests",
                "metric": {"namespace": "NS", "name": "R"},
                "statistic": "Sum",
                "period": 60,
            },
            {"id": "rate", "expression": "100 * errors / requests", "return": True},
        ],
        evaluation_periods=1,
        comparison=">=",
        threshold=2,
    )
    errors = [AlarmBucket(T - 60_000, 5.0, 1.0, "None")]
    requests = [
        AlarmBucket(T - 60_000, 100.0, 1.0, "None"),
        AlarmBucket(T - 120_000, 50.0, 1.0, "None"),
    ]
    data = alarm_datapoints(rule, [errors, requests], T)
    assert {(p.start_ms, p.value) for p in data} == {(T - 60_000, 5.0), (T - 120_000, 0.0)}
    result = evaluate(rule, data, "OK", T)
    assert result.state == "ALARM" and "statistic" not in result.reason_data
