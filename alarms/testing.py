"""Promtool-style unit tests for alarm rules (``watchkeep alarms test FILE``, issue 6).

A test file is YAML::

    rule_files: [rules/]                 # files or directories, relative to this test file
    tests:
      - name: heartbeat alarms after four silent minutes
        start: 2026-01-01T00:00:00Z      # time of the first input value (default: the epoch)
        interval: 1m                     # spacing of input values (default 1m)
        input_series:
          - metric: {namespace: Shop/Workers, name: Heartbeat, dimensions: {Worker: checkout}}
            unit: Count                  # optional unit of the samples (default None)
            values: "1 1 1 _x5"
        initial_states: {deploy-in-progress: OK}   # default INSUFFICIENT_DATA
        evaluations:
          - at: 3m                       # offset from start, or an RFC 3339 time
            expect: {checkout-heartbeat: OK}
          - at: 8m
            expect: {checkout-heartbeat: ALARM, checkout-unhealthy: ALARM}

``values`` uses promtool's expanding notation: ``7`` one value; ``_`` nothing published;
``axn`` the value ``a`` n+1 times; ``a+bxn`` / ``a-bxn`` n+1 values from ``a`` in steps of
``b``; ``_xn`` n+1 intervals with nothing. Value ``i`` is one sample published at
``start + i * interval``; several series may name the same metric, and their samples add up.

The run is a simulation of the server's scheduler: every alarm is evaluated at each of its
evaluation instants (spec §5.3) after ``start`` up to each ``at``, starting from
``initial_states``; after each tick, composites are evaluated in dependency order. An ``at``
must fall on the tick grid (a multiple of 60 s, or of 10 s with high-resolution alarms).
Only simple statistics and percentiles can be computed from test input. Limits keep a run
to seconds: a test's series hold at most 100,000 values, its last ``at`` is at most 31 days
after its ``start``, it evaluates metric alarms at most 100,000 times (alarms times ticks),
and a case whose alarms would read more than 10 million samples fails with a message. No I/O except
reading the test and rule files.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from alarms.evaluate import anchor_ms, cadence_s, evaluate, evaluate_composite, evaluation_error
from alarms.reads import alarm_datapoints, alarm_reads
from alarms.rule_source import Path_, _pydantic_issues, _Source, read_rule_text
from alarms.rules import (
    MetricSpec,
    RuleFile,
    RuleIssue,
    RulesError,
    RuleSet,
    load_rules_path,
    parse_duration,
)
from core.errors import WatchkeepError
from query.metrics.alarm_reads import AlarmBucket, AlarmRead
from query.metrics.statistic import Percentile, Simple, parse_statistic

__all__ = [
    "MAX_EVALUATIONS",
    "MAX_HORIZON_S",
    "MAX_VALUES",
    "CaseResult",
    "TestReport",
    "count_values",
    "parse_values",
    "run_test_file",
]

_TOKEN = re.compile(
    r"(?P<missing>_)(?:x(?P<mcount>[0-9]+))?"
    r"|(?P<start>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"(?:(?P<sign>[+-])(?P<step>[0-9]+(?:\.[0-9]*)?))?(?:x(?P<count>[0-9]+))?"
)
Duration = Annotated[int, BeforeValidator(parse_duration)]
MAX_VALUES = 100_000  # in all input series of a test
MAX_HORIZON_S = 31 * 86_400  # from a test's start to its last evaluation
MAX_EVALUATIONS = 100_000  # of metric alarms in a test case: some seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class InputSeries(_Model):
    metric: MetricSpec
    unit: str = "None"
    values: str


class Check(_Model):
    at: Duration | datetime
    expect: dict[str, str]


class TestCase(_Model):
    name: str = ""
    start: datetime | None = None
    interval: Duration = 60
    input_series: list[InputSeries] = Field(default_factory=list)
    initial_states: dict[str, str] = Field(default_factory=dict)
    evaluations: list[Check]


class TestFile(_Model):
    rule_files: list[str]
    tests: list[TestCase]


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class TestReport:
    cases: list[CaseResult]

    @property
    def passed(self) -> bool:
        return all(case.passed for case in self.cases)


def count_values(text: str) -> int:
    """How many values ``parse_values`` expands ``text`` to, without expanding it."""
    total = 0
    for token in text.split():
        match = _match(token)
        repeat = match.group("mcount") if match.group("missing") else match.group("count")
        total += int(repeat or 0) + 1
    return total


def _match(token: str) -> re.Match[str]:
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ValueError(f"cannot read {token!r}: use 7, _, _x3, 1x4, 1+2x3 or 10-1x5")
    return match


def parse_values(text: str) -> list[float | None]:
    """Expand promtool notation; None is an interval with nothing published. At most
    ``MAX_VALUES`` values (``ValueError``)."""
    total = count_values(text)
    if total > MAX_VALUES:
        raise ValueError(f"expands to {total:,} values; a series holds at most {MAX_VALUES:,}")
    out: list[float | None] = []
    for token in text.split():
        match = _match(token)
        if match.group("missing"):
            out.extend([None] * (int(match.group("mcount") or 0) + 1))
            continue
        start = float(match.group("start"))
        step = float(match.group("step") or 0) * (-1 if match.group("sign") == "-" else 1)
        count = match.group("count")
        if count is None:
            if match.group("sign"):
                raise ValueError(f"cannot read {token!r}: a step needs a count, e.g. 1+2x3")
            out.append(start)
            continue
        out.extend(start + step * i for i in range(int(count) + 1))
    return out


def run_test_file(path: str | Path) -> TestReport:
    """Run every test of a test file; raise ``RulesError`` when it or its rules are invalid,
    or when a test is larger than the limits (``MAX_VALUES``, ``MAX_HORIZON_S``)."""
    test_path = Path(path)
    text = read_rule_text(test_path)
    issues: list[RuleIssue] = []
    source = _Source.compose(str(test_path), text, issues)
    if source is None:
        raise RulesError(issues)
    data = source.data if source.data is not None else {}
    if isinstance(data, dict) and not {"rule_files", "tests"} & data.keys():
        if set(RuleFile.model_fields) & data.keys():
            message = f"{test_path} is a rule file; a test file has rule_files and tests"
            raise RulesError([RuleIssue(str(test_path), 1, 1, "", message)])
    try:
        spec = TestFile.model_validate(data)
    except ValidationError as exc:
        raise RulesError(_pydantic_issues(source, exc)) from None
    limits = _check_limits(source, spec)
    if limits:
        raise RulesError(limits)
    rulesets = [load_rules_path(test_path.parent / name) for name in spec.rule_files]
    ruleset = _combine(rulesets)
    work = _check_work(source, spec, ruleset)
    if work:
        raise RulesError(work)
    cases: list[CaseResult] = []
    for index, case in enumerate(spec.tests):
        result = CaseResult(case.name or f"test {index + 1}")
        try:
            _run_case(ruleset, case, result)
        except (WatchkeepError, ValueError) as exc:
            result.failures.append(f"error: {getattr(exc, 'message', exc)}")
        cases.append(result)
    return TestReport(cases)


def _check_limits(source: _Source, spec: TestFile) -> list[RuleIssue]:
    """Series and horizons a simulation can run in seconds, checked before it runs."""
    issues: list[RuleIssue] = []
    for index, case in enumerate(spec.tests):
        total = 0
        for number, series in enumerate(case.input_series):
            where: Path_ = ("tests", index, "input_series", number, "values")
            try:
                total += count_values(series.values)
            except ValueError as exc:
                issues.append(source.issue(where, str(exc)))
                continue
            if total > MAX_VALUES:
                message = f"the series of a test hold at most {MAX_VALUES:,} values; up to here "
                issues.append(source.issue(where, message + f"they hold {total:,}"))
                break
        start_ms = _ms(case.start) if case.start is not None and case.start.tzinfo else 0
        for number, check in enumerate(case.evaluations):
            if isinstance(check.at, datetime) and check.at.tzinfo is None:
                continue  # refused with its own message when the case runs
            if _at(check.at, start_ms) - start_ms > MAX_HORIZON_S * 1_000:
                where = ("tests", index, "evaluations", number, "at")
                message = (
                    f"more than {MAX_HORIZON_S // 86_400} days after the start of the test "
                    f"({_show(start_ms)}), the longest a test may simulate"
                    + ("; give the test a `start`" if case.start is None else "")
                )
                issues.append(source.issue(where, message))
    return issues


def _check_work(source: _Source, spec: TestFile, ruleset: RuleSet) -> list[RuleIssue]:
    """At most ``MAX_EVALUATIONS`` alarm evaluations a test case (about 75 µs each)."""
    issues: list[RuleIssue] = []
    for index, case in enumerate(spec.tests):
        if not case.evaluations or (case.start is not None and case.start.tzinfo is None):
            continue
        start_ms = _ms(case.start) if case.start is not None else 0
        number, last = max(enumerate(case.evaluations), key=lambda c: _at(c[1].at, start_ms))
        horizon_ms = _at(last.at, start_ms) - start_ms
        count = sum(horizon_ms // (cadence_s(alarm) * 1_000) for alarm in ruleset.alarms.values())
        if count > MAX_EVALUATIONS:
            message = (
                f"the test would evaluate its {len(ruleset.alarms)} metric alarms "
                f"{count:,} times until here; a test may evaluate them at most "
                f"{MAX_EVALUATIONS:,} times (end it sooner or give fewer rule files)"
            )
            issues.append(source.issue(("tests", index, "evaluations", number, "at"), message))
    return issues


def _combine(rulesets: Sequence[RuleSet]) -> RuleSet:
    if len(rulesets) == 1:
        return rulesets[0]
    combined = RuleSet()
    for ruleset in rulesets:
        combined.alarms.update(ruleset.alarms)
        combined.composites.update(ruleset.composites)
        combined.targets.update(ruleset.targets)
    return combined


class _Budget:
    """The samples the alarms of one test case read, summed over their evaluations: a case
    that would read more fails with a message instead of running for minutes."""

    LIMIT = 10_000_000

    def __init__(self) -> None:
        self.spent = 0

    def spend(self, units: int) -> None:
        self.spent += units
        if self.spent > self.LIMIT:
            raise ValueError(
                f"the alarms would read more than {self.LIMIT:,} samples in this test; "
                "use fewer values or a larger interval"
            )


@dataclass(frozen=True, slots=True)
class _Sample:
    ts_ms: int
    value: float
    unit: str


def _run_case(ruleset: RuleSet, case: TestCase, result: CaseResult) -> None:
    start_ms = _ms(case.start) if case.start is not None else 0
    samples: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[_Sample]] = {}
    for series in case.input_series:
        key = _key(series.metric.namespace, series.metric.name, series.metric.dimensions)
        for i, value in enumerate(parse_values(series.values)):
            if value is not None:
                ts = start_ms + i * case.interval * 1_000
                samples.setdefault(key, []).append(_Sample(ts, value, series.unit))
    for series_samples in samples.values():
        series_samples.sort(key=lambda sample: sample.ts_ms)  # stable: series order kept
    budget = _Budget()
    for name in case.initial_states:
        if name not in ruleset.alarms and name not in ruleset.composites:
            raise ValueError(f"initial_states names {name!r}, which is not an alarm")
    states: dict[str, str] = {
        name: case.initial_states.get(name, "INSUFFICIENT_DATA")
        for name in [*ruleset.alarms, *ruleset.composites]
    }
    tick_s = 10 if any(cadence_s(a) == 10 for a in ruleset.alarms.values()) else 60
    tick_ms = tick_s * 1_000
    now = start_ms - start_ms % tick_ms
    evaluated_composites: set[str] = set()
    for check in sorted(case.evaluations, key=lambda c: _at(c.at, start_ms)):
        at = _at(check.at, start_ms)
        if at % tick_ms:
            raise ValueError(f"evaluation time {at} ms is not on the {tick_s} s tick grid")
        while now < at:
            now += tick_ms
            _tick(ruleset, samples, states, now, evaluated_composites, budget)
        for name, expected in check.expect.items():
            if name not in states:
                result.failures.append(f"at {_show(at)}: {name!r} is not an alarm")
            elif states[name] != expected:
                result.failures.append(
                    f"at {_show(at)}: {name} is {states[name]}, expected {expected}"
                )


def _tick(
    ruleset: RuleSet,
    samples: Mapping[tuple[str, str, tuple[tuple[str, str], ...]], list[_Sample]],
    states: dict[str, str],
    now: int,
    evaluated: set[str],
    budget: _Budget,
) -> None:
    changed = False
    for name, alarm in ruleset.alarms.items():
        if now % (cadence_s(alarm) * 1_000):
            continue
        anchor = anchor_ms(alarm, now)
        buckets = [_buckets(read, samples, anchor, budget) for read in alarm_reads(alarm)]
        try:
            points = alarm_datapoints(alarm, buckets, now)
            outcome = evaluate(alarm, points, states[name], now)
        except WatchkeepError as exc:
            outcome = evaluation_error(states[name], exc.message)
        if outcome.transition:
            changed = True
        states[name] = outcome.state
    for name in ruleset.composite_order():
        if changed or name not in evaluated:
            outcome = evaluate_composite(ruleset.composites[name], states, states[name], now)
            evaluated.add(name)
            if outcome.transition:
                changed = True
            states[name] = outcome.state


def _buckets(
    read: AlarmRead,
    samples: Mapping[tuple[str, str, tuple[tuple[str, str], ...]], list[_Sample]],
    anchor: int,
    budget: _Budget,
) -> list[AlarmBucket]:
    period_ms = read.period_s * 1_000
    start = anchor - read.buckets * period_ms
    grouped: dict[int, list[_Sample]] = {}
    series = samples.get(_key(read.namespace, read.metric_name, read.dimensions), [])
    first = bisect_left(series, start, key=lambda sample: sample.ts_ms)
    end = bisect_left(series, anchor, key=lambda sample: sample.ts_ms)
    budget.spend(end - first)
    for sample in series[first:end]:
        if read.unit is None or sample.unit == read.unit:
            bucket = start + (sample.ts_ms - start) // period_ms * period_ms
            grouped.setdefault(bucket, []).append(sample)
    out = []
    statistic = parse_statistic(read.statistic)
    for bucket in sorted(grouped):
        values = sorted(s.value for s in grouped[bucket])
        units = {s.unit for s in grouped[bucket]}
        unit = units.pop() if len(units) == 1 else "None"
        out.append(AlarmBucket(bucket, _statistic(statistic, values), len(values), unit))
    return out


def _statistic(statistic: object, values: list[float]) -> float:
    if isinstance(statistic, Simple):
        match statistic.text:
            case "SampleCount":
                return float(len(values))
            case "Sum":
                return math.fsum(values)
            case "Average":
                return math.fsum(values) / len(values)
            case "Minimum":
                return values[0]
            case _:
                return values[-1]
    if isinstance(statistic, Percentile):
        rank = max(1, -(-statistic.basis_points * len(values) // 10_000))
        return values[rank - 1]
    raise ValueError("alarm tests compute simple statistics and percentiles only")


def _key(
    namespace: str, name: str, dimensions: Mapping[str, str]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return namespace, name, tuple(sorted(dimensions.items()))


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("give times with a zone, e.g. 2026-01-01T00:00:00Z")
    return round(moment.timestamp() * 1_000)


def _at(at: int | datetime, start_ms: int) -> int:
    return _ms(at) if isinstance(at, datetime) else start_ms + at * 1_000


def _show(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
