"""The alarm engine over real parts: a DuckDB catalog file, a MetricStore, the outbox.

Evaluation instants are given to ``tick`` explicitly and the engine's clock is a test clock,
so transitions, holds and repeats are checked at exact instants. What actions ran is read back
from the outbox, as the notifier would see it, and from the persisted history.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from alarms.engine import AlarmEngine
from alarms.notify import Outcome
from alarms.outbox import Outbox
from alarms.rules import RulesError, Schedule, Silence
from alarms.silences import is_active
from alarms.state import iso_ms
from alarms.store import AlarmStore, HistoryQuery
from core.errors import Conflict
from store.metric_model import METRIC_SCHEMA, datum_row
from store.metrics import MetricStore, MetricStoreConfig

T0 = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000  # on the hour
MIN = 60_000

TARGETS = """
targets:
  hook:
    type: webhook
    url: http://127.0.0.1:9/hook
    secret: {env: WK_TEST_SECRET}
  scale-out:
    type: scaling
    url: http://127.0.0.1:9/scale
    secret: {env: WK_TEST_SECRET}
    group: web
    adjustment:
      type: change_in_capacity
      steps:
        - {lower: 0, upper: 10, value: 1}
        - {lower: 10, value: 3}
    cooldown: 3m
    repeat_interval: 60s
"""

CPU_ALARM = """
alarms:
  - name: cpu-high
    metric: {namespace: Shop, name: CPU, dimensions: {Host: a}}
    statistic: Maximum
    period: 60
    evaluation_periods: 1
    comparison: GreaterThanThreshold
    threshold: 80
    actions: {alarm: [hook], ok: [hook]}
"""


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1_000


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.rules = root / "rules"
        self.rules.mkdir()
        self.catalog = duckdb.connect(str(root / "catalog.duckdb"))
        self.metrics = MetricStore(
            MetricStoreConfig(data_dir=root / "metrics", fsync=False), self.catalog.cursor
        )
        self.metrics.open()
        self.metrics.recover()
        self.outbox = Outbox(self.catalog.cursor)
        self.outbox.ensure_schema()
        self.clock = Clock(T0)

    def engine(self, *files: str) -> AlarmEngine:
        """An engine over the rule files ``files`` (file0.yaml, ...); none: keep those there."""
        if files:
            for old in self.rules.glob("*.yaml"):
                old.unlink()
            for index, text in enumerate(files):
                (self.rules / f"file{index}.yaml").write_text(text)
        engine = AlarmEngine(
            AlarmStore(self.catalog.cursor),
            self.metrics,
            self.outbox,
            rules_dir=self.rules,
            clock=self.clock,
            publish=lambda table: self.metrics.put(table).result(),
        )
        engine.open()
        return engine

    def publish(self, value: float, ts_ms: int, name: str = "CPU") -> None:
        row = datum_row(
            namespace="Shop", metric_name=name, dimensions={"Host": "a"}, ts_ms=ts_ms,
            values=[value],
        )  # fmt: skip
        self.metrics.put(pa.Table.from_pylist([row], schema=METRIC_SCHEMA)).result()

    def hot_tick(self, engine: AlarmEngine, at_ms: int) -> None:
        """A tick at which cpu-high has a breaching datapoint, so it stays in ALARM."""
        self.publish(95, at_ms - at_ms % MIN - 30_000)
        engine.tick(at_ms)

    def sent(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(target, event, body) of every delivery, oldest first."""
        rows = sorted(self.outbox.list(limit=1_000), key=lambda d: d.seq)
        return [(d.target, d.event, d.to_json()["body"]) for d in rows]

    def close(self) -> None:
        self.metrics.close()
        self.catalog.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("WK_TEST_SECRET", "s3cret")
    environment = Env(tmp_path)
    yield environment
    environment.close()


def history(engine: AlarmEngine, name: str | None = None, **filters: Any) -> list[str]:
    """Summaries, oldest first."""
    page = engine.store.history(HistoryQuery(name=name, oldest_first=True, **filters))
    return [item.summary for item in page.items]


def states(engine: AlarmEngine) -> dict[str, str]:
    return {rule.name: status.state for rule, status in engine.statuses()}


# ---- transitions and notification actions (spec §5.8.1)


