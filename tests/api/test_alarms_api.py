"""The alarm API end to end (issue 6): a real server with rule files, real metric data, real
signed webhooks to a local receiver, the audit trail and a restart.

Evaluation is driven by calling the engine's ``tick(at_ms)`` with instants on the minute grid,
exactly as the scheduler does. The scheduler keeps running meanwhile, so every test works in a
time slot of its own, minutes in the past (``slot()``), and its alarms treat missing data as
``ignore``: the scheduler's own ticks, and the ticks of the other tests, find no data in those
alarms' ranges and leave their states alone. One test waits for a real scheduled tick.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from tests.alarms.receiver import SECRET, Receiver, Reply
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

MINUTE_MS = 60_000
SECRET_ENV = "WK_E2E_ALARM_SECRET"
_NOW_MS = int(time.time() * 1_000)
_BASE_MS = _NOW_MS - _NOW_MS % MINUTE_MS - 20 * MINUTE_MS
_slots = itertools.count()
T = TypeVar("T")


def slot() -> int:
    """An instant on the minute grid, 12 minutes away from every other test's instants."""
    return _BASE_MS - next(_slots) * 12 * MINUTE_MS


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1_000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def wait_for(check: Callable[[], T], timeout_s: float = 10.0) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {check}")
        time.sleep(0.05)


# ---- rule files

TARGET = {
    "type": "webhook",
    "secret": {"env": SECRET_ENV},
    "headers": {"X-Team": "e2e"},
    "timeout": "2s",
    # Fast retries; the deadline is long because the tests' transitions happen minutes ago.
    "retry": {"max_attempts": 3, "initial_backoff": "0s", "max_backoff": "1s", "deadline": "1d"},
}


def metric_alarm(name: str, *, threshold: float = 80, **extra: Any) -> dict[str, Any]:
    """N = 1 on the Maximum of a metric named after the alarm, ``ignore`` (see the docstring)."""
    return {
        "name": name,
        "labels": {"team": "web"},
        "metric": {"namespace": "E2E/Alarms", "name": name, "dimensions": {"Host": "a"}},
        "statistic": "Maximum",
        "period": "60s",
        "evaluation_periods": 1,
        "comparison": ">",
        "threshold": threshold,
        "treat_missing_data": "ignore",
        **extra,
    }


HOOKED = {"actions": {"alarm": ["hook"], "ok": ["hook"]}}
FILE_ALARMS = [
    metric_alarm("e2e-cpu", description="CPU of host a", **HOOKED),
    metric_alarm("e2e-flaky", **HOOKED),
    metric_alarm("e2e-dead", **HOOKED),
    metric_alarm("e2e-forced", **HOOKED),
    metric_alarm("e2e-muted", **HOOKED),
    metric_alarm("e2e-silenced", **HOOKED),
    metric_alarm("e2e-window", **HOOKED),
    metric_alarm("e2e-audited", **HOOKED),
    metric_alarm("e2e-pages"),
    metric_alarm("e2e-child"),
    metric_alarm("e2e-child2"),
    {**metric_alarm("e2e-hires", threshold=5), "period": "10s"},
]


def write_rules(rules: Path, receiver_url: str) -> None:
    rules.mkdir(parents=True)

    def dump(name: str, document: dict[str, Any]) -> None:
        (rules / name).write_text(yaml.safe_dump(document, sort_keys=False))

    dump("targets.yaml", {"targets": {"hook": {**TARGET, "url": receiver_url}}})
    dump("alarms.yaml", {"alarms": FILE_ALARMS})
    dump("reload.yaml", {"alarms": [metric_alarm("e2e-reload")]})
    dump(
        "composites.yaml",
        {
            "composites": [
                {"name": "e2e-any", "rule": "ALARM(e2e-cpu) OR ALARM(e2e-forced)"},
                {
                    "name": "e2e-parent",
                    "description": "either child",
                    "rule": "ALARM(e2e-child) OR ALARM(e2e-child2)",
                    **HOOKED,
                },
            ]
        },
    )
    dump(
        "silences.yaml",
        {
            "silences": [
                {
                    "id": "old-window",
                    "match": {"alarm": "nothing-*"},
                    "starts": "2020-01-01T00:00:00Z",
                    "ends": "2020-01-02T00:00:00Z",
                    "comment": "long over",
                }
            ]
        },
    )


# ---- fixtures


