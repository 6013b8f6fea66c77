"""The alarm API's puts, deletes and silences through a real server (uvicorn on a free port,
a rule directory, the gate and its principals).

Hundreds of alarms are created one by one, as a user (or Terraform) does, and the errors a
put must still give (names taken, unknown children, cycles) are checked at the end, when the
running rules are large: each put is validated against the running rules, not by loading
everything again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ADMIN_KEY, RunningServer, make_settings

MANY = 300


def metric_alarm(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "metric": {"namespace": "Routes/Test", "name": name},
        "statistic": "Maximum",
        "period": 60,
        "evaluation_periods": 1,
        "comparison": ">",
        "threshold": 1,
        "treat_missing_data": "ignore",
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("alarm-routes") / "data"
    rules = data / "rules"
    rules.mkdir(parents=True)
    (rules / "file.yaml").write_text(
        yaml.safe_dump(
            {
                "alarms": [metric_alarm("file-cpu"), metric_alarm("file-disk")],
                "composites": [{"name": "file-any", "rule": "ALARM(file-cpu)"}],
            }
        )
    )
    running = RunningServer(make_settings(data)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as c:
        yield c


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error of the Contracts' one body shape, with its status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def put(client: httpx.Client, name: str, body: dict[str, Any]) -> httpx.Response:
    return client.put(f"/api/v1/alarms/{name}", json={k: v for k, v in body.items() if k != "name"})


def put_composite(client: httpx.Client, name: str, rule: str, **extra: Any) -> httpx.Response:
    return client.put(f"/api/v1/alarms/composites/{name}", json={"rule": rule, **extra})


def messages(response: httpx.Response) -> list[str]:
    return [issue["message"] for issue in error(response, 400)["details"]["errors"]]


def names(client: httpx.Client, prefix: str) -> list[str]:
    response = client.get("/api/v1/alarms", params={"prefix": prefix})
    assert response.status_code == 200, response.text
    return sorted(alarm["name"] for alarm in response.json()["alarms"])


# ---- PutMetricAlarm / PutCompositeAlarm one by one


def test_hundreds_of_alarms_put_one_by_one_still_refuse_conflicts_references_and_cycles(
    client: httpx.Client,
) -> None:
    for index in range(MANY):
        response = put(client, f"bulk-{index:03d}", metric_alarm(f"bulk-{index:03d}"))
        assert response.status_code == 200, response.text
    for index in range(0, MANY, 10):  # a composite over each ten alarms, chained to the previous
        children = " OR ".join(f"ALARM(bulk-{index + k:03d})" for k in range(10))
        if index:
            children += f" OR ALARM(bulk-any-{index - 10:03d})"
        response = put_composite(client, f"bulk-any-{index:03d}", children)
        assert response.status_code == 200, response.text
    assert len(names(client, "bulk-")) == MANY + MANY // 10

    # A name a rule file defines: 409 naming the file, and the file's alarm is untouched.
    taken = error(put(client, "file-cpu", metric_alarm("file-cpu", threshold=5)), 409)
    assert taken["details"]["file"].endswith("file.yaml")
    assert "defined in the rule file" in taken["message"]
    assert client.get("/api/v1/alarms/file-cpu").json()["configuration"]["threshold"] == 1
    # Another kind under the same name: 409.
    other_kind = error(put_composite(client, "bulk-007", "ALARM(bulk-001)"), 409)
    assert other_kind["details"] == {"alarm": "bulk-007", "kind": "metric"}
    # Children, suppressors and targets must exist, with the loader's messages and places.
    unknown = put_composite(client, "bulk-broken", "ALARM(bulk-001) OR ALARM(nothing-here)")
    assert messages(unknown) == ["the rule names 'nothing-here', which is not an alarm"]
    (issue,) = error(unknown, 400)["details"]["errors"]
    assert (issue["file"], issue["field"]) == ("api", "composites[0].rule")
    assert issue["line"] >= 1 and issue["column"] >= 1
    close = put_composite(client, "bulk-broken", "ALARM(file-cpux)")
    assert messages(close) == [
        "the rule names 'file-cpux', which is not an alarm; did you mean 'file-cpu'?"
    ]
    suppressor = {"suppressor": "nobody", "wait_period": 0, "extension_period": 0}
    suppressed = put_composite(client, "bulk-broken", "ALARM(bulk-001)", suppression=suppressor)
    assert messages(suppressed) == ["unknown suppressor alarm 'nobody'"]
    no_target = put(client, "bulk-000", metric_alarm("bulk-000", actions={"alarm": ["pager"]}))
    assert messages(no_target) == ["unknown target 'pager'"]
    assert client.get("/api/v1/alarms/bulk-broken").status_code == 404

    # Cycles: through the chain of thirty composites, and a composite naming itself.
    first, last = "bulk-any-000", f"bulk-any-{MANY - 10:03d}"
    cycle = put_composite(client, first, f"ALARM(bulk-000) OR ALARM({last})")
    (message,) = messages(cycle)
    chain = [f"bulk-any-{index:03d}" for index in range(0, MANY, 10)]
    assert message == "composite rules form a cycle: " + " -> ".join([first, *chain[::-1]])
    assert messages(put_composite(client, "bulk-self", "ALARM(bulk-self)")) == [
        "composite rules form a cycle: bulk-self -> bulk-self"
    ]
    assert client.get(f"/api/v1/alarms/{first}").json()["configuration"]["rule"] == (
        " OR ".join(f"ALARM(bulk-{k:03d})" for k in range(10))
    )
    assert client.get("/api/v1/alarms/bulk-self").status_code == 404

    # A replacement keeps its place and state; a whole reload agrees with the puts.
    assert put(client, "bulk-150", metric_alarm("bulk-150", threshold=9)).status_code == 200
    reloaded = client.post("/api/v1/alarms/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["alarms"] == MANY + 2 and reloaded.json()["composites"] == MANY // 10 + 1
    assert client.get("/api/v1/alarms/bulk-150").json()["configuration"]["threshold"] == 9
    history = client.get("/api/v1/alarms/history", params={"name": "bulk-150"}).json()["items"]
    assert [item["summary"] for item in history] == [
        'Alarm "bulk-150" updated',
        'Alarm "bulk-150" created',
    ]


# ---- DeleteAlarms


def test_deleting_an_unknown_alarm_is_not_found_and_a_file_alarm_is_refused(
    client: httpx.Client,
) -> None:
    missing = error(client.delete("/api/v1/alarms/no-such-alarm"), 404)
    assert missing["code"] == "ResourceNotFoundException"
    assert missing["details"] == {"alarm": "no-such-alarm"}
    assert "no-such-alarm" in missing["message"]
    history = client.get("/api/v1/alarms/history", params={"name": "no-such-alarm"})
    assert history.json()["items"] == []

    assert put(client, "gone-soon", metric_alarm("gone-soon")).status_code == 200
    assert client.delete("/api/v1/alarms/gone-soon").json() == {"deleted": "gone-soon"}
    again = error(client.delete("/api/v1/alarms/gone-soon"), 404)
    assert again["code"] == "ResourceNotFoundException"

    # A file alarm is deleted in its file, even when no composite references it.
    refused = error(client.delete("/api/v1/alarms/file-disk"), 409)
    assert refused["details"]["file"].endswith("file.yaml")
    assert "delete it there" in refused["message"] and "reload" in refused["message"]
    # Referenced by a file composite as well: the file is named first, not the composite.
    assert error(client.delete("/api/v1/alarms/file-cpu"), 409)["details"]["file"].endswith(
        "file.yaml"
    )
    assert client.get("/api/v1/alarms/file-disk").status_code == 200

    # An API alarm a composite references (by name or as suppressor): 409 naming it.
    assert put(client, "held-child", metric_alarm("held-child")).status_code == 200
    assert put(client, "held-maint", metric_alarm("held-maint")).status_code == 200
    suppression = {"suppressor": "held-maint", "wait_period": 0, "extension_period": 0}
    held = put_composite(client, "held-parent", "ALARM(held-child)", suppression=suppression)
    assert held.status_code == 200, held.text
    for child in ("held-child", "held-maint"):
        in_use = error(client.delete(f"/api/v1/alarms/{child}"), 409)
        assert in_use["code"] == "ResourceInUseException"
        assert in_use["details"] == {"alarm": child, "composites": ["held-parent"]}
    assert client.delete("/api/v1/alarms/held-parent").status_code == 200
    assert client.delete("/api/v1/alarms/held-child").status_code == 200


# ---- silences


def test_a_silence_records_the_authenticated_caller_as_its_author(
    server: RunningServer, client: httpx.Client
) -> None:
    window = {
        "match": {"alarm": "file-*"},
        "starts": "2030-01-01T00:00:00Z",
        "ends": "2030-01-01T01:00:00Z",
    }
    forged = client.post("/api/v1/alarms/silences", json={**window, "created_by": "alice"})
    refused = error(forged, 400)
    assert refused["code"] == "InvalidParameterException"
    assert refused["details"] == {"field": "created_by"}
    assert client.get("/api/v1/alarms/silences").json()["silences"] == []

    by_root = client.post("/api/v1/alarms/silences", json={**window, "id": "by-root"})
    assert by_root.status_code == 201, by_root.text

    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["cloudwatch:*"], "Resource": "*"}],
    }
    client.put("/api/v1/iam/users/silencer").raise_for_status()
    assert client.put("/api/v1/iam/policies/silencer", json=policy).status_code == 201
    client.put("/api/v1/iam/users/silencer/policies/silencer").raise_for_status()
    key = client.post("/api/v1/iam/users/silencer/keys").json()["key"]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as silencer:
        by_user = silencer.post("/api/v1/alarms/silences", json={**window, "id": "by-user"})
        assert by_user.status_code == 201, by_user.text
        # Replacing root's silence makes the replacing caller its author.
        taken_over = silencer.post("/api/v1/alarms/silences", json={**window, "id": "by-root"})
        assert taken_over.status_code == 201, taken_over.text

    listed = {s["id"]: s for s in client.get("/api/v1/alarms/silences").json()["silences"]}
    assert re.fullmatch(r"arn:watchkeep:iam::\d+:user/silencer", listed["by-user"]["created_by"])
    assert listed["by-root"]["created_by"] == listed["by-user"]["created_by"]
    by_admin = client.post("/api/v1/alarms/silences", json={**window, "id": "by-admin"})
    assert by_admin.status_code == 201, by_admin.text
    listed = {s["id"]: s for s in client.get("/api/v1/alarms/silences").json()["silences"]}
    assert re.fullmatch(r"arn:watchkeep:iam::\d+:root", listed["by-admin"]["created_by"])
    for silence_id in ("by-root", "by-user", "by-admin"):
        assert client.delete(f"/api/v1/alarms/silences/{silence_id}").status_code == 200
