"""HTTP route of metric ingest: PutMetricData (``POST /api/v1/metrics/data``).

The namespace, which is the resource IAM decides on, is named in the body, so the handler
authorizes ``cloudwatch:PutMetricData`` on it itself, before validating anything else.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Request

from core.errors import Unavailable
from core.operations import Operation, operation
from core.units import format_size
from ingest.body import decompress, idempotency_key, read_limited
from ingest.metric_data import decode_metric_data, load_document, namespace_of
from store.metrics import MetricStore

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

PUT_METRIC_DATA = Operation(
    "PutMetricData",
    "cloudwatch:PutMetricData",
    False,
    False,
    payload_is_data=True,
    resources_in_handler=True,
)

MAX_REQUEST_BYTES = 1 << 20  # spec §1.7: 1 MB per HTTP POST, compressed or not


def metric_store(request: Request) -> MetricStore:
    """The app's MetricStore; 503 while the server runs without one."""
    store = getattr(request.app.state, "metrics", None)
    if store is None:
        raise Unavailable("the metric store is not open on this server", retry_after_s=5)
    return store  # type: ignore[no-any-return]


def namespace_arn(request: Request, namespace: str) -> str:
    settings = request.app.state.settings
    return (
        f"arn:watchkeep:cloudwatch:{settings.region}:{settings.account_id}"
        f":metric-namespace:{namespace}"
    )


def _too_large(max_bytes: int) -> str:
    return f"a PutMetricData request is limited to {format_size(max_bytes)}; send fewer datums"


@router.post("/data")
@operation(PUT_METRIC_DATA)
async def put_metric_data(request: Request) -> dict[str, Any]:
    """PutMetricData: datums of one namespace; partial success by index (spec §1)."""
    raw = await read_limited(
        request.headers, request.stream(), MAX_REQUEST_BYTES, _too_large(MAX_REQUEST_BYTES)
    )
    body = decompress(
        raw,
        request.headers.get("content-encoding"),
        max_bytes=request.app.state.settings.max_body_bytes,
    )
    document = load_document(body)
    named = document.get("namespace")
    if isinstance(named, str):  # authorize first; whether the name is valid comes after
        request.state.authorize(PUT_METRIC_DATA.action, [namespace_arn(request, named)])
    namespace_of(document)  # a missing or non-string namespace names no resource: 400
    store = metric_store(request)
    retry_key = idempotency_key(request.headers)

    def decode_and_put() -> Future[dict[str, Any]]:
        batch = decode_metric_data(document, now_ms=int(time.time() * 1000))
        request.state.audit_summary = batch.audit_summary()
        batch.raise_if_empty()
        return store.put(
            batch.rows,
            batch.response(),
            idempotency_key=retry_key,
            principal=request.state.principal.arn,
            request_body=body,
        )

    future = await asyncio.to_thread(decode_and_put)
    result: dict[str, Any] = await asyncio.wrap_future(future)
    return result
