"""``watchkeep users|policies|keys|audit`` against a real server, as an administrator would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, RunningServer
from tests.server.helpers import ServeProcess, watchkeep_command


def cli(
    server: RunningServer, *args: str, key: str = ADMIN_KEY
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*watchkeep_command(), *args, "--server", server.url, "--key", key],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_an_admin_gives_an_agent_a_key_that_may_only_put_into_prod(
    server: RunningServer, tmp_path: Path
) -> None:
    policy = tmp_path / "agent.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:PutLogEvents",
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                        ],
                        "Resource": "arn:watchkeep:logs:*:*:log-group:prod-*",
                    }
                ],
            }
        )
    )
    assert cli(server, "users", "create", "agent").returncode == 0
    stored = cli(server, "policies", "put", "agent-put", str(policy))
    assert stored.returncode == 0, stored.stderr
    assert cli(server, "users", "attach", "agent", "agent-put").returncode == 0
    created = cli(server, "keys", "create", "--user", "agent")
    assert created.returncode == 0, created.stderr
    agent_key = created.stdout.strip()

    ndjson = {"Authorization": f"Bearer {agent_key}", "Content-Type": "application/x-ndjson"}
    ok = httpx.post(
        f"{server.url}/api/v1/logs/events?group=prod-a", content=b'{"m":1}\n', headers=ndjson
    )
    assert ok.status_code == 200
    no = httpx.post(
        f"{server.url}/api/v1/logs/events?group=dev-a", content=b'{"m":1}\n', headers=ndjson
    )
    assert no.status_code == 403

    listed = cli(server, "keys", "list", "--user", "agent", "--json")
    (key,) = json.loads(listed.stdout)
    assert key["access_key_id"] == agent_key.split(":")[0] and key["status"] == "Active"
    assert key["last_used"]["operation"] == "PutLogEvents"
    assert key["last_used"]["source_ip"] == "127.0.0.1"
    assert agent_key.split(":")[1] not in listed.stdout

    users = cli(server, "users", "list")
    assert "agent" in users.stdout and "agent-put" in users.stdout

    denied = cli(server, "audit", "lookup", "-a", "Username=agent", "--format", "json")
    assert denied.returncode == 0, denied.stderr
    names = [e["event_name"] for e in json.loads(denied.stdout)]
    assert names == ["PutLogEvents", "PutLogEvents"]
    table = cli(server, "audit", "lookup", "-a", "EventName=CreateAccessKey")
    assert "CreateAccessKey" in table.stdout and "root" in table.stdout

    assert cli(server, "keys", "deactivate", key["access_key_id"]).returncode == 0
    again = httpx.post(
        f"{server.url}/api/v1/logs/events?group=prod-a", content=b'{"m":1}\n', headers=ndjson
    )
    assert again.status_code == 401

    refused = cli(server, "users", "list", key=agent_key)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: the access key id")
    bad = cli(server, "audit", "lookup", "-a", "Nope=1")
    assert bad.returncode == 1 and "InvalidLookupAttributesException" in bad.stderr
    assert cli(server, "audit", "lookup", "-a", "novalue").returncode == 2


def test_start_warns_while_root_stays_active_next_to_an_admin_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = ServeProcess(data_dir).start()
    admin_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
    }
    with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        c.put("/api/v1/iam/users/ops").raise_for_status()
        c.put("/api/v1/iam/policies/iam-admin", json=admin_policy).raise_for_status()
        c.put("/api/v1/iam/users/ops/policies/iam-admin").raise_for_status()
    _status, output = first.terminate()
    assert "still active although admin users exist" not in output
    second = ServeProcess(data_dir).start()
    _status, output = second.terminate()
    assert "still active although admin users exist (ops)" in output
