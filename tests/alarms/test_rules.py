"""Rule files (spec §6): the §6.7 examples load; errors name file, line, column and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from alarms.rules import RulesError, load_rule_texts, load_rules_dir

EXAMPLES = Path(__file__).parent / "data" / "examples"

TARGET = """\
targets:
  oncall:
    type: webhook
    url: https://example.internal/hook
    secret: {env: SECRET}
"""

ALARM = """\
alarms:
  - name: cpu
    metric: {namespace: NS, name: CPU}
    statistic: Average
    period: 60s
    evaluation_periods: 3
    comparison: ">"
    threshold: 80
"""


def test_examples_load_cleanly() -> None:
    rules = load_rules_dir(EXAMPLES)
    assert list(rules.alarms) == [
        "web-high-cpu", "web-low-cpu", "api-error-rate", "api-latency-p99",
        "checkout-heartbeat", "deploy-in-progress", "maintenance-window",
    ]  # fmt: skip
    assert list(rules.composites) == ["checkout-unhealthy"]
    assert set(rules.targets) == {"oncall", "web-scale-out", "web-scale-in"}
    cpu = rules.alarms["web-high-cpu"]
    assert (cpu.comparison, cpu.period_s, cpu.n, cpu.m, cpu.range_length) == (
        "GreaterThanThreshold",
        60,
        5,
        3,
        7,
    )
    assert rules.alarms["web-low-cpu"].period_s == 300
    assert rules.alarms["api-error-rate"].is_math and rules.alarms["api-error-rate"].period_s == 60
    assert rules.composites["checkout-unhealthy"].parsed_rule.children == (
        "api-error-rate", "api-latency-p99", "checkout-heartbeat", "deploy-in-progress",
    )  # fmt: skip
    assert rules.files["oncall"].endswith("example1.yaml")


# (yaml, line, column, field, message fragment)
ERRORS = [
    (
        ALARM.replace("threshold: 80", "treshold: 80"),
        8,
        5,
        "alarms[0].treshold",
        "unknown key 'treshold'; did you mean 'threshold'?",
    ),
    (ALARM.replace("threshold: 80", 'threshold: "80"'), 8, 16, "alarms[0].threshold", "valid"),
    (
        ALARM.replace("evaluation_periods: 3", "evaluation_periods: 3\n    datapoints_to_alarm: 4"),
        7,
        26,
        "alarms[0].datapoints_to_alarm",
        "may not exceed",
    ),
    (ALARM.replace("period: 60s", "period: 90s"), 5, 13, "alarms[0].period", "multiple of 60s"),
    (ALARM.replace("period: 60s", "period: soon"), 5, 13, "alarms[0].period", "not a duration"),
    (
        ALARM.replace("statistic: Average", "statistic: Mean"),
        4,
        16,
        "alarms[0].statistic",
        "unknown statistic",
    ),
    (
        ALARM.replace("    statistic: Average\n", ""),
        2,
        5,
        "alarms[0].statistic",
        "statistic is required",
    ),
    (
        ALARM.replace('    comparison: ">"\n', ""),
        2,
        5,
        "alarms[0].comparison",
        "missing required key 'comparison'",
    ),
    (ALARM.replace('">"', "Bigger"), 7, 17, "alarms[0].comparison", "Input should be"),
    (ALARM.replace('">"', "LessThanLowerThreshold"), 7, 17, "alarms[0].comparison", "not support"),
    (
        ALARM + "    treat_missing_data: sometimes\n",
        9,
        25,
        "alarms[0].treat_missing_data",
        "Input should be",
    ),
    (
        ALARM.replace("period: 60s", "period: 5m").replace(
            "evaluation_periods: 3", "evaluation_periods: 289"
        ),
        6,
        25,
        "alarms[0].evaluation_periods",
        "evaluation_window",
    ),
    (ALARM + "    evaluation_range: 30\n", 9, 23, "alarms[0].evaluation_range", "from 3 to 23"),
    (
        ALARM
        + "    query: [{id: m1, metric: {namespace: NS, name: CPU}, statistic: Sum, period: 60, return: true}]\n",
        2,
        5,
        "alarms[0]",
        "exactly one of `metric` and `query`",
    ),
    (
        ALARM + "    evaluate_low_sample_count_percentile: ignore\n",
        9,
        43,
        "alarms[0].evaluate_low_sample_count_percentile",
        "percentiles only",
    ),
    (
        ALARM + "    actions: {alarm: [pager]}\n",
        9,
        23,
        "alarms[0].actions.alarm[0]",
        "unknown target 'pager'",
    ),
    (
        ALARM.replace("name: cpu", "name: cpu\n    name: gpu"),
        3,
        5,
        "alarms[0].name",
        "duplicate key 'name'",
    ),
    (
        ALARM
        + "  - name: cpu\n    metric: {namespace: NS, name: X}\n    statistic: Sum\n    period: 60\n    evaluation_periods: 1\n    comparison: '>'\n    threshold: 1\n",
        9,
        11,
        "alarms[1].name",
        "already taken",
    ),
    ("alarms: [\n", 2, 1, "", "invalid YAML"),
    (
        TARGET.replace("secret: {env: SECRET}", "secret: hunter2"),
        5,
        13,
        "targets.oncall.secret",
        "never written inline",
    ),
    (
        TARGET.replace("secret: {env: SECRET}", "secret: {env: A, file: /b}"),
        5,
        13,
        "targets.oncall.secret",
        "exactly one",
    ),
    (TARGET.replace("type: webhook", "type: pager"), 3, 5, "targets.oncall", "tag"),
    (
        "composites:\n  - name: c\n    rule: ALARM(a) XOR ALARM(b)\n",
        3,
        20,
        "composites[0].rule",
        "unexpected 'XOR'",
    ),
    (
        "composites:\n  - name: c\n    rule: ALARM(nope)\n",
        3,
        11,
        "composites[0].rule",
        "not an alarm",
    ),
    (
        "composites:\n  - name: c\n    rule: ALARM(d)\n  - name: d\n    rule: OK(c)\n",
        3,
        11,
        "composites[0].rule",
        "cycle: c -> d -> c",
    ),
    (
        "composites:\n  - name: c\n    rule: ALARM(c)\n    suppression: {suppressor: m}\n",
        4,
        18,
        "composites[0].suppression.wait_period",
        "missing required key 'wait_period'",
    ),
    (
        "silences:\n  - id: s\n    match: {alarm: 'db-*'}\n    starts: 2026-01-10T22:00:00Z\n    ends: 2026-01-10T20:00:00Z\n",
        5,
        11,
        "silences[0].ends",
        "after",
    ),
    ("alerts: []\n", 1, 1, "alerts", "unknown key 'alerts'; did you mean 'alarms'?"),
]


@pytest.mark.parametrize(
    "text, line, column, field, fragment",
    ERRORS,
    ids=[f"{i}-{e[3] or 'file'}" for i, e in enumerate(ERRORS)],
)
def test_errors_name_file_line_column_and_field(
    text: str, line: int, column: int, field: str, fragment: str
) -> None:
    with pytest.raises(RulesError) as info:
        load_rule_texts([("rules/web.yaml", text)])
    issues = info.value.issues
    assert any(fragment in issue.message for issue in issues), issues
    issue = next(i for i in issues if fragment in i.message)
    assert (issue.file, issue.line, issue.column, issue.field) == (
        "rules/web.yaml",
        line,
        column,
        field,
    )
    assert str(issue).startswith(f"rules/web.yaml:{line}:{column}: ")


def test_scaling_hook_only_in_alarm_or_ok_of_metric_alarms() -> None:
    scaling = (
        "targets:\n  up:\n    type: scaling\n    url: http://s/adjust\n    secret: {env: S}\n"
        "    group: web\n    adjustment: {type: change_in_capacity, value: 1}\n"
    )
    composite = "composites:\n  - name: c\n    rule: ALARM(cpu)\n    actions: {alarm: [up]}\n"
    with pytest.raises(RulesError, match="cannot be used in a composite"):
        load_rule_texts([("a.yaml", scaling), ("b.yaml", ALARM), ("c.yaml", composite)])
    with pytest.raises(RulesError, match="insufficient_data list"):
        load_rule_texts(
            [("a.yaml", scaling), ("b.yaml", ALARM + "    actions: {insufficient_data: [up]}\n")]
        )
    load_rule_texts(
        [("a.yaml", scaling), ("b.yaml", ALARM + "    actions: {alarm: [up], ok: [up]}\n")]
    )


def test_names_unique_across_files_and_api() -> None:
    with pytest.raises(RulesError) as info:
        load_rule_texts([("a.yaml", ALARM), ("b.yaml", ALARM)])
    assert "also defined in a.yaml" in info.value.issues[0].message
    assert info.value.issues[0].file == "b.yaml"
    with pytest.raises(RulesError, match="an API alarm"):
        load_rule_texts([("a.yaml", ALARM)], reserved_names={"cpu"})


def test_directory_loading_is_atomic(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ALARM)
    (tmp_path / "b.yaml").write_text(TARGET)
    assert set(load_rules_dir(tmp_path).alarms) == {"cpu"}
    (tmp_path / "c.yaml").write_text("alarms: [{name: x}]\n")
    with pytest.raises(RulesError) as info:
        load_rules_dir(tmp_path)
    assert {i.file for i in info.value.issues} == {str(tmp_path / "c.yaml")}
    assert info.value.details["errors"][0]["line"] == 1


def test_every_problem_of_every_file_is_reported() -> None:
    bad = ALARM.replace("threshold: 80", "threshold: x")
    with pytest.raises(RulesError) as info:
        load_rule_texts([("a.yaml", bad), ("b.yaml", "alerts: 1\n")])
    assert {i.file for i in info.value.issues} == {"a.yaml", "b.yaml"}


def test_math_alarm_checks() -> None:
    math = """\
alarms:
  - name: rate
    query:
      - {id: e, metric: {namespace: NS, name: E}, statistic: Sum, period: 60}
      - {id: r, metric: {namespace: NS, name: R}, statistic: Sum, period: 300}
      - {id: x, expression: "e / nope", return: true}
    evaluation_periods: 1
    comparison: ">"
    threshold: 1
"""
    with pytest.raises(RulesError) as info:
        load_rule_texts([("m.yaml", math)])
    messages = [i.message for i in info.value.issues]
    assert any("mixed_periods" in m for m in messages)
    assert any("unknown id 'nope'" in m for m in messages)
    expression = next(i for i in info.value.issues if "nope" in i.message)
    assert (expression.line, expression.field) == (6, "alarms[0].query[2].expression")
