"""``watchkeep alarms eval`` on real rule and datapoint files, and ``alarms list|history|
set-state`` against a real server (issue 6, DESIGN.md CLI and Contracts).

The expected evaluations are computed here from the raw samples and spec §5.5, not taken from
the evaluator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from server.cli import app
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

AT = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def long_stamp(moment: datetime) -> str:
    """Spec §5.7's ``yyyy-MM-dd'T'HH:mm:ss.SSSZ``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["alarms", *args], env={"COLUMNS": "200"})


# ---- alarms eval

RULES = {
    "alarms": [
        {
            "name": "web-high-cpu",
            "metric": {"namespace": "Shop/EC2", "name": "CPU", "dimensions": {"Host": "a"}},
            "statistic": "Average",
            "period": "60s",
            "evaluation_periods": 3,
            "datapoints_to_alarm": 2,
            "comparison": ">",
            "threshold": 80,
            "treat_missing_data": "missing",
        },
        {
            "name": "heartbeat",
            "metric": {"namespace": "Shop/Workers", "name": "Heartbeat"},
            "statistic": "Sum",
            "period": "60s",
            "evaluation_periods": 2,
            "comparison": "<",
            "threshold": 1,
            "treat_missing_data": "breaching",
        },
        {
            "name": "maintenance",
            "metric": {"namespace": "Shop/Ops", "name": "MaintenanceMode"},
            "statistic": "Maximum",
            "period": "60s",
            "evaluation_periods": 1,
            "comparison": ">=",
            "threshold": 1,
            "treat_missing_data": "ignore",
        },
    ],
    "composites": [
        {"name": "page", "rule": "ALARM(web-high-cpu) AND NOT ALARM(maintenance)"},
        {"name": "escalate", "rule": "ALARM(page) OR ALARM(heartbeat)"},
    ],
}

# Raw CPU samples per minute start; the minute before the range and the one after AT must not
# count (the range is N + 2 = 5 buckets: 10:00 to 10:04).
CPU_SAMPLES = {
    AT - 6 * MINUTE: [100.0, 100.0],  # 09:59, outside the range
    AT - 3 * MINUTE: [70.0, 100.0],  # 10:02
    AT - 2 * MINUTE: [60.0, 70.0],  # 10:03
    AT - 1 * MINUTE: [90.0, 96.0],  # 10:04
    AT: [100.0],  # 10:05: after the evaluation instant
}


def cpu_documents() -> list[dict[str, Any]]:
    """The samples in all three PutMetricData shapes."""
    data: list[dict[str, Any]] = []
    for minute, samples in CPU_SAMPLES.items():
        datum = {"metric_name": "CPU", "dimensions": {"Host": "a"}}
        if minute == AT - 1 * MINUTE:
            # one statistic set, spread over the minute
            datum |= {
                "timestamp": stamp(minute + timedelta(seconds=20)),
                "statistic_values": {
                    "sample_count": len(samples),
                    "sum": sum(samples),
                    "minimum": min(samples),
                    "maximum": max(samples),
                },
            }
            data.append(datum)
        elif minute == AT - 3 * MINUTE:
            data.append(
                datum | {"timestamp": stamp(minute + timedelta(seconds=5)), "values": samples}
            )
        else:
            for second, value in enumerate(samples):
                data.append(
                    datum
                    | {
                        "timestamp": stamp(minute + timedelta(seconds=10 + second)),
                        "value": value,
                    }  # fmt: skip
                )
    return [{"namespace": "Shop/EC2", "metric_data": data}]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "alarms.yaml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    points = tmp_path / "points.json"
    points.write_text(json.dumps(cpu_documents()))
    return rules, points


