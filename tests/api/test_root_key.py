"""The only active root key can be neither deactivated nor deleted through the API: nobody
could call the server again until a restart with WATCHKEEP_ADMIN_KEY."""

from __future__ import annotations

import httpx

from iam import parse_key_pair
from tests.conftest import ADMIN_KEY

ROOT_KEY_ID = parse_key_pair(ADMIN_KEY)[0]


def test_the_last_active_root_key_stays(client: httpx.Client) -> None:
    deactivate = client.patch(f"/api/v1/iam/keys/{ROOT_KEY_ID}", json={"status": "Inactive"})
    assert deactivate.status_code == 409, deactivate.text
    error = deactivate.json()["error"]
    assert error["code"] == "DeleteConflictException"
    assert "only active root key" in error["message"]
    delete = client.delete(f"/api/v1/iam/keys/{ROOT_KEY_ID}")
    assert delete.status_code == 409, delete.text
    assert client.get("/api/v1/iam/keys").status_code == 200  # the key still works

    # Other keys come and go as before.
    client.put("/api/v1/iam/users/alice").raise_for_status()
    alice = client.post("/api/v1/iam/users/alice/keys").json()["access_key_id"]
    assert client.patch(f"/api/v1/iam/keys/{alice}", json={"status": "Inactive"}).is_success
    assert client.delete(f"/api/v1/iam/keys/{alice}").status_code == 204
