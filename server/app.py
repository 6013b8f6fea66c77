"""``create_app``: the routers, the error handlers, and the lifespan that opens the store.

Start-up opens the catalog and the keys synchronously (a bad master key stops the server at
once), then replays the WAL in a worker thread while the server already answers: ``/healthz``
says 503 until the replay is done, so it doubles as a readiness probe.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from iam import KeyRing, SecretBox, load_master_key
from ingest.routes import router as logs_router
from server.auth import AuthMiddleware, check_registry
from server.errors import install_error_handlers
from server.responses import JSONBody
from server.scheduler import Scheduler
from server.settings import Settings
from store.engine import Store

log = logging.getLogger("watchkeep")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="watchkeep",
        version="0.1.0",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.ready = False
    routers = [logs_router]
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    # The middleware matches requests against the routers' own routes, which carry the
    # operations (FastAPI wraps included routes in private classes of its own).
    routes = [route for router in routers for route in router.routes]
    check_registry(routes)

    def authenticate(header: str | None) -> Any:
        return app.state.keyring.authenticate(header)

    app.add_middleware(
        AuthMiddleware,
        routes=routes,
        authenticate=authenticate,
        is_ready=lambda: app.state.ready,
        region=settings.region,
        account_id=settings.account_id,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONBody:
        if not app.state.ready:
            return JSONBody({"status": "starting"}, status_code=503)
        return JSONBody({"status": "ok", **app.state.store.stats()})

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_config())
    store.open()
    app.state.store = store
    app.state.keyring = _open_keyring(settings, store)
    scheduler = Scheduler()
    recovery = asyncio.create_task(_recover(app, store, scheduler, settings))
    try:
        yield
    finally:
        app.state.ready = False
        await recovery
        scheduler.shutdown()
        await asyncio.to_thread(store.close)


async def _recover(app: FastAPI, store: Store, scheduler: Scheduler, settings: Settings) -> None:
    started = time.monotonic()
    await asyncio.to_thread(store.recover)
    scheduler.every(1.0, store.flush, name="flush")
    scheduler.every(60.0, store.compact, name="compact")
    scheduler.every(settings.retention_interval_s, store.apply_retention, name="retention")
    scheduler.start()
    app.state.ready = True
    log.info("ready in %.2f s (data in %s)", time.monotonic() - started, settings.data_dir)


def _open_keyring(settings: Settings, store: Store) -> KeyRing:
    master_env = settings.master_key.get_secret_value() if settings.master_key else None
    master, warnings = load_master_key(
        env_value=master_env, key_file=settings.key_file, data_dir=settings.data_dir
    )
    for warning in warnings:
        log.warning(warning)
    keyring = KeyRing(SecretBox(master), store.cursor)
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    created = keyring.ensure_root_key(admin, int(time.time() * 1000))
    if created is not None:
        # Shown exactly once: only the encrypted secret is kept.
        print(
            "watchkeep: created the root access key (shown only now; keep it safe):\n"
            f"  {created}\n"
            "  use it as: Authorization: Bearer <key>   or   export WATCHKEEP_KEY=<key>",
            file=sys.stderr,
            flush=True,
        )
    return keyring