@pytest.fixture(scope="module")
def secret_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, SECRET)
        yield


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, secret_env: None
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("alarms-api") / "data"
    write_rules(data / "rules", receiver.url)
    running = RunningServer(make_settings(data)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as c:
        yield c


# ---- helpers


def put_points(
    client: httpx.Client, alarm: str, points: list[tuple[int, float]], **datum: Any
) -> None:
    body = {
        "namespace": "E2E/Alarms",
        "metric_data": [
            {"metric_name": alarm, "dimensions": {"Host": "a"}, "timestamp": iso(ts), "value": v}
            | datum
            for ts, v in points
        ],
    }
    response = client.post("/api/v1/metrics/data", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == []


def tick(server: RunningServer, at_ms: int) -> None:
    assert at_ms % MINUTE_MS == 0
    server.app.state.alarms.tick(at_ms)


def view(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/alarms/{name}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def history(client: httpx.Client, name: str, **params: Any) -> list[dict[str, Any]]:
    """All of an alarm's history, oldest first."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"name": name, "scan_by": "TimestampAscending", **params}
    while True:
        response = client.get("/api/v1/alarms/history", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if not page["next_token"]:
            return items
        query["next_token"] = page["next_token"]


def summaries(client: httpx.Client, name: str, item_type: str) -> list[str]:
    return [item["summary"] for item in history(client, name, type=item_type)]


def deliveries(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/alarms/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]  # type: ignore[no-any-return]


def delivered(receiver: Receiver, alarm: str, count: int) -> list[Any]:
    """Wait until ``count`` requests about ``alarm`` arrived; return them."""
    return wait_for(lambda: len(receiver.for_alarm(alarm)) >= count and receiver.for_alarm(alarm))


def set_state(client: httpx.Client, name: str, state: str, **extra: Any) -> httpx.Response:
    return client.post(
        f"/api/v1/alarms/{name}/state", json={"state": state, "reason": "test", **extra}
    )


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


# ---- DescribeAlarms


def test_describe_alarms_filters_and_view_shape(client: httpx.Client) -> None:
    everything = client.get("/api/v1/alarms").json()["alarms"]
    names = [a["name"] for a in everything]
    assert names == sorted(names)
    assert {a["name"] for a in FILE_ALARMS} | {"e2e-any", "e2e-reload"} <= set(names)

    composites = client.get("/api/v1/alarms", params={"kind": "composite"}).json()["alarms"]
    assert [a["name"] for a in composites] == ["e2e-any", "e2e-parent"]
    assert composites[0]["configuration"]["rule"] == "ALARM(e2e-cpu) OR ALARM(e2e-forced)"
    metric_names = {a["name"] for a in client.get("/api/v1/alarms?kind=metric").json()["alarms"]}
    assert "e2e-any" not in metric_names and "e2e-cpu" in metric_names

    prefixed = client.get("/api/v1/alarms", params={"prefix": "e2e-pag"}).json()["alarms"]
    assert [a["name"] for a in prefixed] == ["e2e-pages"]
    waiting = client.get("/api/v1/alarms", params={"state": "INSUFFICIENT_DATA"}).json()
    assert "e2e-pages" in {a["name"] for a in waiting["alarms"]}
    assert "e2e-pages" not in {
        a["name"] for a in client.get("/api/v1/alarms?state=OK").json()["alarms"]
    }
    assert client.get("/api/v1/alarms", params={"state": "BROKEN"}).status_code == 400

    cpu = view(client, "e2e-cpu")
    assert cpu["name"] == "e2e-cpu" and cpu["kind"] == "metric"
    assert cpu["source"] == "file" and cpu["file"].endswith("alarms.yaml")
    assert cpu["description"] == "CPU of host a" and cpu["labels"] == {"team": "web"}
    assert cpu["actions_enabled"] is True and cpu["actions_suppressed_by"] is None
    state = cpu["state"]
    assert set(state) == {"value", "reason", "reason_data", "timestamp", "transitioned"}
    assert state["value"] == "INSUFFICIENT_DATA"
    assert state["reason"] == "Unchecked: Initial alarm creation"
    assert state["transitioned"] is None and state["timestamp"].endswith("Z")
    config = cpu["configuration"]
    assert config["comparison"] == "GreaterThanThreshold"  # the alias is stored as CW's name
    assert config["threshold"] == 80 and config["statistic"] == "Maximum"
    assert config["metric"] == {
        "namespace": "E2E/Alarms",
        "name": "e2e-cpu",
        "dimensions": {"Host": "a"},
    }
    assert config["actions"]["alarm"] == ["hook"] and config["actions"]["ok"] == ["hook"]

    missing = error(client.get("/api/v1/alarms/no-such-alarm"), 404)
    assert missing["code"] == "ResourceNotFoundException"


# ---- transitions, actions and history


def test_a_transition_sends_one_signed_webhook_and_ok_sends_the_ok_action(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    t = slot()
    put_points(client, "e2e-cpu", [(t - 55_000, 95.0)])
    tick(server, t)
    assert view(client, "e2e-cpu")["state"]["value"] == "ALARM"
    (first,) = delivered(receiver, "e2e-cpu", 1)
    assert first.verified
    head = first.headers
    assert head["content-type"] == "application/json"
    assert head["watchkeep-event"] == "alarm.state_change"
    assert head["watchkeep-attempt"] == "1" and head["x-team"] == "e2e"
    assert head["watchkeep-signature"].startswith("v1=")
    assert abs(int(head["watchkeep-timestamp"]) - time.time()) < 60
    body = first.json
    assert body["delivery_id"] == head["watchkeep-delivery"] and body["version"] == "1"
    assert body["alarm"] == {
        "name": "e2e-cpu",
        "kind": "metric",
        "description": "CPU of host a",
        "labels": {"team": "web"},
    }
    assert body["state"]["value"] == "ALARM" and body["state"]["timestamp"] == iso(t)
    assert body["state"]["reason"].startswith("Threshold Crossed: 1 out of the last 1")
    assert body["state"]["reason_data"]["recentDatapoints"] == [95.0]
    assert body["state"]["reason_data"]["threshold"] == 80
    assert body["previous_state"]["value"] == "INSUFFICIENT_DATA"
    assert body["configuration"]["threshold"] == 80 and body["actions_suppressed_by"] is None

    # Staying in ALARM (the datum is still in the range) sends nothing.
    tick(server, t + MINUTE_MS)
    assert view(client, "e2e-cpu")["state"]["value"] == "ALARM"
    assert len(deliveries(client, alarm="e2e-cpu")) == 1

    put_points(client, "e2e-cpu", [(t + MINUTE_MS + 5_000, 10.0)])
    tick(server, t + 2 * MINUTE_MS)
    alarm = view(client, "e2e-cpu")
    assert alarm["state"]["value"] == "OK" and alarm["state"]["transitioned"] == iso(t + 120_000)
    ok = delivered(receiver, "e2e-cpu", 2)[1]
    assert ok.verified and ok.delivery_id != first.delivery_id
    assert ok.json["state"]["value"] == "OK" and ok.json["previous_state"]["value"] == "ALARM"
    assert len(deliveries(client, alarm="e2e-cpu")) == 2

    assert summaries(client, "e2e-cpu", "ConfigurationUpdate") == ['Alarm "e2e-cpu" created']
    updates = history(client, "e2e-cpu", type="StateUpdate")
    assert [u["summary"] for u in updates] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    assert updates[0]["alarm_type"] == "MetricAlarm"
    data = updates[1]["data"]
    assert data["oldState"]["stateValue"] == "ALARM" and data["newState"]["stateValue"] == "OK"
    assert data["newState"]["stateReason"] == alarm["state"]["reason"]
    later = history(client, "e2e-cpu", type="StateUpdate", start=iso(t + 90_000))
    assert [u["summary"] for u in later] == ["Alarm updated from ALARM to OK"]
    earlier = history(client, "e2e-cpu", type="StateUpdate", end=iso(t + 90_000))
    assert [u["summary"] for u in earlier] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]
    actions = wait_for(lambda: len(h := history(client, "e2e-cpu", type="Action")) == 2 and h)
    assert {a["summary"] for a in actions} == {"Successfully executed action hook"}
    assert {a["data"]["deliveryId"] for a in actions} == {first.delivery_id, ok.delivery_id}
    # The composite followed its child.
    assert view(client, "e2e-any")["state"]["value"] == "OK"


def test_a_failing_receiver_is_retried_until_it_accepts(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    receiver.plan(Reply(503), Reply(503), alarm="e2e-flaky")
    t = slot()
    put_points(client, "e2e-flaky", [(t - 30_000, 99.0)])
    tick(server, t)
    requests = delivered(receiver, "e2e-flaky", 3)
    assert [r.attempt for r in requests] == [1, 2, 3]
    assert len({r.delivery_id for r in requests}) == 1 and all(r.verified for r in requests)
    assert len({r.body for r in requests}) == 1  # only the signature and timestamp change
    (row,) = wait_for(lambda: deliveries(client, alarm="e2e-flaky", status="delivered"))
    assert row["attempts"] == 3 and row["delivery_id"] == requests[0].delivery_id
    (action,) = wait_for(lambda: history(client, "e2e-flaky", type="Action"))
    assert action["summary"] == "Successfully executed action hook"
    assert action["data"]["attempts"] == 3


def test_an_exhausted_delivery_is_dead_counted_and_replayed(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    receiver.plan(*[Reply(503)] * 3, alarm="e2e-dead")
    t = slot()
    put_points(client, "e2e-dead", [(t - 30_000, 99.0)])
    tick(server, t)
    failed = delivered(receiver, "e2e-dead", 3)
    (dead,) = wait_for(lambda: deliveries(client, alarm="e2e-dead", status="dead"))
    assert dead["delivery_id"] == failed[0].delivery_id and dead["attempts"] == 3
    assert dead["last_status_code"] == 503
    assert dead["delivery_id"] in {d["delivery_id"] for d in deliveries(client, status="dead")}
    (action,) = wait_for(lambda: history(client, "e2e-dead", type="Action"))
    assert action["summary"] == (
        'Failed to execute action hook. Received error: "HTTP 503 after 3 attempts"'
    )

    def failures() -> float:
        response = client.post(
            "/api/v1/metrics/statistics",
            json={
                "namespace": "Watchkeep/Notifications",
                "metric_name": "DeliveryFailures",
                "dimensions": {"Target": "hook"},
                "start": iso(int(time.time() * 1_000) - 10 * MINUTE_MS),
                "end": iso(int(time.time() * 1_000) + MINUTE_MS),
                "period": 60,
                "statistics": ["Sum"],
            },
        )
        assert response.status_code == 200, response.text
        return sum(point["sum"] for point in response.json()["datapoints"])

    assert wait_for(failures) >= 1

    # The receiver is fixed (its script is used up): a replay arrives with the same id.
    replayed = client.post(f"/api/v1/alarms/deliveries/{dead['delivery_id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "pending"
    assert replayed.json()["delivery_id"] == dead["delivery_id"]
    fourth = delivered(receiver, "e2e-dead", 4)[3]
    assert fourth.verified and fourth.delivery_id == dead["delivery_id"]
    assert fourth.attempt == 1 and fourth.body == failed[0].body
    assert wait_for(lambda: deliveries(client, alarm="e2e-dead", status="delivered"))
    again = client.post(f"/api/v1/alarms/deliveries/{dead['delivery_id']}/replay")
    assert again.status_code == 409, again.text  # only a dead delivery can be replayed
    assert client.post("/api/v1/alarms/deliveries/no-such-id/replay").status_code == 404


def test_set_alarm_state_runs_actions_until_the_next_evaluation(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    t = slot()
    put_points(client, "e2e-forced", [(t - 30_000, 10.0)])
    tick(server, t)
    assert view(client, "e2e-forced")["state"]["value"] == "OK"
    delivered(receiver, "e2e-forced", 1)

    response = set_state(client, "e2e-forced", "ALARM", reason_data='{"source": "drill"}')
    assert response.status_code == 200, response.text
    forced = response.json()["state"]
    assert forced["value"] == "ALARM" and forced["reason"] == "test"
    assert forced["reason_data"] == {"source": "drill"}
    alarm = delivered(receiver, "e2e-forced", 2)[1]
    assert alarm.verified and alarm.json["state"]["value"] == "ALARM"
    assert alarm.json["state"]["reason_data"] == {"source": "drill"}
    assert view(client, "e2e-any")["state"]["value"] == "ALARM"  # the composite follows

    bad = error(set_state(client, "e2e-forced", "OK", reason_data="{not json"), 400)
    assert bad["code"] == "InvalidFormat"
    assert error(set_state(client, "e2e-forced", "OK", reason_data="[1, 2]"), 400)["code"] == (
        "InvalidFormat"
    )
    assert view(client, "e2e-forced")["state"]["value"] == "ALARM"
    assert error(set_state(client, "no-such-alarm", "OK"), 404)["code"] == (
        "ResourceNotFoundException"
    )
    assert set_state(client, "e2e-forced", "RED").status_code == 400
    too_long = set_state(client, "e2e-forced", "OK", reason_data={"text": "x" * 4_000})
    assert error(too_long, 400)["code"] == "InvalidFormat"  # StateReasonData <= 4000 chars
    assert set_state(client, "e2e-forced", "OK", reason="r" * 1_024).status_code == 400

    # The next evaluation finds the datum within the threshold: back to OK, another transition.
    tick(server, t + MINUTE_MS)
    assert view(client, "e2e-forced")["state"]["value"] == "OK"
    back = delivered(receiver, "e2e-forced", 3)[2]
    assert back.json["state"]["value"] == "OK" and back.json["previous_state"]["value"] == "ALARM"
    # (Sorted: the ticks' instants are minutes old, SetAlarmState's is now.)
    assert sorted(u["summary"] for u in history(client, "e2e-forced", type="StateUpdate")) == [
        "Alarm updated from ALARM to OK",
        "Alarm updated from INSUFFICIENT_DATA to OK",
        "Alarm updated from OK to ALARM",
    ]


def test_disabled_actions_send_nothing_and_enabling_replays_nothing(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    disabled = client.post("/api/v1/alarms/e2e-muted/actions/disable")
    assert disabled.status_code == 200 and disabled.json()["actions_enabled"] is False
    t = slot()
    put_points(client, "e2e-muted", [(t - 30_000, 99.0)])
    tick(server, t)
    assert view(client, "e2e-muted")["state"]["value"] == "ALARM"
    assert deliveries(client, alarm="e2e-muted") == []
    assert len(history(client, "e2e-muted", type="StateUpdate")) == 1
    assert history(client, "e2e-muted", type="Action") == []

    enabled = client.post("/api/v1/alarms/e2e-muted/actions/enable")
    assert enabled.status_code == 200 and enabled.json()["actions_enabled"] is True
    tick(server, t + MINUTE_MS)  # still ALARM: the transition made while disabled stays unsent
    assert deliveries(client, alarm="e2e-muted") == []

    put_points(client, "e2e-muted", [(t + MINUTE_MS + 5_000, 1.0)])
    tick(server, t + 2 * MINUTE_MS)
    (ok,) = delivered(receiver, "e2e-muted", 1)
    assert ok.json["state"]["value"] == "OK"
    assert client.post("/api/v1/alarms/nope/actions/disable").status_code == 404


def test_a_composite_follows_its_children_and_keeps_a_forced_state_until_one_changes(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    t = slot()
    # Evaluated at creation (at the first tick, whichever): its rule is false, a transition to OK.
    tick(server, t - MINUTE_MS)
    (created,) = delivered(receiver, "e2e-parent", 1)
    assert created.json["state"]["value"] == "OK"
    assert created.json["previous_state"]["value"] == "INSUFFICIENT_DATA"

    put_points(client, "e2e-child", [(t - 30_000, 99.0)])
    tick(server, t)
    parent = view(client, "e2e-parent")
    assert parent["kind"] == "composite" and parent["state"]["value"] == "ALARM"
    assert parent["configuration"]["rule"] == "ALARM(e2e-child) OR ALARM(e2e-child2)"
    alarm = delivered(receiver, "e2e-parent", 2)[1]
    assert alarm.verified and alarm.json["alarm"]["kind"] == "composite"
    assert alarm.json["state"]["value"] == "ALARM"
    assert alarm.json["configuration"] == {"rule": "ALARM(e2e-child) OR ALARM(e2e-child2)"}
    triggering = alarm.json["state"]["reason_data"]["triggeringAlarms"]
    assert {c["name"]: c["state"]["value"] for c in triggering} == {
        "e2e-child": "ALARM",
        "e2e-child2": "INSUFFICIENT_DATA",
    }

    # Forced to OK, it stays OK while no child changes state (spec §5.8.4) ...
    assert set_state(client, "e2e-parent", "OK").status_code == 200
    delivered(receiver, "e2e-parent", 3)
    tick(server, t + MINUTE_MS)
    assert view(client, "e2e-child")["state"]["value"] == "ALARM"
    assert view(client, "e2e-parent")["state"]["value"] == "OK"
    # ... and is computed again as soon as one does.
    assert set_state(client, "e2e-child2", "OK").status_code == 200
    assert view(client, "e2e-parent")["state"]["value"] == "ALARM"
    fourth = delivered(receiver, "e2e-parent", 4)[3]
    assert fourth.json["state"]["value"] == "ALARM"
    assert fourth.json["previous_state"]["value"] == "OK"
    assert len(deliveries(client, alarm="e2e-parent")) == 4

    composite_items = history(client, "e2e-parent", alarm_type="CompositeAlarm")
    assert composite_items and {i["alarm_type"] for i in composite_items} == {"CompositeAlarm"}
    assert history(client, "e2e-parent", alarm_type="MetricAlarm") == []


# ---- alarms created through the API


def api_alarm(threshold: float = 1) -> dict[str, Any]:
    return {
        "description": "from the API",
        "metric": {"namespace": "E2E/Api", "name": "Latency"},
        "statistic": "p90",
        "period": 60,
        "evaluation_periods": 2,
        "datapoints_to_alarm": 1,
        "comparison": ">=",
        "threshold": threshold,
        "treat_missing_data": "ignore",
    }


def test_put_and_delete_api_alarms(client: httpx.Client) -> None:
    created = client.put("/api/v1/alarms/api-latency", json=api_alarm())
    assert created.status_code == 200, created.text
    alarm = created.json()
    assert alarm["source"] == "api" and alarm["file"] is None and alarm["kind"] == "metric"
    assert alarm["state"]["value"] == "INSUFFICIENT_DATA"
    assert alarm["configuration"]["comparison"] == "GreaterThanOrEqualToThreshold"
    assert alarm["configuration"]["statistic"] == "p90"
    assert view(client, "api-latency")["description"] == "from the API"

    # A replacement keeps the state (PutMetricAlarm on an existing alarm).
    assert set_state(client, "api-latency", "ALARM").status_code == 200
    replaced = client.put("/api/v1/alarms/api-latency", json=api_alarm(threshold=7))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["state"]["value"] == "ALARM"
    assert replaced.json()["configuration"]["threshold"] == 7
    assert summaries(client, "api-latency", "ConfigurationUpdate") == [
        'Alarm "api-latency" created',
        'Alarm "api-latency" updated',
    ]

    invalid = error(
        client.put("/api/v1/alarms/api-bad", json={**api_alarm(), "evaluation_periods": "two"}),
        400,
    )
    (issue,) = invalid["details"]["errors"]
    assert issue["file"] == "api" and issue["field"].endswith("evaluation_periods")
    assert issue["line"] >= 1 and issue["column"] >= 1
    typo = error(client.put("/api/v1/alarms/api-bad", json={**api_alarm(), "treshold": 1}), 400)
    assert "treshold" in typo["details"]["errors"][0]["field"]
    mismatch = client.put("/api/v1/alarms/api-bad", json={**api_alarm(), "name": "other"})
    assert error(mismatch, 400)["details"]["field"] == "name"
    assert error(client.put("/api/v1/alarms/api-bad", content=b"{nope"), 400)
    assert client.get("/api/v1/alarms/api-bad").status_code == 404

    for reserved in ("silences", "history", "deliveries", "reload"):
        # A GET of such an alarm would answer with the silences, the history...
        refused = client.put(f"/api/v1/alarms/{reserved}", json=api_alarm())
        assert refused.status_code == 400, (reserved, refused.text)
        assert error(refused, 400)["details"]["field"] == "name"
    taken = error(client.put("/api/v1/alarms/e2e-cpu", json=api_alarm()), 409)
    assert taken["details"]["file"].endswith("alarms.yaml")
    assert view(client, "e2e-cpu")["configuration"]["threshold"] == 80

    assert client.put("/api/v1/alarms/api-maint", json=api_alarm()).status_code == 200
    composite = client.put(
        "/api/v1/alarms/composites/api-combo",
        json={
            "rule": "ALARM(api-latency)",
            "suppression": {"suppressor": "api-maint", "wait_period": 0, "extension_period": 0},
        },
    )
    assert composite.status_code == 200, composite.text
    assert composite.json()["kind"] == "composite" and composite.json()["source"] == "api"
    unknown_child = client.put(
        "/api/v1/alarms/composites/api-broken", json={"rule": "ALARM(no-such-child)"}
    )
    assert unknown_child.status_code == 400, unknown_child.text

    # Spec §5.1: deleting an alarm a composite references is refused with 409.
    blocked = error(client.delete("/api/v1/alarms/api-latency"), 409)
    assert blocked["details"]["composites"] == ["api-combo"]
    assert error(client.delete("/api/v1/alarms/api-maint"), 409)["details"]["composites"] == [
        "api-combo"
    ]
    assert view(client, "api-latency")["state"]["value"] == "ALARM"
    assert error(client.delete("/api/v1/alarms/e2e-cpu"), 409)
    assert error(client.delete("/api/v1/alarms/no-such-alarm"), 404)

    assert client.delete("/api/v1/alarms/api-combo").status_code == 200
    assert client.delete("/api/v1/alarms/api-maint").status_code == 200
    deleted = client.delete("/api/v1/alarms/api-latency")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": "api-latency"}
    assert client.get("/api/v1/alarms/api-latency").status_code == 404
    kept = history(client, "api-latency")
    assert kept[-1]["type"] == "ConfigurationUpdate"
    assert kept[-1]["summary"] == 'Alarm "api-latency" deleted'
    assert {i["type"] for i in kept} == {"ConfigurationUpdate", "StateUpdate"}


def test_put_replaces_the_whole_configuration_including_actions_enabled(
    client: httpx.Client,
) -> None:
    body = {**api_alarm(), "actions": {"alarm": ["hook"]}}
    assert client.put("/api/v1/alarms/api-toggle", json=body).status_code == 200
    assert client.post("/api/v1/alarms/api-toggle/actions/disable").json()["actions_enabled"] is (
        False
    )
    unknown_target = client.put(
        "/api/v1/alarms/api-toggle", json={**body, "actions": {"alarm": ["nobody"]}}
    )
    assert "nobody" in error(unknown_target, 400)["message"]
    # Spec §5.1: putting an existing alarm replaces its whole configuration; fields left out
    # (actions_enabled: default true) return to their defaults.
    replaced = client.put("/api/v1/alarms/api-toggle", json={**body, "threshold": 5})
    assert replaced.status_code == 200, replaced.text
    try:
        assert replaced.json()["actions_enabled"] is True
    finally:
        assert client.delete("/api/v1/alarms/api-toggle").status_code == 200


# ---- reload


def test_reload_creates_updates_and_refuses_invalid_files_atomically(
    server: RunningServer, client: httpx.Client
) -> None:
    rules = server.settings.data_dir / "rules"
    t = slot()
    put_points(client, "e2e-reload", [(t - 30_000, 85.0)])
    tick(server, t)
    before = view(client, "e2e-reload")["state"]
    assert before["value"] == "ALARM"

    (rules / "extra.yaml").write_text(yaml.safe_dump({"alarms": [metric_alarm("e2e-new")]}))
    (rules / "reload.yaml").write_text(
        yaml.safe_dump({"alarms": [metric_alarm("e2e-reload", threshold=90)]})
    )
    reloaded = client.post("/api/v1/alarms/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["targets"] == 1 and reloaded.json()["silences"] == 1
    new = view(client, "e2e-new")
    assert new["source"] == "file" and new["file"].endswith("extra.yaml")
    assert new["state"]["value"] == "INSUFFICIENT_DATA"
    after = view(client, "e2e-reload")
    assert after["state"] == before and after["configuration"]["threshold"] == 90
    (update,) = [
        item
        for item in history(client, "e2e-reload", type="ConfigurationUpdate")
        if item["data"]["type"] == "Update"
    ]
    assert update["summary"] == 'Alarm "e2e-reload" updated'
    assert update["data"]["originalAlarm"]["threshold"] == 80
    assert update["data"]["updatedAlarm"]["threshold"] == 90

    broken = rules / "broken.yaml"
    broken.write_text("alarms:\n  - name: e2e-broken\n    metrik: {}\n")
    (rules / "extra.yaml").unlink()
    try:
        refused = error(client.post("/api/v1/alarms/reload"), 400)
    finally:
        broken.unlink()
    assert "broken.yaml:3:5" in refused["message"]
    issues = refused["details"]["errors"]
    assert any(
        i["file"].endswith("broken.yaml") and (i["line"], i["column"]) == (3, 5) for i in issues
    )
    assert view(client, "e2e-new")["state"]["value"] == "INSUFFICIENT_DATA"  # nothing changed
    assert client.get("/api/v1/alarms/e2e-broken").status_code == 404

    # Without extra.yaml, a good reload deletes its alarm.
    assert client.post("/api/v1/alarms/reload").status_code == 200
    assert client.get("/api/v1/alarms/e2e-new").status_code == 404
    assert summaries(client, "e2e-new", "ConfigurationUpdate")[-1] == 'Alarm "e2e-new" deleted'


# ---- silences


def test_a_silence_suppresses_actions_and_its_end_announces_the_state_once(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    t = slot()
    now = int(time.time() * 1_000)
    created = client.post(
        "/api/v1/alarms/silences",
        json={
            "match": {"alarm": "e2e-silenced", "labels": {"team": "web"}},
            "starts": iso(t - 10 * MINUTE_MS),
            "ends": iso(now + 3_600_000),
            "comment": "maintenance",
        },
    )
    assert created.status_code == 201, created.text
    silence_id = created.json()["id"]
    listed = {s["id"]: s for s in client.get("/api/v1/alarms/silences").json()["silences"]}
    assert listed[silence_id]["source"] == "api" and listed[silence_id]["active"] is True
    assert listed[silence_id]["comment"] == "maintenance"
    assert listed["old-window"]["source"] == "file" and listed["old-window"]["active"] is False

    put_points(client, "e2e-silenced", [(t - 30_000, 99.0)])
    tick(server, t)
    alarm = view(client, "e2e-silenced")
    assert alarm["state"]["value"] == "ALARM" and alarm["actions_suppressed_by"] == "Silence"
    (action,) = history(client, "e2e-silenced", type="Action")
    assert action["summary"] == f"Suppressed by silence {silence_id}"
    assert deliveries(client, alarm="e2e-silenced") == []

    assert client.delete(f"/api/v1/alarms/silences/{silence_id}").status_code == 200
    assert client.delete(f"/api/v1/alarms/silences/{silence_id}").status_code == 404
    assert silence_id not in {
        s["id"] for s in client.get("/api/v1/alarms/silences").json()["silences"]
    }
    tick(server, t + MINUTE_MS)  # still ALARM, never announced: announced now, once
    (announced,) = delivered(receiver, "e2e-silenced", 1)
    assert announced.json["state"]["value"] == "ALARM"
    tick(server, t + 2 * MINUTE_MS)
    assert len(deliveries(client, alarm="e2e-silenced")) == 1
    assert view(client, "e2e-silenced")["actions_suppressed_by"] is None


def test_a_silence_that_runs_out_announces_the_current_state_once(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    t = slot()
    created = client.post(
        "/api/v1/alarms/silences",
        json={
            "id": "short-window",
            "match": {"alarm": "e2e-wind*"},
            "starts": iso(t - 5 * MINUTE_MS),
            "ends": iso(t + 30_000),
        },
    )
    assert created.status_code == 201 and created.json() == {"id": "short-window"}
    listed = {s["id"]: s for s in client.get("/api/v1/alarms/silences").json()["silences"]}
    assert listed["short-window"]["active"] is False  # it ended minutes ago, by the clock
    try:
        put_points(client, "e2e-window", [(t - 30_000, 99.0)])
        tick(server, t)  # inside the window
        assert view(client, "e2e-window")["actions_suppressed_by"] == "Silence"
        assert deliveries(client, alarm="e2e-window") == []
        tick(server, t + MINUTE_MS)  # the window is over: announced once
        (announced,) = delivered(receiver, "e2e-window", 1)
        assert announced.json["state"]["value"] == "ALARM"
        tick(server, t + 2 * MINUTE_MS)
        assert len(deliveries(client, alarm="e2e-window")) == 1
    finally:
        client.delete("/api/v1/alarms/silences/short-window")


def test_silences_from_rule_files_are_changed_there_and_schedules_work(
    client: httpx.Client,
) -> None:
    response = client.post(
        "/api/v1/alarms/silences",
        json={
            "id": "old-window",
            "match": {"alarm": "*"},
            "starts": "2030-01-01T00:00:00Z",
            "ends": "2030-01-02T00:00:00Z",
        },
    )
    assert error(response, 409)["details"] == {"silence": "old-window"}
    assert error(client.delete("/api/v1/alarms/silences/old-window"), 409)
    assert error(client.delete("/api/v1/alarms/silences/no-such-silence"), 404)
    bad = client.post("/api/v1/alarms/silences", json={"match": {"alarm": "x"}, "starts": "no"})
    assert bad.status_code == 400, bad.text
    for silence_id in (["x"], 7, ""):
        odd = client.post("/api/v1/alarms/silences", json={"id": silence_id, "match": {}})
        assert error(odd, 400)["details"]["field"] == "id"
    assert error(client.post("/api/v1/alarms/silences", json=[1]), 400)
    weekly = client.post(
        "/api/v1/alarms/silences",
        json={
            "match": {"alarm": "nothing-here"},
            "schedule": {"cron": "* * * * *", "duration": "1h", "timezone": "Europe/Berlin"},
        },
    )
    assert weekly.status_code == 201, weekly.text
    listed = {s["id"]: s for s in client.get("/api/v1/alarms/silences").json()["silences"]}
    assert listed[weekly.json()["id"]]["active"] is True
    assert listed[weekly.json()["id"]]["schedule"]["cron"] == "* * * * *"
    assert client.delete(f"/api/v1/alarms/silences/{weekly.json()['id']}").status_code == 200


# ---- history


def test_history_pages_without_overlap_or_gap(client: httpx.Client) -> None:
    for state in ("OK", "ALARM", "OK", "ALARM", "INSUFFICIENT_DATA", "OK"):
        assert set_state(client, "e2e-pages", state).status_code == 200
    full = client.get("/api/v1/alarms/history", params={"name": "e2e-pages"}).json()
    assert full["next_token"] is None and len(full["items"]) == 7
    stamps = [item["timestamp"] for item in full["items"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first by default

    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"name": "e2e-pages", "max_records": 2}
    pages = 0
    while True:
        page = client.get("/api/v1/alarms/history", params=params).json()
        assert len(page["items"]) <= 2
        paged += page["items"]
        pages += 1
        if not page["next_token"]:
            break
        params["next_token"] = page["next_token"]
    assert pages == 4 and paged == full["items"]

    updates = client.get(
        "/api/v1/alarms/history", params={"name": "e2e-pages", "type": "StateUpdate"}
    ).json()["items"]
    assert len(updates) == 6 and {u["type"] for u in updates} == {"StateUpdate"}
    assert updates[0]["summary"] == "Alarm updated from INSUFFICIENT_DATA to OK"

    bad = error(
        client.get("/api/v1/alarms/history", params={"name": "e2e-pages", "next_token": "xyz"}),
        400,
    )
    assert bad["code"] == "InvalidNextToken"
    assert client.get("/api/v1/alarms/history", params={"max_records": 0}).status_code == 400
    assert client.get("/api/v1/alarms/history", params={"type": "Nope"}).status_code == 400


# ---- audit trail


def test_state_changes_and_actions_are_audited_as_service_events(
    server: RunningServer, client: httpx.Client, receiver: Receiver
) -> None:
    t = slot()
    put_points(client, "e2e-audited", [(t - 30_000, 99.0)])
    tick(server, t)
    delivered(receiver, "e2e-audited", 1)
    wait_for(lambda: history(client, "e2e-audited", type="Action"))

    def audited(event_name: str) -> list[dict[str, Any]]:
        params = {"lookup_key": "EventName", "lookup_value": event_name, "max_results": 50}
        records: list[dict[str, Any]] = []
        while True:
            response = client.get("/api/v1/audit/events", params=params)
            if response.status_code == 429:  # LookupEvents is rate limited; poll again
                return []
            assert response.status_code == 200, response.text
            records += [json.loads(e["cloudtrail_event"]) for e in response.json()["events"]]
            if not response.json()["next_token"]:
                break
            params["next_token"] = response.json()["next_token"]
        return [r for r in records if r["serviceEventDetails"]["alarm_name"] == "e2e-audited"]

    (change,) = wait_for(lambda: audited("AlarmStateChange"))
    assert change["eventSource"] == "monitoring.watchkeep"
    assert change["eventType"] == "AwsServiceEvent"
    assert change["userIdentity"]["type"] == "AWSService"
    assert change["userIdentity"]["invokedBy"] == "monitoring.watchkeep"
    details = change["serviceEventDetails"]
    assert details["summary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert details["data"]["newState"]["stateValue"] == "ALARM"
    (created,) = audited("AlarmConfigurationUpdate")
    assert created["serviceEventDetails"]["summary"] == 'Alarm "e2e-audited" created'
    assert created["eventSource"] == "monitoring.watchkeep"
    (action,) = wait_for(lambda: audited("AlarmAction"))
    assert action["eventSource"] == "monitoring.watchkeep"
    assert action["serviceEventDetails"]["summary"] == "Successfully executed action hook"


# ---- authorization


def test_a_key_without_cloudwatch_permissions_changes_nothing(
    server: RunningServer, client: httpx.Client
) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["logs:*", "cloudwatch:Describe*"], "Resource": "*"}
        ],
    }
    client.put("/api/v1/iam/users/alarm-reader").raise_for_status()
    assert client.put("/api/v1/iam/policies/alarm-reader", json=policy).status_code == 201
    client.put("/api/v1/iam/users/alarm-reader/policies/alarm-reader").raise_for_status()
    key = client.post("/api/v1/iam/users/alarm-reader/keys").json()["key"]
    rules = server.settings.data_dir / "rules"
    (rules / "sneaky.yaml").write_text(yaml.safe_dump({"alarms": [metric_alarm("e2e-sneaky")]}))
    before = view(client, "e2e-pages")
    silences_before = client.get("/api/v1/alarms/silences").json()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as reader:
            assert reader.get("/api/v1/alarms/e2e-pages").status_code == 200
            denied = [
                reader.put("/api/v1/alarms/api-sneaky", json=api_alarm()),
                reader.post(
                    "/api/v1/alarms/e2e-pages/state", json={"state": "ALARM", "reason": "x"}
                ),
                reader.post("/api/v1/alarms/reload"),
                reader.delete("/api/v1/alarms/e2e-pages"),
                reader.post("/api/v1/alarms/e2e-pages/actions/disable"),
                reader.post("/api/v1/alarms/silences", json={"match": {"alarm": "*"}}),
            ]
    finally:
        (rules / "sneaky.yaml").unlink()
    for response in denied:
        assert error(response, 403)["code"] == "AccessDeniedException"
    assert view(client, "e2e-pages") == before
    assert client.get("/api/v1/alarms/api-sneaky").status_code == 404
    assert client.get("/api/v1/alarms/e2e-sneaky").status_code == 404
    assert client.get("/api/v1/alarms/silences").json() == silences_before


# ---- the scheduler's own tick


def test_a_high_resolution_alarm_fires_on_the_scheduled_tick(client: httpx.Client) -> None:
    # The tick at the next 10 s instant T reads [T - 10 s, T) once: a datum stored after that
    # read is never evaluated. Put it early in its 10 s bucket, well before T.
    into_bucket = time.time() % 10
    if into_bucket > 4:
        time.sleep(10 - into_bucket + 0.2)
    now = int(time.time() * 1_000)
    put_points(client, "e2e-hires", [(now, 9.0)], storage_resolution=1)
    alarm = wait_for(
        lambda: (a := view(client, "e2e-hires"))["state"]["value"] == "ALARM" and a,
        timeout_s=25,
    )
    transitioned = datetime.fromisoformat(alarm["state"]["transitioned"])
    assert transitioned.second % 10 == 0 and transitioned.microsecond == 0  # a 10 s instant
    assert transitioned.timestamp() * 1_000 > now
    assert alarm["state"]["reason_data"]["period"] == 10


# ---- restart


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_states_history_and_a_pending_delivery_survive_a_restart(
    tmp_path: Path, secret_env: None
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/watchkeep"
    rules = tmp_path / "data" / "rules"
    rules.mkdir(parents=True)
    target = {
        **TARGET,
        "url": url,
        "retry": {"max_attempts": 50, "initial_backoff": "1s", "max_backoff": "1s"},
    }
    (rules / "rules.yaml").write_text(
        yaml.safe_dump(
            {
                "targets": {"down": target},
                "alarms": [metric_alarm("e2e-restart", actions={"alarm": ["down"]})],
            }
        )
    )
    settings = make_settings(tmp_path / "data")
    first = RunningServer(settings).start()
    try:
        with httpx.Client(
            base_url=first.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as c:
            now = int(time.time() * 1_000)
            t = now - now % MINUTE_MS
            put_points(c, "e2e-restart", [(t - 30_000, 99.0)])
            tick(first, t)
            (pending,) = wait_for(
                lambda: [
                    d
                    for d in deliveries(c, alarm="e2e-restart", status="pending")
                    if d["attempts"] >= 1
                ]
            )
            assert pending["last_error"] == "connection refused"
            state_before = view(c, "e2e-restart")["state"]
            history_before = history(c, "e2e-restart")
            assert c.put("/api/v1/alarms/api-kept", json=api_alarm()).status_code == 200
            assert c.post("/api/v1/alarms/api-kept/actions/disable").status_code == 200
            silence = {"id": "kept", "match": {"alarm": "x"}, "starts": iso(t), "ends": iso(t + 1)}
            assert c.post("/api/v1/alarms/silences", json=silence).status_code == 201
    finally:
        first.stop()

    with Receiver(port=port) as receiver:
        second = RunningServer(make_settings(tmp_path / "data")).start()
        try:
            with httpx.Client(
                base_url=second.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
            ) as c:
                assert view(c, "e2e-restart")["state"] == state_before
                kept = view(c, "api-kept")
                assert kept["source"] == "api" and kept["actions_enabled"] is False
                silences = c.get("/api/v1/alarms/silences").json()["silences"]
                assert [(s["id"], s["source"]) for s in silences] == [("kept", "api")]
                assert history(c, "e2e-restart")[: len(history_before)] == history_before
                (request,) = delivered(receiver, "e2e-restart", 1)
                assert request.verified and request.delivery_id == pending["delivery_id"]
                assert request.attempt > pending["attempts"]
                (done,) = wait_for(lambda: deliveries(c, alarm="e2e-restart", status="delivered"))
                assert done["delivery_id"] == pending["delivery_id"]
                actions = wait_for(lambda: history(c, "e2e-restart", type="Action"))
                assert actions[-1]["summary"] == "Successfully executed action down"
        finally:
            second.stop()