def evaluate(rules: Path, points: Path, *extra: str, at: str = stamp(AT)) -> dict[str, Any]:
    result = run("eval", "--rules", str(rules), "--datapoints", str(points), "--at", at, *extra)
    assert result.exit_code == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def by_name(output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {alarm["name"]: alarm for alarm in output["alarms"]}


def test_eval_matches_an_independent_computation(files: tuple[Path, Path]) -> None:
    rules, points = files
    output = evaluate(rules, points)
    assert evaluate(rules / "alarms.yaml", points) == output  # a file or a directory
    assert output["at"] == int(AT.timestamp() * 1_000)
    assert [a["name"] for a in output["alarms"]] == [
        "web-high-cpu",
        "heartbeat",
        "maintenance",
        "page",
        "escalate",
    ]
    alarms = by_name(output)

    # Average per bucket [T - k*P, T - (k-1)*P) for k = 1..5, from the raw samples.
    in_range = {m: s for m, s in CPU_SAMPLES.items() if AT - 5 * MINUTE <= m < AT}
    averages = {m: sum(s) / len(s) for m, s in sorted(in_range.items())}
    newest = sorted(averages, reverse=True)[:3]  # R = 3 >= N: the three newest real points
    breaching = [m for m in newest if averages[m] > 80]
    assert len(breaching) == 2  # M = 2: ALARM
    cpu = alarms["web-high-cpu"]
    assert cpu["kind"] == "metric" and cpu["state"] == "ALARM"
    assert cpu["datapoints"] == [
        {"timestamp": stamp(m), "value": averages[m], "sample_count": len(in_range[m])}
        for m in newest
    ]
    data = cpu["reason_data"]
    assert data["version"] == "1.0" and data["statistic"] == "Average" and data["period"] == 60
    assert data["threshold"] == 80
    assert data["queryDate"] == long_stamp(AT)
    assert data["startDate"] == long_stamp(min(newest))
    assert data["recentDatapoints"] == [averages[m] for m in sorted(averages)]
    assert [p["timestamp"] for p in data["evaluatedDatapoints"]] == [long_stamp(m) for m in newest]
    assert [p["value"] for p in data["evaluatedDatapoints"]] == [averages[m] for m in newest]
    assert cpu["reason"].startswith(
        "Threshold Crossed: 2 out of the last 3 datapoints [93.0 (01/01/26 10:04:00), "
        "65.0 (01/01/26 10:03:00), 85.0 (01/01/26 10:02:00)] were greater than the threshold "
        "(80.0)"
    )

    heartbeat = alarms["heartbeat"]  # no data at all, breaching: ALARM
    assert heartbeat["state"] == "ALARM" and heartbeat["datapoints"] == []
    assert heartbeat["reason"] == (
        "Threshold Crossed: no datapoints were received for 2 periods and 2 missing "
        "datapoints were treated as [Breaching]."
    )
    maintenance = alarms["maintenance"]  # no data, ignore: stays as created
    assert maintenance["state"] == "INSUFFICIENT_DATA" and maintenance["kept"] is True

    page = alarms["page"]  # from the children's new states
    assert page["kind"] == "composite" and page["state"] == "ALARM"
    assert {c["name"]: c["state"]["value"] for c in page["reason_data"]["triggeringAlarms"]} == {
        "web-high-cpu": "ALARM",
        "maintenance": "INSUFFICIENT_DATA",
    }
    assert alarms["escalate"]["state"] == "ALARM"


def test_eval_state_option_answers_what_happens_next(files: tuple[Path, Path]) -> None:
    rules, points = files
    # "If maintenance is in ALARM now": with ignore and no data it stays there, and that
    # suppresses the page; escalate still fires through the heartbeat.
    alarms = by_name(evaluate(rules, points, "--state", "maintenance=ALARM"))
    assert alarms["maintenance"]["state"] == "ALARM" and alarms["maintenance"]["kept"] is True
    assert alarms["page"]["state"] == "OK"
    assert alarms["escalate"]["state"] == "ALARM"

    # A metric alarm with data is recomputed whatever it was; the composite follows.
    alarms = by_name(evaluate(rules, points, "--state", "web-high-cpu=OK", "--state", "page=ALARM"))
    assert alarms["web-high-cpu"]["state"] == "ALARM" and alarms["page"]["state"] == "ALARM"

    # One minute later only the 10:05 point (100) is in the range: R = 1 < N = 3 and one
    # breaching point is fewer than M = 2, but it moves into the window's oldest bucket (age 3
    # >= M) with nothing good after it: the premature-alarm rule (spec §5.5.3) holds.
    alarms = by_name(evaluate(rules, points, at=stamp(AT + 5 * MINUTE)))
    assert alarms["web-high-cpu"]["state"] == "ALARM"
    assert "premature-alarm rule" in alarms["web-high-cpu"]["reason"]
    assert [p["value"] for p in alarms["web-high-cpu"]["datapoints"]] == [100.0]
    # Another minute and the range is empty: missing gives INSUFFICIENT_DATA; the composite
    # page is OK (its rule is false), whatever it was said to be.
    alarms = by_name(evaluate(rules, points, "--state", "page=ALARM", at=stamp(AT + 6 * MINUTE)))
    assert alarms["web-high-cpu"]["state"] == "INSUFFICIENT_DATA"
    assert alarms["page"]["state"] == "OK"


def test_eval_without_data_uses_each_treatment(tmp_path: Path, files: tuple[Path, Path]) -> None:
    rules, _ = files
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    alarms = by_name(evaluate(rules, empty, "--state", "maintenance=OK"))
    assert alarms["web-high-cpu"]["state"] == "INSUFFICIENT_DATA"
    assert alarms["web-high-cpu"]["reason"] == "Insufficient Data: 3 datapoints were unknown."
    assert alarms["maintenance"]["state"] == "OK"
    assert alarms["page"]["state"] == "OK" and alarms["escalate"]["state"] == "ALARM"


def test_eval_at_now_is_the_current_time(tmp_path: Path, files: tuple[Path, Path]) -> None:
    rules, _ = files
    now = datetime.now(UTC)
    points = tmp_path / "now.json"
    points.write_text(
        json.dumps(
            {
                "namespace": "Shop/Ops",
                "metric_data": [
                    {"metric_name": "MaintenanceMode", "value": 1, "timestamp": stamp(now)}
                ],
            }
        )
    )
    time.sleep(0.01)  # the datum must be before the instant
    alarms = by_name(evaluate(rules, points, at="now"))
    assert alarms["maintenance"]["state"] == "ALARM"
    assert alarms["page"]["state"] == "OK"


@pytest.mark.parametrize(
    ("state", "fragment"),
    [
        ("maintenance=RED", "expected NAME=STATE"),
        ("maintenance", "expected NAME=STATE"),
        ("=ALARM", "expected NAME=STATE"),
        ("nobody=OK", "nobody, which is not an alarm"),
    ],
    ids=["bad-state", "no-equals", "no-name", "unknown-alarm"],
)
def test_eval_refuses_a_bad_state_option(
    files: tuple[Path, Path], state: str, fragment: str
) -> None:
    rules, points = files
    result = run(
        "eval", "--rules", str(rules), "--datapoints", str(points), "--at", stamp(AT),
        "--state", state,
    )  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: --state") and fragment in result.stderr


def test_eval_refuses_an_invalid_rules_file_with_its_place(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    _, points = files
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "typo.yaml").write_text(
        "alarms:\n  - name: x\n    metric: {namespace: A, name: B}\n    treshold: 3\n"
    )
    result = run("eval", "--rules", str(bad), "--datapoints", str(points), "--at", stamp(AT))
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(f"error: {bad / 'typo.yaml'}:") for line in lines)
    assert f"error: {bad / 'typo.yaml'}:4:5: alarms[0].treshold: unknown key" in lines[-1]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not a JSON file"),
        ("[1, 2]", "expected a PutMetricData body"),
        ('{"metric_data": []}', "document 0"),
        (
            '{"namespace": "N", "metric_data": [{"metric_name": "m", "value": "high"}]}',
            "document 0: all 1 metric datums were rejected; the first, metric_data[0]: value",
        ),
        (
            '{"namespace": "N", "metric_data": [{"metric_name": "m", "value": 1,'
            ' "timestamp": "2025-12-01T00:00:00Z"}]}',
            "two weeks",
        ),
    ],
    ids=["not-json", "not-objects", "no-namespace", "bad-value", "too-old-for-at"],
)
def test_eval_refuses_a_bad_datapoints_file(
    tmp_path: Path, files: tuple[Path, Path], content: str, fragment: str
) -> None:
    rules, _ = files
    points = tmp_path / "bad.json"
    points.write_text(content)
    result = run("eval", "--rules", str(rules), "--datapoints", str(points), "--at", stamp(AT))
    assert result.exit_code == 1 and result.stdout == "", result.stdout
    assert result.stderr.startswith("error: ") and fragment in result.stderr, result.stderr


