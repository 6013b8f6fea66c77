"""Promtool-style rule unit tests (``watchkeep alarms test``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alarms.rules import RulesError
from alarms.testing import parse_values, run_test_file

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "text, values",
    [
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("_ 4", [None, 4.0]),
        ("_x2", [None, None, None]),
        ("5x2", [5.0, 5.0, 5.0]),
        ("1+2x3", [1.0, 3.0, 5.0, 7.0]),
        ("10-1x2 _", [10.0, 9.0, 8.0, None]),
        ("-1.5", [-1.5]),
    ],
)
def test_parse_values(text: str, values: list[float | None]) -> None:
    assert parse_values(text) == values


def test_parse_values_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_values("1 two")


def test_run_test_file() -> None:
    report = run_test_file(DATA / "checkout_test.yaml")
    first, second, third = report.cases
    assert first.passed, first.failures
    assert second.passed, second.failures
    assert third.failures == ["at 1970-01-01T00:01:00Z: checkout-heartbeat is ALARM, expected OK"]
    assert not report.passed


def test_invalid_test_file_names_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("rule_files: []\ntests:\n  - evaluations: []\n    expected: {}\n")
    with pytest.raises(RulesError) as info:
        run_test_file(path)
    issue = info.value.issues[0]
    assert (issue.line, issue.column, issue.field) == (4, 5, "tests[0].expected")
