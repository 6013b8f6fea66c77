"""``create_app``: the routers, the gate, the error handlers, and the lifespan.

Start-up opens the catalog, the keys, the IAM directory and the audit trail synchronously (a
bad master key or a broken audit chain stops the server at once), then replays the store's WAL
in a worker thread while the server already answers: ``/healthz`` says 503 until the replay is
done, so it doubles as a readiness probe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from audit.floods import AuthFailureLimiter
from audit.lookup import EventLookup, RateLimiter
from audit.record import Account
from audit.routes import router as audit_router
from audit.segments import FILE_MODE
from audit.trail import AuditTrail, TrailConfig
from iam import KeyRing, SecretBox, load_master_key
from iam.directory import Directory
from iam.routes import router as iam_router
from ingest.routes import router as logs_router
from server.errors import install_error_handlers
from server.gate import Gate, Services, check_registry
from server.responses import JSONBody
from server.scheduler import Scheduler
from server.settings import Settings
from store.engine import Store

log = logging.getLogger("watchkeep")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="watchkeep", version="0.1.0", lifespan=_lifespan)
    app.state.settings = settings
    app.state.services = services = Services()
    services.level_policy = settings.audit_policy
    services.auth_failures = AuthFailureLimiter(settings.audit_auth_failures_per_minute)
    routers = [logs_router, iam_router, audit_router]
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    # The gate matches requests against the routers' own routes, which carry the operations
    # (FastAPI wraps included routes in private classes of its own).
    routes = [route for router in routers for route in router.routes]
    check_registry(routes)
    app.add_middleware(
        Gate,
        routes=routes,
        services=services,
        account=_account(settings),
        trusted_proxies=settings.trusted_proxies,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONBody:
        if not services.ready:
            return JSONBody({"status": "starting"}, status_code=503)
        return JSONBody({"status": "ok", **app.state.store.stats()})

    return app


def _account(settings: Settings) -> Account:
    return Account(region=settings.region, account_id=settings.account_id)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    services: Services = app.state.services
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_config())
    store.open()
    app.state.store = store
    box = _secret_box(settings)
    services.keyring = _open_keyring(settings, store, box)
    services.directory = Directory(
        store.cursor, services.keyring, box, account_id=settings.account_id
    )
    services.directory.ensure_schema()
    app.state.directory = services.directory
    services.trail = trail = _open_trail(settings)
    app.state.audit_lookup = EventLookup(
        trail,
        store.cursor,
        _token_key(settings.audit_dir / "state" / "token.key"),
        window_days=settings.audit_lookup_window_days,
    )
    app.state.audit_rate = RateLimiter(settings.audit_lookup_rate)
    scheduler = Scheduler()
    recovery = asyncio.create_task(_recover(app, store, scheduler, settings))
    try:
        yield
    finally:
        services.ready = False
        await recovery
        scheduler.shutdown()
        _write_flood_summaries(services)
        await asyncio.to_thread(trail.close)
        await asyncio.to_thread(store.close)


async def _recover(app: FastAPI, store: Store, scheduler: Scheduler, settings: Settings) -> None:
    started = time.monotonic()
    services: Services = app.state.services
    await asyncio.to_thread(store.recover)
    scheduler.every(1.0, store.flush, name="flush")
    scheduler.every(60.0, store.compact, name="compact")
    scheduler.every(settings.retention_interval_s, store.apply_retention, name="retention")
    scheduler.every(5.0, services.trail.maybe_seal, name="audit-seal")
    scheduler.every(60.0, lambda: _write_flood_summaries(services), name="audit-floods")
    scheduler.start()
    services.ready = True
    log.info("ready in %.2f s (data in %s)", time.monotonic() - started, settings.data_dir)


def _open_trail(settings: Settings) -> AuditTrail:
    trail = AuditTrail(
        TrailConfig(
            root=settings.audit_dir,
            account=_account(settings),
            fsync=settings.fsync,
            segment_max_events=settings.audit_segment_max_events,
            segment_max_age_s=settings.audit_segment_max_age_s,
        )
    )
    trail.open()
    return trail


def _write_flood_summaries(services: Services) -> None:
    for summary in services.auth_failures.summaries(force=not services.ready):
        services.trail.append_service_event("AuthFailureSummary", summary)


def _token_key(path: Path) -> bytes:
    """The per-installation key that signs LookupEvents page tokens; it never leaves here."""
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE & 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _secret_box(settings: Settings) -> SecretBox:
    master_env = settings.master_key.get_secret_value() if settings.master_key else None
    master, warnings = load_master_key(
        env_value=master_env, key_file=settings.key_file, data_dir=settings.data_dir
    )
    for warning in warnings:
        log.warning(warning)
    return SecretBox(master)


def _open_keyring(settings: Settings, store: Store, box: SecretBox) -> KeyRing:
    keyring = KeyRing(box, store.cursor)
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


__all__ = ["create_app"]
