"""The watchkeep app with its audit recorder short-circuited: the baseline of the audit
overhead benchmark, never a product setting (the trail cannot be switched off).

Run with ``uvicorn --factory benchmarks.no_audit_app:app``; settings come from the environment
as for ``watchkeep serve``. Every request still passes the gate (authentication,
authorization, the record is built and redacted); only the durable append is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from server.app import create_app


def app() -> FastAPI:
    application = create_app()
    opened = application.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[None]:
        async with opened(running):
            running.state.services.trail.append = _acknowledge
            yield

    application.router.lifespan_context = lifespan
    return application


def _acknowledge(_record: dict[str, Any]) -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future
