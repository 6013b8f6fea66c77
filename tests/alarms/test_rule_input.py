"""Rule and rule-test files given awkward input: alias bombs, self-referring aliases, large or
non-UTF-8 files, missing paths, empty files, unset secret variables, huge test series and
horizons. Each is refused (or warned about) at file:line in about a second, never hangs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alarms.definitions import rule_files
from alarms.engine import AlarmEngine
from alarms.rules import (
    MAX_RULE_FILE_BYTES,
    RulesError,
    load_rule_texts,
    load_rules_dir,
    load_rules_path,
)
from alarms.store import AlarmStore
from alarms.testing import parse_values, run_test_file
from tests.alarms.test_engine import CPU_ALARM, TARGETS, Env

EXAMPLES = Path(__file__).parent / "data" / "examples"


def bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refused(text: str, name: str = "r.yaml") -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_rule_texts([(name, text)])
    return [str(issue) for issue in caught.value.issues]


# ---- 1. alias expansion and file size


def test_a_billion_laughs_is_refused_at_once() -> None:
    started = time.monotonic()
    issues = refused(bomb())
    assert time.monotonic() - started < 2
    assert len(issues) == 1
    assert issues[0].startswith(
        "r.yaml:7:1: a6[0]: aliases expand this file by more than 1,000,000"
    )


def test_merge_keys_cannot_multiply_a_file() -> None:
    lines = ["b0: &b0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8, k8: 9}"]
    for level in range(1, 10):
        merges = ", ".join([f"*b{level - 1}"] * 9)
        lines.append(f"b{level}: &b{level} {{<<: [{merges}], own{level}: 1}}")
    started = time.monotonic()
    assert "aliases expand this file" in refused("\n".join(lines) + "\n")[0]
    assert time.monotonic() - started < 2


def test_a_few_shared_anchors_still_load() -> None:
    text = """\
