"""``Idempotency-Key`` over HTTP: a key belongs to its caller and its target stream, and a key
sent again with another body is a 409, never a silent "duplicate" that stores nothing."""

from __future__ import annotations

import gzip
import time

import httpx
import pytest

from tests.conftest import RunningServer, all_events

NDJSON = {"Content-Type": "application/x-ndjson"}


def ingest(
    client: httpx.Client,
    body: bytes,
    key: str,
    group: str = "app",
    stream: str = "s",
    **headers: str,
) -> httpx.Response:
    return client.post(
        "/api/v1/logs/events",
        params={"group": group, "stream": stream},
        content=body,
        headers={**NDJSON, "Idempotency-Key": key, **headers},
    )


def messages(client: httpx.Client, group: str = "app") -> list[object]:
    return sorted(str(e["message"]) for e in all_events(client, group))


def other_caller(server: RunningServer, root: httpx.Client) -> httpx.Client:
    """A second principal allowed every logs action."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}],
    }
    root.put("/api/v1/iam/users/bob").raise_for_status()
    assert root.put("/api/v1/iam/policies/logs-all", json=policy).status_code == 201
    root.put("/api/v1/iam/users/bob/policies/logs-all").raise_for_status()
    key = root.post("/api/v1/iam/users/bob/keys").json()["key"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


def test_same_key_for_another_group_or_stream_is_stored(client: httpx.Client) -> None:
    first = ingest(client, b'{"to":"app"}\n', "k1")
    other_group = ingest(client, b'{"to":"web"}\n', "k1", group="web")
    other_stream = ingest(client, b'{"to":"app/t"}\n', "k1", stream="t")
    for response in (first, other_group, other_stream):
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 1, "rejected": []}
    assert messages(client) == ['{"to":"app"}', '{"to":"app/t"}']
    assert messages(client, "web") == ['{"to":"web"}']


def test_same_key_with_another_body_is_a_409_and_stores_nothing(client: httpx.Client) -> None:
    assert ingest(client, b'{"n":1}\n', "k2").status_code == 200
    response = ingest(client, b'{"n":2}\n', "k2")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "IdempotentParameterMismatchException"
    assert "Idempotency-Key 'k2'" in error["message"]
    assert "different body" in error["message"]
    assert error["details"] == {"idempotency_key": "k2", "group": "app", "stream": "s"}
    assert messages(client) == ['{"n":1}']
    # The original body is still a retry of the first request.
    again = ingest(client, b'{"n":1}\n', "k2")
    assert again.json() == {"accepted": 1, "rejected": [], "duplicate": True}


def test_a_retry_compressed_again_is_still_the_same_body(client: httpx.Client) -> None:
    body = b'{"n":1}\n{"n":2}\n'
    assert ingest(client, body, "k3").status_code == 200
    retry = ingest(client, gzip.compress(body, mtime=12345), "k3", **{"Content-Encoding": "gzip"})
    assert retry.json()["duplicate"] is True
    assert len(messages(client)) == 2


def test_same_key_from_another_principal_is_its_own_key(
    server: RunningServer, client: httpx.Client
) -> None:
    assert ingest(client, b'{"from":"root"}\n', "k4").status_code == 200
    with other_caller(server, client) as bob:
        response = ingest(bob, b'{"from":"bob"}\n', "k4")
        assert response.status_code == 200, response.text
        assert "duplicate" not in response.json()
        # Bob's own retry is recognised, and root's key still stands for root's body.
        assert ingest(bob, b'{"from":"bob"}\n', "k4").json()["duplicate"] is True
    assert ingest(client, b'{"from":"root"}\n', "k4").json()["duplicate"] is True
    assert messages(client) == ['{"from":"bob"}', '{"from":"root"}']


# -- PutMetricData ---------------------------------------------------------------------------


# One timestamp for every call, so that the same value is the same body.
METRIC_STAMP_MS = int(time.time() // 60 * 60_000)


def put_metric(client: httpx.Client, value: float, key: str) -> httpx.Response:
    document = {
        "namespace": "Idem/Test",
        "metric_data": [{"metric_name": "Jobs", "value": value, "timestamp": METRIC_STAMP_MS}],
    }
    return client.post("/api/v1/metrics/data", json=document, headers={"Idempotency-Key": key})


def metric_sum(client: httpx.Client) -> tuple[float, float]:
    """(SampleCount, Sum) of everything stored for Idem/Test Jobs in the last hour."""
    response = client.post(
        "/api/v1/metrics/statistics",
        json={
            "namespace": "Idem/Test",
            "metric_name": "Jobs",
            "start": "-3h",
            "end": "now",
            "period": 3600,
            "statistics": ["SampleCount", "Sum"],
        },
    )
    assert response.status_code == 200, response.text
    points = response.json()["datapoints"]
    return (
        sum(p["sample_count"] for p in points),
        sum(p["sum"] for p in points),
    )


def test_metric_keys_belong_to_their_caller_and_their_body(
    server: RunningServer, client: httpx.Client
) -> None:
    assert put_metric(client, 1.0, "m1").status_code == 200
    assert put_metric(client, 1.0, "m1").json()["duplicate"] is True
    conflict = put_metric(client, 5.0, "m1")
    assert conflict.status_code == 409, conflict.text
    error = conflict.json()["error"]
    assert error["code"] == "IdempotentParameterMismatchException"
    assert error["details"] == {"idempotency_key": "m1"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "cloudwatch:*", "Resource": "*"}],
    }
    with other_caller(server, client) as bob:
        assert client.put("/api/v1/iam/policies/metrics-all", json=policy).status_code == 201
        client.put("/api/v1/iam/users/bob/policies/metrics-all").raise_for_status()
        response = put_metric(bob, 2.0, "m1")  # Bob's m1 is not root's m1
        assert response.status_code == 200, response.text
        assert "duplicate" not in response.json()
    assert metric_sum(client) == (2, 3.0)


@pytest.mark.parametrize("key", ["k" * 256, "with space", "tab\tkey"])
def test_an_unusable_key_is_refused_and_nothing_is_stored(client: httpx.Client, key: str) -> None:
    response = client.post(
        "/api/v1/logs/events",
        params={"group": "keys"},
        content=b'{"m": 1}\n',
        headers={**NDJSON, "Idempotency-Key": key},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("Idempotency-Key must be 1 to 255")
    metrics = client.post(
        "/api/v1/metrics/data",
        json={"namespace": "App", "metric_data": [{"metric_name": "m", "value": 1}]},
        headers={"Idempotency-Key": key},
    )
    assert metrics.status_code == 400, metrics.text
    assert client.get("/api/v1/logs/groups/keys").status_code == 404
    assert ingest(client, b'{"m": 1}\n', "k" * 255, group="keys").status_code == 200
