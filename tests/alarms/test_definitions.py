"""API definitions put into running rules one at a time agree with a whole load of the same
rules: the same rule set when valid, the same problems when not."""

from __future__ import annotations

import re
from typing import Any

import pytest

from alarms.definitions import (
    AlarmInUse,
    load_all,
    put_alarm,
    put_silence,
    remove_alarm,
    remove_silence,
)
from alarms.rules import RulesError, RuleSet
from core.errors import NotFound

FILE = (
    "rules.yaml",
    """
alarms:
  - {name: cpu, metric: {namespace: N, name: cpu}, statistic: Average, period: 60s,
     evaluation_periods: 1, comparison: ">", threshold: 1}
composites:
  - {name: any, rule: ALARM(cpu)}
""",
)


def metric(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "metric": {"namespace": "N", "name": name},
        "statistic": "Maximum",
        "period": 60,
        "evaluation_periods": 1,
        "comparison": ">",
        "threshold": 1,
        **extra,
    }


def comp(name: str, rule: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "rule": rule, **extra}


BASE: dict[str, dict[str, Any]] = {
    "a1": {"kind": "metric", "alarm": metric("a1")},
    "a2": {"kind": "metric", "alarm": metric("a2")},
    "c1": {"kind": "composite", "alarm": comp("c1", "ALARM(a1)")},
    "c2": {"kind": "composite", "alarm": comp("c2", "ALARM(c1) OR ALARM(any)")},
}


def full(extra: dict[str, dict[str, Any]]) -> RuleSet:
    return load_all([FILE], {**BASE, **extra}, {})


def incremental(extra: dict[str, dict[str, Any]]) -> RuleSet:
    ruleset = load_all([FILE], {}, {})
    for definition in [*BASE.values(), *extra.values()]:
        ruleset = put_alarm(ruleset, definition["kind"], definition["alarm"])
    return ruleset


def problems(load: Any, extra: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(file, field, message) of each problem; the index of the put alarm among the API's is
    left out: a put's text holds that alarm alone (index 0), a whole load every API alarm."""
    with pytest.raises(RulesError) as caught:
        load(extra)
    return [
        (issue.file, re.sub(r"^(alarms|composites)\[\d+\]", r"\1[i]", issue.field), issue.message)
        for issue in caught.value.issues
    ]


INVALID = {
    "unknown-child": ("composite", comp("c3", "ALARM(a1) OR ALARM(nope)")),
    "unknown-suppressor": (
        "composite",
        comp(
            "c3",
            "ALARM(a1)",
            suppression={"suppressor": "zz", "wait_period": 0, "extension_period": 0},
        ),
    ),  # fmt: skip
    "cycle-through-replacement": ("composite", comp("c1", "ALARM(c2)")),
    "self-cycle": ("composite", comp("c3", "ALARM(c3) OR ALARM(a2)")),
    "unknown-target": ("metric", metric("a3", actions={"alarm": ["pager"]})),
    "name-of-a-file-alarm": ("metric", metric("cpu")),
    "name-of-a-file-composite": ("composite", comp("any", "ALARM(a1)")),
    "bad-field": ("metric", metric("a3", evaluation_periods="two")),
    "unknown-key": ("metric", metric("a3", treshold=1)),
    "rule-syntax": ("composite", comp("c3", "ALARM(a1) AND")),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_a_put_refuses_what_a_whole_load_refuses_with_the_same_messages(case: str) -> None:
    kind, document = INVALID[case]
    extra = {document["name"]: {"kind": kind, "alarm": document}}
    one = problems(incremental, extra)
    assert one == problems(full, extra)
    assert one and all(file in ("api", "rules.yaml") for file, _, _ in one)


def test_puts_one_by_one_build_the_rule_set_a_whole_load_builds() -> None:
    extra = {
        "a2": {"kind": "metric", "alarm": metric("a2", threshold=5)},  # replaced in place
        "c3": {"kind": "composite", "alarm": comp("c3", "ALARM(c2) AND NOT OK(cpu)")},
    }
    one, whole = incremental(extra), full(extra)
    assert list(one.alarms) == list(whole.alarms) == ["cpu", "a1", "a2"]
    assert list(one.composites) == list(whole.composites) == ["any", "c1", "c2", "c3"]
    assert one.alarms == whole.alarms and one.composites == whole.composites
    assert one.files == whole.files
    assert one.composite_order() == whole.composite_order()


def test_a_failed_put_leaves_the_rule_set_as_it_was() -> None:
    ruleset = incremental({})
    with pytest.raises(RulesError):
        put_alarm(ruleset, "composite", comp("c1", "ALARM(c2)"))
    assert ruleset.composites["c1"].rule == "ALARM(a1)"
    assert ruleset == incremental({})


def test_removing_refuses_referenced_and_unknown_alarms() -> None:
    ruleset = incremental({})
    with pytest.raises(AlarmInUse) as in_use:
        remove_alarm(ruleset, "c1")
    assert in_use.value.details == {"alarm": "c1", "composites": ["c2"]}
    with pytest.raises(NotFound):
        remove_alarm(ruleset, "nope")
    smaller = remove_alarm(remove_alarm(ruleset, "c2"), "c1")
    assert set(smaller.composites) == {"any"} and "c1" not in smaller.files
    assert smaller == load_all([FILE], {k: v for k, v in BASE.items() if k[0] == "a"}, {})


def test_silences_are_put_and_removed_by_id() -> None:
    window = {"match": {"alarm": "a*"}, "starts": "2030-01-01T00:00:00Z",
              "ends": "2030-01-02T00:00:00Z"}  # fmt: skip
    ruleset = put_silence(incremental({}), {"id": "s1", **window})
    ruleset = put_silence(ruleset, {"id": "s2", **window})
    ruleset = put_silence(ruleset, {"id": "s1", **window, "comment": "again"})
    assert [(s.id, s.comment) for s in ruleset.silences] == [("s1", "again"), ("s2", "")]
    with pytest.raises(RulesError):
        put_silence(ruleset, {"id": "s3", "match": {}, "starts": "no"})
    assert [s.id for s in remove_silence(ruleset, "s1").silences] == ["s2"]