targets:
  oncall: {type: webhook, url: https://example.internal/hook, secret: {env: SECRET}}
alarms:
  - name: cpu-a
    metric: &cpu {namespace: NS, name: CPU, dimensions: {Host: a}}
    statistic: Average
    period: 60s
    evaluation_periods: 3
    comparison: ">"
    threshold: 80
    actions: &page {alarm: [oncall], ok: [oncall]}
  - {name: cpu-b, metric: *cpu, statistic: Maximum, period: 60s, evaluation_periods: 3,
     comparison: ">", threshold: 90, actions: *page}
"""
    rules = load_rule_texts([("r.yaml", text)])
    assert sorted(rules.alarms) == ["cpu-a", "cpu-b"]


def test_deep_nesting_is_refused() -> None:
    text = "a:" + "".join(f"\n{'  ' * (depth + 1)}k:" for depth in range(80)) + " 1\n"
    (issue,) = refused(text)
    assert "nested more than 64 levels deep" in issue


def test_a_file_over_one_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("alarms: []\n" + "#" * MAX_RULE_FILE_BYTES)
    started = time.monotonic()
    with pytest.raises(RulesError) as caught:
        load_rules_path(big)
    assert time.monotonic() - started < 1
    assert str(caught.value.issues[0]) == (
        f"{big}:1:1: larger than 16,777,216 bytes (16 MiB), the limit of a file"
    )


# ---- 2. an alias inside its own anchor


@pytest.mark.parametrize(
    ("text", "where"),
    [("a: &a [*a]\n", "r.yaml:1:1: a[0]"), ("alarms: []\nx: &b {k: *b}\n", "r.yaml:2:8: x.k")],
)
def test_an_alias_inside_its_own_anchor_is_refused(text: str, where: str) -> None:
    (issue,) = refused(text)
    assert issue.startswith(f"{where}: an alias refers to the collection that contains it")


def test_a_self_referring_test_file_is_refused(tmp_path: Path) -> None:
    test_file = tmp_path / "t.yaml"
    test_file.write_text("rule_files: &a [*a]\ntests: []\n")
    with pytest.raises(RulesError, match="refers to the collection that contains it"):
        run_test_file(test_file)


# ---- 3. files that are not UTF-8, directories


def test_a_file_that_is_not_utf8_is_named_with_its_byte(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(CPU_ALARM)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"alarms:\n  - name: caf\xe9\n")
    for load in (load_rules_dir, load_rules_path):
        with pytest.raises(RulesError) as caught:
            load(tmp_path)
        assert [str(i) for i in caught.value.issues] == [
            f"{binary}:2:14: file {binary} is not UTF-8 (byte 21)"
        ]
    with pytest.raises(RulesError, match="is not UTF-8"):
        rule_files(tmp_path)


def test_a_test_file_that_is_a_directory_or_binary(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="is a directory, not a file"):
        run_test_file(tmp_path)
    binary = tmp_path / "t.yaml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(RulesError, match=r"is not UTF-8 \(byte 0\)"):
        run_test_file(binary)


# ---- 4. test series and horizons


def write_test(tmp_path: Path, body: str) -> Path:
    test_file = tmp_path / "t.yaml"
    test_file.write_text(f"rule_files: [{EXAMPLES}]\ntests:\n{body}")
    return test_file


def test_a_huge_series_and_horizon_are_refused_before_running(tmp_path: Path) -> None:
    test_file = write_test(
        tmp_path,
        """\
  - input_series:
      - metric: {namespace: Shop/Workers, name: Heartbeat, dimensions: {Worker: checkout}}
        values: "1x999999999"
    evaluations:
      - at: 99999999999d
        expect: {checkout-heartbeat: OK}
""",
    )
    started = time.monotonic()
    with pytest.raises(RulesError) as caught:
        run_test_file(test_file)
    assert time.monotonic() - started < 2
    values, at = (str(issue) for issue in caught.value.issues)
    assert values.startswith(f"{test_file}:5:17: tests[0].input_series[0].values: the series")
    assert "at most 100,000 values" in values
    assert at.startswith(f"{test_file}:7:13: tests[0].evaluations[0].at: more than 31 days")
    with pytest.raises(ValueError, match="at most 100,000"):
        parse_values("1x999999999")


def test_too_many_alarm_evaluations_are_refused(tmp_path: Path) -> None:
    test_file = write_test(
        tmp_path,
        """\
  - evaluations:
      - at: 30d
        expect: {checkout-heartbeat: OK}
""",
    )
    with pytest.raises(RulesError, match="at most 100,000 times"):
        run_test_file(test_file)


def test_a_test_reading_too_many_samples_fails_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("alarms.testing._Budget.LIMIT", 1_000)
    test_file = write_test(
        tmp_path,
        """\
  - interval: 1s
    input_series:
      - metric: {namespace: Shop/Workers, name: Heartbeat, dimensions: {Worker: checkout}}
        values: "1x3000"
    evaluations:
      - at: 1h
        expect: {checkout-heartbeat: OK}
""",
    )
    (case,) = run_test_file(test_file).cases
    assert case.failures == [
        "error: the alarms would read more than 1,000 samples in this test; "
        "use fewer values or a larger interval"
    ]


# ---- 5. a missing rules path; a single file


def test_a_missing_rules_path_is_an_error_when_named(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    assert rule_files(missing) == []  # the default <data-dir>/rules may not exist
    for load in (
        lambda: rule_files(missing, required=True),
        lambda: load_rules_path(missing),
        lambda: load_rules_dir(missing),
    ):
        with pytest.raises(RulesError) as caught:
            load()
        assert str(caught.value.issues[0]) == f"{missing}:1:1: no such file or directory"


def test_a_single_rule_file_is_loaded_like_a_directory(tmp_path: Path) -> None:
    single = tmp_path / "cpu.yaml"
    single.write_text(TARGETS + CPU_ALARM)
    assert rule_files(single, required=True) == [(str(single), single.read_text())]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv("WK_TEST_SECRET", raising=False)
    environment = Env(tmp_path)
    yield environment
    environment.close()


def engine(env: Env, rules: Path, *, required: bool) -> AlarmEngine:
    alarms = AlarmEngine(
        AlarmStore(env.catalog.cursor),
        env.metrics,
        env.outbox,
        rules_dir=rules,
        rules_required=required,
        clock=env.clock,
    )
    alarms.open()
    return alarms


def test_the_engine_refuses_a_missing_named_path_and_loads_a_file(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(RulesError, match="no such file or directory"):
        engine(env, env.root / "nonexistent", required=True)
    assert not engine(env, env.root / "nonexistent", required=False).rules.alarms
    single = env.root / "cpu.yaml"
    single.write_text(TARGETS + CPU_ALARM)
    with caplog.at_level(logging.WARNING, logger="alarms.engine"):
        loaded = engine(env, single, required=True)
    assert list(loaded.rules.alarms) == ["cpu-high"]
    # 8. serve logs the targets whose secret variable is unset, at load
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "target 'hook': secret environment variable WK_TEST_SECRET is not set" in w
        for w in warnings
    )
    assert any("target 'scale-out'" in w for w in warnings)


# ---- 6. and 8. warnings of a load that succeeds


def test_empty_files_and_directories_warn(tmp_path: Path) -> None:
    assert [str(w) for w in load_rules_path(tmp_path).warnings] == [
        f"{tmp_path}:1:1: no rule files (*.yaml, *.yml) in {tmp_path}"
    ]
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    (tmp_path / "lists.yml").write_text("alarms: []\n")
    assert [w.message for w in load_rules_path(tmp_path).warnings] == [
        f"file {tmp_path / 'empty.yaml'} holds no rules",
        f"file {tmp_path / 'lists.yml'} holds no rules",
    ]


def test_an_unset_or_empty_secret_variable_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET", raising=False)
    text = """\
targets:
  oncall: {type: webhook, url: https://example.internal/hook, secret: {env: SECRET}}
  rotated:
    type: webhook
    url: https://example.internal/hook
    secret: [{env: OLD_SECRET}, {env: SECRET}]
"""
    monkeypatch.setenv("OLD_SECRET", "")
    rules = load_rule_texts([("r.yaml", text)])
    assert [str(w) for w in rules.warnings] == [
        "r.yaml:2:71: targets.oncall.secret: target 'oncall': secret environment variable "
        "SECRET is not set; its deliveries fail unless it is set where the server runs",
        "r.yaml:6:14: targets.rotated.secret[0]: target 'rotated': secret environment variable "
        "OLD_SECRET is empty; its deliveries fail unless it is set where the server runs",
        "r.yaml:6:33: targets.rotated.secret[1]: target 'rotated': secret environment variable "
        "SECRET is not set; its deliveries fail unless it is set where the server runs",
    ]
    monkeypatch.setenv("SECRET", "s")
    monkeypatch.setenv("OLD_SECRET", "o")
    assert load_rule_texts([("r.yaml", text)]).warnings == ()


# ---- 9. one message for a number


def test_a_bad_threshold_gives_one_message() -> None:
    text = """\
alarms:
  - name: cpu
    metric: {namespace: NS, name: CPU}
    statistic: Average
    period: 60s
    evaluation_periods: 3
    comparison: ">"
    threshold: "80"
    evaluation_range: many
"""
    assert refused(text) == [
        "r.yaml:8:16: alarms[0].threshold: Input should be a valid number",
        "r.yaml:9:23: alarms[0].evaluation_range: Input should be 'auto' or a valid integer",
    ]