def test_eval_refuses_a_bad_instant(files: tuple[Path, Path]) -> None:
    rules, points = files
    result = run("eval", "--rules", str(rules), "--datapoints", str(points), "--at", "soon")
    assert result.exit_code == 1 and result.stderr.startswith("error: --at: ")
    missing = run("eval", "--rules", str(rules), "--datapoints", "/no/such.json", "--at", "0")
    assert missing.exit_code == 2  # a usage error


# ---- list, history and set-state against a server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("alarms-cli") / "data"
    (data / "rules").mkdir(parents=True)
    alarms = [
        {**RULES["alarms"][0], "name": name, "treat_missing_data": "ignore"}
        for name in ("cli-cpu", "cli-disk")
    ]
    (data / "rules" / "alarms.yaml").write_text(yaml.safe_dump({"alarms": alarms}))
    running = RunningServer(make_settings(data)).start()
    yield running
    running.stop()


def remote(server: RunningServer, *args: str) -> Result:
    return run(*args, "--server", server.url, "--key", ADMIN_KEY)


def test_list_history_and_set_state(server: RunningServer) -> None:
    listed = remote(server, "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [a["name"] for a in json.loads(listed.stdout)] == ["cli-cpu", "cli-disk"]
    table = remote(server, "list")
    assert (
        table.exit_code == 0 and "cli-cpu" in table.stdout and "INSUFFICIENT_DATA" in (table.stdout)
    )

    for state in ("ALARM", "OK", "ALARM"):
        forced = remote(server, "set-state", "cli-cpu", state, "--reason", "drill")
        assert forced.exit_code == 0, forced.stderr
        assert forced.stdout.strip() == f"cli-cpu: {state}"
    with_data = remote(server, "set-state", "cli-disk", "OK", "--reason-data", '{"source": "cli"}')
    assert with_data.exit_code == 0, with_data.stderr
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as http:
        disk = http.get("/api/v1/alarms/cli-disk").json()["state"]
    assert disk["value"] == "OK" and disk["reason_data"] == {"source": "cli"}
    assert disk["reason"] == "Set by CLI"

    in_alarm = json.loads(remote(server, "list", "--json", "--state", "ALARM").stdout)
    assert [a["name"] for a in in_alarm] == ["cli-cpu"]
    assert in_alarm[0]["state"]["reason"] == "drill"
    prefixed = json.loads(remote(server, "list", "--json", "--prefix", "cli-d").stdout)
    assert [a["name"] for a in prefixed] == ["cli-disk"]

    items = json.loads(remote(server, "history", "cli-cpu", "--json").stdout)
    assert [i["summary"] for i in items] == [  # newest first
        "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK",
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        'Alarm "cli-cpu" created',
    ]
    two = json.loads(remote(server, "history", "cli-cpu", "--json", "--limit", "2").stdout)
    assert two == items[:2]
    updates = json.loads(
        remote(server, "history", "--json", "--type", "StateUpdate", "--limit", "150").stdout
    )
    assert len(updates) == 4 and {i["type"] for i in updates} == {"StateUpdate"}
    shown = remote(server, "history", "cli-cpu")
    assert shown.exit_code == 0 and "Alarm updated from OK to ALARM" in shown.stdout


def test_client_verbs_report_errors(server: RunningServer) -> None:
    unknown = remote(server, "set-state", "nope", "OK")
    assert unknown.exit_code == 1
    assert "ResourceNotFoundException" in unknown.stderr and "HTTP 404" in unknown.stderr
    bad = remote(server, "set-state", "cli-cpu", "OK", "--reason-data", "{oops")
    assert bad.exit_code == 1 and "InvalidFormat" in bad.stderr
    wrong = remote(server, "set-state", "cli-cpu", "GREEN")
    assert wrong.exit_code == 1 and "HTTP 400" in wrong.stderr
    no_key = run("list", "--server", server.url)
    assert no_key.exit_code == 2 and "no access key" in no_key.stderr  # usage
    down = run("list", "--server", "http://127.0.0.1:9", "--key", ADMIN_KEY)
    assert down.exit_code == 1 and "cannot reach the server" in down.stderr