def test_creation_runs_no_action_and_is_recorded(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    assert states(engine) == {"cpu-high": "INSUFFICIENT_DATA"}
    assert history(engine) == ['Alarm "cpu-high" created']
    assert env.sent() == []


def test_actions_run_once_per_transition(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    env.publish(95, T0 - 30_000)
    report = engine.tick(T0)
    assert (report.evaluated, report.transitions) == (1, 1)
    env.publish(97, T0 + 30_000)
    engine.tick(T0 + MIN)  # still ALARM: no action
    env.publish(10, T0 + 90_000)
    engine.tick(T0 + 2 * MIN)
    sent = env.sent()
    assert [(t, body["state"]["value"]) for t, _, body in sent] == [
        ("hook", "ALARM"),
        ("hook", "OK"),
    ]
    first = sent[0][2]
    assert first["event"] == "alarm.state_change"
    assert first["previous_state"]["value"] == "INSUFFICIENT_DATA"
    assert first["alarm"] == {"name": "cpu-high", "kind": "metric", "description": "", "labels": {}}
    assert first["configuration"]["threshold"] == 80
    assert first["state"]["reason_data"]["recentDatapoints"] == [95.0]
    assert history(engine, "cpu-high", item_type="StateUpdate") == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to OK",
    ]


def test_state_update_history_holds_old_and_new_state(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    env.publish(95, T0 - 30_000)
    engine.tick(T0)
    page = engine.store.history(HistoryQuery(name="cpu-high", item_type="StateUpdate"))
    data = page.items[0].data
    assert data["oldState"]["stateValue"] == "INSUFFICIENT_DATA"
    assert data["newState"]["stateValue"] == "ALARM"
    assert data["newState"]["stateReason"].startswith("Threshold Crossed: 1 out of the last 1")


def test_disabled_actions_do_not_replay_when_enabled(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    engine.set_actions_enabled("cpu-high", False)
    engine.set_state("cpu-high", "ALARM", "testing", {})
    assert env.sent() == []
    engine.set_actions_enabled("cpu-high", True)
    env.publish(99, T0 - 30_000)
    engine.tick(T0)  # still ALARM: nothing to announce
    assert env.sent() == []
    engine.set_state("cpu-high", "OK", "testing", {})
    assert [body["state"]["value"] for _, _, body in env.sent()] == ["OK"]


# ---- SetAlarmState (spec §5.8.4)


def test_metric_alarm_returns_to_its_computed_state(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    env.publish(10, T0 - 30_000)
    engine.tick(T0)
    engine.set_state("cpu-high", "ALARM", "forced", {"why": "test"})
    assert engine.lookup("cpu-high")[1].reason_data == {"why": "test"}
    env.publish(10, T0 + 30_000)
    engine.tick(T0 + MIN)
    assert [body["state"]["value"] for _, _, body in env.sent()] == ["OK", "ALARM", "OK"]


COMPOSITE = """
composites:
  - name: shop-down
    rule: ALARM(cpu-high) OR ALARM(errors)
    actions: {alarm: [hook], ok: [hook]}
alarms:
  - name: errors
    metric: {namespace: Shop, name: Errors, dimensions: {Host: a}}
    statistic: Sum
    period: 60
    evaluation_periods: 1
    comparison: GreaterThanThreshold
    threshold: 5
"""


def test_composite_keeps_a_forced_state_until_a_child_changes(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, COMPOSITE)
    engine.tick(T0)  # first evaluation of the composite: FALSE -> OK
    assert states(engine)["shop-down"] == "OK"
    engine.set_state("shop-down", "ALARM", "drill", {})
    engine.tick(T0 + MIN)  # no child changed state
    assert states(engine)["shop-down"] == "ALARM"
    engine.set_state("errors", "OK", "child changes", {})
    assert states(engine)["shop-down"] == "OK"


def test_composite_follows_its_children_at_once(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, COMPOSITE)
    engine.set_state("cpu-high", "ALARM", "child", {})
    assert states(engine)["shop-down"] == "ALARM"
    body = [b for t, _, b in env.sent() if b["alarm"]["name"] == "shop-down"][-1]
    assert body["configuration"] == {"rule": "ALARM(cpu-high) OR ALARM(errors)"}
    assert body["state"]["reason_data"]["triggeringAlarms"][0]["name"] == "cpu-high"


def test_a_late_tick_evaluates_the_missed_minute_once(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    env.clock.ms = T0 + 400
    assert engine.tick().evaluated == 1  # the scheduler's call: the instant is T0
    env.publish(95, T0 + 30_000)
    env.clock.ms = T0 + MIN + 25_000  # the round at T0 + 1 min never ran
    report = engine.tick()
    assert (report.at_ms, report.evaluated, report.transitions) == (T0 + MIN + 20_000, 1, 1)
    page = engine.store.history(HistoryQuery(name="cpu-high", item_type="StateUpdate"))
    assert page.items[0].ts_ms == T0 + MIN, "evaluated as of its own instant"
    env.clock.ms = T0 + MIN + 35_000
    assert engine.tick().evaluated == 0, "and only once"


def test_a_failed_write_leaves_no_delivery_and_no_state_behind(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(engine.store, "append_history", broken)
    with pytest.raises(OSError):
        engine.set_state("cpu-high", "ALARM", "x", {})
    assert env.sent() == [], "the delivery was rolled back with the rest"
    assert states(engine) == {"cpu-high": "INSUFFICIENT_DATA"}, "memory follows the store"
    monkeypatch.undo()
    engine.set_state("cpu-high", "ALARM", "x", {})
    assert [b["state"]["value"] for _, _, b in env.sent()] == ["ALARM"]


def test_a_long_state_update_keeps_its_values_in_history(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    engine.set_state("cpu-high", "ALARM", "big", {"blob": "x" * 5_000})
    page = engine.store.history(HistoryQuery(name="cpu-high", item_type="StateUpdate"))
    data = page.items[0].data
    assert data["truncated"] is True
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "big"}


def test_an_invalid_cron_silence_is_refused_at_load(env: Env) -> None:
    bad = "silences:\n  - id: s\n    match: {alarm: '*'}\n    schedule: {cron: '99 * * * *', duration: 1h}\n"
    with pytest.raises(RulesError) as error:
        env.engine(TARGETS + CPU_ALARM, bad)
    assert "invalid cron expression" in str(error.value)


# ---- composite action suppression (spec §5.11.4, decision D9)

SUPPRESSED = """
alarms:
  - name: deploy
    metric: {namespace: Shop, name: Deploying, dimensions: {Host: a}}
    statistic: Maximum
    period: 60
    evaluation_periods: 1
    comparison: GreaterThanThreshold
    threshold: 0
composites:
  - name: web-down
    rule: ALARM(cpu-high)
    actions: {alarm: [hook], ok: [hook]}
    suppression: {suppressor: deploy, wait_period: 2m, extension_period: 1m}
"""


def announced(env: Env, name: str = "web-down") -> list[str]:
    return [b["state"]["value"] for _, _, b in env.sent() if b["alarm"]["name"] == name]


def test_wait_period_holds_then_runs_the_alarm_actions(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, SUPPRESSED)
    engine.set_state("cpu-high", "ALARM", "child", {})
    composite = engine.lookup("web-down")[1]
    assert composite.state == "ALARM" and composite.runtime.held_by == "WaitPeriod"
    assert announced(env) == []
    env.hot_tick(engine, T0 + MIN)
    assert announced(env) == []
    env.clock.ms = T0 + 2 * MIN  # the wait period ends
    env.hot_tick(engine, T0 + 2 * MIN)
    assert announced(env) == ["ALARM"]
    assert engine.lookup("web-down")[1].runtime.held_by is None
    env.hot_tick(engine, T0 + 3 * MIN)
    assert announced(env) == ["ALARM"]


def test_leaving_alarm_within_the_wait_period_drops_the_actions(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, SUPPRESSED)
    engine.tick(T0)  # the composite starts OK and announces it
    assert announced(env) == ["OK"]
    env.clock.ms = T0 + 10_000
    engine.set_state("cpu-high", "ALARM", "flap", {})
    env.clock.ms = T0 + 40_000
    engine.set_state("cpu-high", "OK", "flap over", {})
    env.clock.ms = T0 + 3 * MIN
    engine.tick(T0 + 3 * MIN)
    assert announced(env) == ["OK"], "receivers never hear of the flap"


def test_suppressor_in_alarm_then_extension_then_catch_up(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, SUPPRESSED)
    engine.set_state("cpu-high", "ALARM", "child", {})  # wait period starts
    env.clock.ms = T0 + 30_000
    engine.set_state("deploy", "ALARM", "deploying", {})  # within W: held actions dropped
    assert engine.lookup("web-down")[1].runtime.held_by == "Alarm"
    env.clock.ms = T0 + 5 * MIN
    engine.set_state("deploy", "OK", "deployed", {})  # extension period of 1 min starts
    assert engine.lookup("web-down")[1].runtime.held_by == "ExtensionPeriod"
    env.hot_tick(engine, T0 + 5 * MIN + 30_000)
    assert announced(env) == []
    env.clock.ms = T0 + 6 * MIN
    env.hot_tick(engine, T0 + 6 * MIN)
    assert announced(env) == ["ALARM"], "the current state is announced once"
    history_items = history(engine, "web-down", item_type="Action")
    assert history_items and all("suppressed" in h or "held" in h for h in history_items)


# ---- silences (spec §6.6)


def silence(starts_ms: int, ends_ms: int) -> str:
    return f"""
silences:
  - id: maintenance
    match: {{alarm: "cpu-*"}}
    starts: {iso_ms(starts_ms)}
    ends: {iso_ms(ends_ms)}
"""


def test_silence_records_suppressed_actions_and_catches_up_once(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, silence(T0 - MIN, T0 + 5 * MIN))
    engine.set_state("cpu-high", "ALARM", "during maintenance", {})
    assert env.sent() == []
    assert history(engine, "cpu-high", item_type="Action") == ["Suppressed by silence maintenance"]
    assert engine.lookup("cpu-high")[1].runtime.held_by == "Silence"
    env.clock.ms = T0 + 5 * MIN
    env.hot_tick(engine, T0 + 5 * MIN)
    env.hot_tick(engine, T0 + 6 * MIN)
    assert [b["state"]["value"] for _, _, b in env.sent()] == ["ALARM"]


def test_schedule_silence_is_active_inside_each_window() -> None:
    weekly = Silence(
        id="w",
        match={"alarm": "*"},  # type: ignore[arg-type]
        schedule=Schedule(cron="0 2 * * SUN", duration=4 * 3600, timezone="UTC"),
    )
    sunday_2am = 1_794_708_000_000  # 2026-11-15T02:00:00Z, a Sunday
    assert is_active(weekly, sunday_2am)
    assert is_active(weekly, sunday_2am + 4 * 3_600_000 - 1)
    assert not is_active(weekly, sunday_2am + 4 * 3_600_000)
    assert not is_active(weekly, sunday_2am - 1)


# ---- scaling hooks (spec §5.8.3, §6.5)

SCALING = """
alarms:
  - name: cpu-scale
    metric: {namespace: Shop, name: CPU, dimensions: {Host: a}}
    statistic: Maximum
    period: 60
    evaluation_periods: 1
    comparison: GreaterThanThreshold
    threshold: 80
    actions: {alarm: [scale-out]}
"""


def scaling(env: Env) -> list[tuple[int, float]]:
    return [
        (b["repeat"], b["adjustment"]["value"]) for _, e, b in env.sent() if e == "alarm.scaling"
    ]


def test_scaling_hook_repeats_waits_for_answers_and_respects_cooldown(env: Env) -> None:
    engine = env.engine(TARGETS + SCALING)

    def tick(minute: int, value: float = 95) -> None:
        env.publish(value, T0 + minute * MIN - 30_000)
        engine.tick(T0 + minute * MIN)

    def answer(ok: bool, minute: int) -> None:
        newest = max(env.outbox.list(limit=100), key=lambda d: d.seq)
        error = None if ok else "HTTP 503 after 3 attempts"
        engine.on_delivery(Outcome(newest, ok, 200 if ok else 503, error, 1, T0 + minute * MIN))

    tick(0, 85)  # delta 5: the first step
    assert scaling(env) == [(0, 1)]
    tick(1)  # the first call is unanswered: no repeat piles up behind it
    assert scaling(env) == [(0, 1)]
    answer(False, 1)
    tick(2)  # delta 15: the second step
    assert scaling(env) == [(0, 1), (1, 3)]
    body = [b for _, e, b in env.sent() if e == "alarm.scaling"][-1]
    assert body["group"] == "web"
    assert body["breach"] == {"value": 95.0, "threshold": 80.0, "delta": 15.0}
    answer(True, 2)  # success: a 3 min cooldown starts
    for minute in (3, 4):
        tick(minute)
    assert scaling(env) == [(0, 1), (1, 3)], "no invocation within the cooldown"
    tick(5)
    assert scaling(env) == [(0, 1), (1, 3), (2, 3)]


# ---- delivery outcomes (spec §5.9 Action items, §6.4 DeliveryFailures)


def test_delivery_outcomes_become_history_and_a_failure_metric(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    engine.set_state("cpu-high", "ALARM", "x", {})
    delivery = env.outbox.list(limit=1)[0]
    engine.on_delivery(Outcome(delivery, False, 503, "HTTP 503 after 8 attempts", 8, T0 + 5_000))
    assert history(engine, "cpu-high", item_type="Action") == [
        'Failed to execute action hook. Received error: "HTTP 503 after 8 attempts"'
    ]
    found = env.metrics.list_metrics(namespace="Watchkeep/Notifications")
    assert [(m.metric_name, dict(m.dimensions)) for m in found] == [
        ("DeliveryFailures", {"Target": "hook"})
    ]


# ---- rules: reload, persistence, history


def test_reload_keeps_state_and_records_configuration_updates(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    engine.set_state("cpu-high", "ALARM", "x", {})
    (env.rules / "file0.yaml").write_text(
        TARGETS + CPU_ALARM.replace("threshold: 80", "threshold: 90")
    )
    engine.reload()
    assert states(engine) == {"cpu-high": "ALARM"}
    assert history(engine, "cpu-high", item_type="ConfigurationUpdate") == [
        'Alarm "cpu-high" created',
        'Alarm "cpu-high" updated',
    ]
    (env.rules / "file0.yaml").write_text(TARGETS)
    engine.reload()
    assert states(engine) == {}
    assert history(engine, "cpu-high")[-1] == 'Alarm "cpu-high" deleted', "history outlives it"


def test_an_invalid_file_changes_nothing(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    (env.rules / "broken.yaml").write_text("alarms:\n  - name: x\n    treshold: 1\n")
    with pytest.raises(RulesError) as error:
        engine.reload()
    assert any(issue.line == 3 for issue in error.value.issues)
    assert states(engine) == {"cpu-high": "INSUFFICIENT_DATA"}


def test_state_history_and_runtime_survive_a_restart(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM, SUPPRESSED)
    engine.set_state("cpu-high", "ALARM", "before restart", {"n": 1})
    engine = env.engine()  # a new engine on the same catalog
    _, status = engine.lookup("cpu-high")
    assert (status.state, status.reason, status.reason_data) == (
        "ALARM",
        "before restart",
        {"n": 1},
    )
    assert engine.lookup("web-down")[1].runtime.held_by == "WaitPeriod"
    assert history(engine, "cpu-high")[0] == 'Alarm "cpu-high" created', "no second creation"
    env.clock.ms = T0 + 2 * MIN
    env.hot_tick(engine, T0 + 2 * MIN)
    assert announced(env) == ["ALARM"]


def test_history_pages_without_overlap_or_gap(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    for i in range(7):
        env.clock.ms = T0 + i * 1_000
        engine.set_state("cpu-high", "ALARM" if i % 2 == 0 else "OK", f"step {i}", {})
    seen: list[str] = []
    token = None
    while True:
        page = engine.store.history(
            HistoryQuery(name="cpu-high", item_type="StateUpdate", max_records=3, next_token=token)
        )
        seen += [item.data["newState"]["stateReason"] for item in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == [f"step {i}" for i in reversed(range(7))]


def test_api_definitions_live_beside_files_and_share_names(env: Env) -> None:
    engine = env.engine(TARGETS + CPU_ALARM)
    document = {
        "name": "errors-api",
        "metric": {"namespace": "Shop", "name": "Errors"},
        "statistic": "Sum",
        "period": 60,
        "evaluation_periods": 1,
        "comparison": "GreaterThanThreshold",
        "threshold": 1,
    }
    engine.put_definition("metric", document)
    assert set(states(engine)) == {"cpu-high", "errors-api"}
    with pytest.raises(Conflict):
        engine.put_definition("metric", {**document, "name": "cpu-high"})
    with pytest.raises(RulesError):
        engine.put_definition("metric", {**document, "treshold": 2})
    engine = env.engine()
    assert set(states(engine)) == {"cpu-high", "errors-api"}, "API alarms are persisted"
