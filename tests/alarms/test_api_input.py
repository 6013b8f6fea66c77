"""What the alarm API refuses, and how it says so, through a real server: reason data that is
not JSON (NaN, Infinity, 1e400, lone surrogates, deep nesting), silence ids and alarm names that
could never be used again, and body errors named by their JSON path in the body.

Python's JSON parser, which FastAPI uses for SetAlarmState, reads ``NaN``, ``Infinity`` and
``1e400`` (as infinity); orjson, the audit trail and every other reader refuse them. Such a body
is sent as raw text here, since httpx's ``json=`` would refuse to write it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from alarms.rules import RulesError, load_rule_texts
from tests.conftest import RunningServer, make_settings

ALARM = {
    "metric": {"namespace": "Input/Test", "name": "m"},
    "statistic": "Maximum",
    "period": 60,
    "evaluation_periods": 1,
    "comparison": ">",
    "threshold": 1,
    "treat_missing_data": "ignore",
}
WINDOW = {
    "match": {"alarm": "nothing-*"},
    "starts": "2030-01-01T00:00:00Z",
    "ends": "2030-01-01T01:00:00Z",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("alarm-input") / "data"
    (data / "rules").mkdir(parents=True)
    running = RunningServer(make_settings(data)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.root_client() as c:
        yield c


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


def post_raw(client: httpx.Client, path: str, text: str) -> httpx.Response:
    return client.post(path, content=text, headers={"Content-Type": "application/json"})


def state_of(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/alarms/{name}")
    assert response.status_code == 200, response.text
    return response.json()["state"]  # type: ignore[no-any-return]


def audited(client: httpx.Client, event_name: str) -> list[dict[str, Any]]:
    params = {"lookup_key": "EventName", "lookup_value": event_name, "max_results": 50}
    response = client.get("/api/v1/audit/events", params=params)
    assert response.status_code == 200, response.text
    return [json.loads(e["cloudtrail_event"]) for e in response.json()["events"]]


# ---- SetAlarmState: reason data that is not JSON is refused before the state changes

DEEP = "[" * 100 + "]" * 100
POISONED = [
    ('{"a": NaN}', "reason_data.a is NaN"),
    ('{"a": {"b": [1, Infinity]}}', "reason_data.a.b[1] is Infinity"),
    ('{"a": -Infinity}', "reason_data.a is Infinity"),
    ('{"a": 1e400}', "beyond ±1.8e308"),
    ('{"a": "\\ud800"}', "reason_data.a holds a lone surrogate"),
    ('{"\\udfff": 1}', "a key in reason_data holds a lone surrogate"),
    ('{"a": ' + DEEP + "}", "reason_data is nested more than 64 levels deep"),
]


@pytest.mark.parametrize("reason_data, fragment", POISONED, ids=[p[1] for p in POISONED])
def test_reason_data_that_is_not_json_is_refused_and_the_alarm_is_unchanged(
    client: httpx.Client, reason_data: str, fragment: str
) -> None:
    assert client.put("/api/v1/alarms/poisoned", json=ALARM).status_code == 200
    before = state_of(client, "poisoned")
    body = '{"state": "ALARM", "reason": "poisoned", "reason_data": ' + reason_data + "}"
    refused = error(post_raw(client, "/api/v1/alarms/poisoned/state", body), 400)
    # InvalidFormat, as for reason data given as a string that is not JSON (spec §5.8.4).
    assert refused["code"] == "InvalidFormat"
    assert fragment in refused["message"], refused["message"]
    assert refused["details"] == {"field": "reason_data"}
    assert state_of(client, "poisoned") == before
    # Nothing failed closed: the trail is healthy and the next call is answered.
    assert client.get("/api/v1/audit/status").status_code == 200
    fine = post_raw(client, "/api/v1/alarms/poisoned/state", body.replace(reason_data, "{}"))
    assert fine.status_code == 200, fine.text
    assert state_of(client, "poisoned")["value"] == "ALARM"
    reset = client.post("/api/v1/alarms/poisoned/state", json={"state": "OK", "reason": "r"})
    assert reset.status_code == 200, reset.text


def test_a_refused_set_alarm_state_is_recorded_with_its_status(client: httpx.Client) -> None:
    assert client.put("/api/v1/alarms/recorded", json=ALARM).status_code == 200
    body = '{"state": "ALARM", "reason": "nan-check", "reason_data": {"a": NaN}}'
    assert post_raw(client, "/api/v1/alarms/recorded/state", body).status_code == 400
    records = [
        r
        for r in audited(client, "SetAlarmState")
        if r["requestParameters"] and r["requestParameters"].get("name") == "recorded"
    ]
    assert records, "the refused call is not in the trail"
    record = records[0]
    assert record["errorCode"] == "InvalidFormat"
    assert record["additionalEventData"]["watchkeep"]["httpStatus"] == 400


# ---- silence ids and alarm names


@pytest.mark.parametrize(
    "silence_id",
    ["a/b", "x" * 100_000, "\u0000", "bell\u0007", " ", "", " padded", "padded\t"],
    ids=["slash", "100k", "nul", "control", "blank", "empty", "leading", "trailing"],
)
def test_silence_ids_that_could_not_be_used_again_are_refused(
    client: httpx.Client, silence_id: str
) -> None:
    refused = error(client.post("/api/v1/alarms/silences", json={**WINDOW, "id": silence_id}), 400)
    assert refused["code"] == "InvalidParameterException"
    assert refused["details"] == {"field": "id"}
    assert refused["message"].startswith("a silence id is 1 to 255 characters")
    assert "'/'" in refused["message"] and "whitespace" in refused["message"]
    listed = client.get("/api/v1/alarms/silences").json()["silences"]
    assert all(silence["id"] != silence_id for silence in listed)


def test_an_accepted_silence_id_can_be_deleted(client: httpx.Client) -> None:
    for silence_id in ("maintenance window: db #1 (50%?)", "ü" * 255):
        created = client.post("/api/v1/alarms/silences", json={**WINDOW, "id": silence_id})
        assert created.status_code == 201, created.text
        deleted = client.delete(f"/api/v1/alarms/silences/{quote(silence_id, safe='')}")
        assert deleted.status_code == 200, deleted.text
    assert error(client.post("/api/v1/alarms/silences", json={**WINDOW, "id": 7}), 400)[
        "details"
    ] == {"field": "id"}


@pytest.mark.parametrize("name", [" ", "%20%20", "%20cpu", "cpu%20", "cpu%09"])
def test_blank_or_padded_alarm_names_are_refused(client: httpx.Client, name: str) -> None:
    for path in (f"/api/v1/alarms/{name}", f"/api/v1/alarms/composites/{name}"):
        body = ALARM if "composites" not in path else {"rule": "ALARM(anything)"}
        refused = error(client.put(path, json=body), 400)
        assert refused["details"] == {"field": "name"}
        assert "neither blank nor starts or ends with whitespace" in refused["message"]
    names = [alarm["name"] for alarm in client.get("/api/v1/alarms").json()["alarms"]]
    assert all(n.strip() == n and n for n in names)


# ---- errors of a body name its JSON path, not a line of an internal YAML text


def test_metric_alarm_body_errors_name_the_json_path(client: httpx.Client) -> None:
    bad = error(client.put("/api/v1/alarms/bad-threshold", json={**ALARM, "threshold": "x"}), 400)
    assert bad["message"].startswith("invalid alarm:")
    assert "threshold: Input should be a valid number" in bad["message"]
    assert "api:" not in bad["message"]
    assert {issue["path"] for issue in bad["details"]["errors"]} == {"threshold"}
    nested = {**ALARM, "metric": {**ALARM["metric"], "nmae": "m"}}  # type: ignore[dict-item]
    typo = error(client.put("/api/v1/alarms/bad-metric", json=nested), 400)
    assert "metric.nmae: unknown key 'nmae'; did you mean 'name'?" in typo["message"]
    whole = error(client.put("/api/v1/alarms/bad-both", json={**ALARM, "query": []}), 400)
    assert whole["message"] == "invalid alarm: give exactly one of `metric` and `query`"


def test_a_composite_with_a_metric_key_is_told_what_composites_accept(
    client: httpx.Client,
) -> None:
    body = {"rule": "ALARM(anything)", "metric": {"namespace": "n", "name": "m"}}
    refused = error(client.put("/api/v1/alarms/composites/comp-metric", json=body), 400)
    message = refused["message"]
    assert message.startswith("invalid alarm: metric: unknown key 'metric'; a composite alarm ")
    assert "did you mean 'metric'" not in message
    assert "accepts name, description, labels, rule, actions_enabled, actions, suppression" in (
        message
    )
    assert "api:" not in message
    unknown = error(
        client.put("/api/v1/alarms/composites/comp-child", json={"rule": "ALARM(nobody-here)"}),
        400,
    )
    assert unknown["message"] == (
        "invalid alarm: rule: the rule names 'nobody-here', which is not an alarm"
    )


def test_silence_body_errors_name_the_json_path(client: httpx.Client) -> None:
    body = {**WINDOW, "match": {"alarm": "x", "lables": {}}}
    refused = error(client.post("/api/v1/alarms/silences", json=body), 400)
    assert refused["message"] == (
        "invalid silence: match.lables: unknown key 'lables'; did you mean 'labels'?"
    )
    backwards = {**WINDOW, "ends": "2029-01-01T00:00:00Z"}
    refused = error(client.post("/api/v1/alarms/silences", json=backwards), 400)
    assert refused["message"] == "invalid silence: ends: `ends` must be after `starts`"


def test_a_body_nested_too_deeply_is_refused(client: httpx.Client) -> None:
    for depth in (100, 300, 1_000):
        deep = "[" * depth + "]" * depth
        for method, path in (("PUT", "/api/v1/alarms/deep"), ("POST", "/api/v1/alarms/silences")):
            body = '{"labels": ' + deep + "}"
            response = client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            refused = error(response, 400)
            assert refused["message"] == "the body is nested more than 64 levels deep"


# ---- rule files: a did-you-mean never suggests the key itself


def test_a_rule_file_composite_with_a_metric_key_lists_the_keys_it_accepts(
    tmp_path: Path,
) -> None:
    text = yaml.safe_dump(
        {"composites": [{"name": "c", "rule": "ALARM(c)", "metric": {"name": "m"}}]}
    )
    with pytest.raises(RulesError) as info:
        load_rule_texts([("rules/c.yaml", text)])
    (issue,) = info.value.issues
    assert (issue.field, issue.line) == ("composites[0].metric", 2)
    assert "did you mean" not in issue.message
    assert issue.message.startswith("unknown key 'metric'; a composite alarm accepts name, ")
    # A key of a nested model: the keys of that model, not every key of every model.
    schedule = {"id": "s", "match": {}, "schedule": {"cron": "* * * * *", "duration": 5, "tz": 1}}
    with pytest.raises(RulesError) as info:
        load_rule_texts([("rules/s.yaml", yaml.safe_dump({"silences": [schedule]}))])
    (issue,) = info.value.issues
    assert issue.message == "unknown key 'tz'; `schedule` accepts cron, duration, timezone"
