"""The app's lifespan: what start-up opens and shutdown closes, in order.

Start-up opens the catalog, the metric store, the keys, the IAM directory and the audit trail
synchronously (a bad master key or a broken audit chain stops the server at once), signs a
startup digest, then replays the WALs in a worker thread while the server already answers:
``/healthz`` says 503 until the replay is done, so it doubles as a readiness probe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pyarrow as pa
from fastapi import FastAPI

from audit.digests import Digester
from audit.hashing import AuditHasher, random_key_file
from audit.lookup import EventLookup, RateLimiter
from audit.record import Account, resource_entry, service_event_record
from audit.retention import check_retention_days, prune_audit_trail
from audit.self_verify import SelfVerifier
from audit.signing import ensure_signing_key, fingerprint
from audit.trail import AuditTrail, TrailConfig
from core.operations import group_arn
from iam import KeyRing, SecretBox, load_master_key
from iam.directory import Directory
from iam.matching import RequestContext
from ingest.metric_filters import MetricFilterRegistry
from ingest.retention import apply_log_retention, service_event_details
from query.service import QueryService
from server.alarm_runtime import open_alarms
from server.gate import Services
from server.scheduler import Scheduler
from server.settings import Settings
from store import query_history, saved_queries
from store.engine import Store
from store.metric_model import METRIC_SCHEMA, datum_row
from store.metrics import MetricStore, MetricStoreConfig
from store.query_history import QueryHistory

log = logging.getLogger("watchkeep")


def account(settings: Settings) -> Account:
    return Account(region=settings.region, account_id=settings.account_id)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    services: Services = app.state.services
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_config())
    store.open()
    app.state.store = store
    with store.cursor() as conn:
        saved_queries.ensure_schema(conn)
        query_history.ensure_schema(conn)
    app.state.metric_filters = metric_filters = MetricFilterRegistry(store.cursor)
    metric_filters.open()
    app.state.queries = queries = QueryService(
        store,
        account_id=settings.account_id,
        journal=QueryHistory(store.cursor, account_id=settings.account_id),
    )
    metrics = MetricStore(
        MetricStoreConfig.from_store_config(settings.store_config()), store.cursor
    )
    metrics.open()
    app.state.metrics = metrics
    box = _secret_box(settings)
    services.keyring = _open_keyring(settings, store, box)
    services.directory = Directory(
        store.cursor, services.keyring, box, account_id=settings.account_id
    )
    services.directory.ensure_schema()
    _warn_about_root(services)
    app.state.directory = services.directory
    services.trail = trail = _open_trail(settings)
    services.digester = digester = _open_digester(settings, trail)
    check_retention_days(
        settings.audit_retention_days, allow_short=settings.audit_allow_short_retention
    )
    app.state.audit_self_verify = SelfVerifier(trail, digester)
    trail.append_service_event(
        "ServerStarted",
        {"version": app.version, "pid": os.getpid(), "dataDir": str(settings.data_dir.resolve())},
    )
    app.state.audit_lookup = EventLookup(
        trail,
        store.cursor,
        random_key_file(settings.audit_dir / "state" / "token.key"),
        window_days=settings.audit_lookup_window_days,
    )
    app.state.audit_rate = RateLimiter(settings.audit_lookup_rate)
    app.state.audit_hasher = AuditHasher.from_file(settings.audit_dir / "state" / "hmac-v1.key")
    app.state.alarms_runtime = runtime = open_alarms(
        settings, store, metrics, trail, account(settings)
    )
    app.state.alarms, app.state.outbox = runtime.engine, runtime.outbox
    scheduler = Scheduler()
    recovery = asyncio.create_task(_recover(app, store, metrics, scheduler, settings))
    try:
        yield
    finally:
        services.ready = False
        await recovery
        scheduler.shutdown()
        await asyncio.to_thread(runtime.close)
        await asyncio.to_thread(queries.close)
        metric_filters.close()
        _write_flood_summaries(services)
        services.directory.usage.flush()
        try:
            trail.append_service_event("ServerStopped", {"pid": os.getpid()})
            await asyncio.to_thread(digester.write_digest, "shutdown")
        except Exception:
            log.exception("could not write the shutdown audit digest")
        await asyncio.to_thread(trail.close)
        # Before the log store: the metric store uses a cursor of its DuckDB database.
        await asyncio.to_thread(app.state.metrics.close)
        await asyncio.to_thread(store.close)


async def _recover(
    app: FastAPI, store: Store, metrics: MetricStore, scheduler: Scheduler, settings: Settings
) -> None:
    started = time.monotonic()
    services: Services = app.state.services
    await asyncio.to_thread(store.recover)
    await asyncio.to_thread(metrics.recover)
    scheduler.every(1.0, store.flush, name="flush")
    scheduler.every(60.0, store.compact, name="compact")
    scheduler.every(
        settings.retention_interval_s,
        lambda: _apply_log_retention(store, services.trail, account(settings)),
        name="retention",
    )
    scheduler.every(1.0, metrics.flush, name="metric-flush")
    scheduler.every(60.0, metrics.compact, name="metric-compact")
    scheduler.every(settings.retention_interval_s, metrics.apply_retention, name="metric-retention")
    scheduler.every(settings.retention_interval_s, metrics.roll_up, name="metric-rollup")
    scheduler.every(5.0, services.trail.maybe_seal, name="audit-seal")
    # A 5 s tick keeps each digest within 5 s of its interval.
    scheduler.every(5.0, services.digester.maybe_write_digest, name="audit-digest")
    scheduler.every(10.0, services.directory.usage.flush, name="key-usage")
    scheduler.every(
        settings.audit_self_verify_interval_s,
        lambda: _self_verify(app.state.audit_self_verify, metrics),
        name="audit-self-verify",
    )
    scheduler.every(
        settings.audit_retention_interval_s,
        lambda: prune_audit_trail(
            services.trail,
            services.digester,
            retention_days=settings.audit_retention_days,
            allow_short=settings.audit_allow_short_retention,
        ),
        name="audit-retention",
    )
    scheduler.every(60.0, lambda: _write_flood_summaries(services), name="audit-floods")
    app.state.alarms_runtime.start(scheduler)
    scheduler.start()
    services.ready = True
    log.info("ready in %.2f s (data in %s)", time.monotonic() - started, settings.data_dir)


def _apply_log_retention(store: Store, trail: AuditTrail, owner: Account) -> None:
    """Scheduled log retention, recorded: one ``ApplyRetention`` service event (or more, each
    within the size cap) names every partition it dropped."""
    if trail.degraded:
        # Dropping data is an audited change: wait until the trail can record it.
        log.warning("log retention postponed: the audit trail is not writable")
        return
    expired = apply_log_retention(store)
    pending = []
    for details in service_event_details(expired):
        record = service_event_record(
            "ApplyRetention",
            details,
            owner,
            invoked_by="scheduler.watchkeep",
            event_source_name="logs.watchkeep",
        )
        groups = dict.fromkeys(p["logGroup"] for p in details["partitions"])
        record["resources"] = [
            resource_entry(
                group_arn(owner.region, owner.account_id, group),
                owner.account_id,
            )
            for group in groups
        ]
        pending.append(trail.append(record))
    for future in pending:
        future.result()
    if expired:
        log.info("log retention dropped %d partitions", len(expired))


def _self_verify(verifier: SelfVerifier, metrics: MetricStore) -> None:
    """Check the trail and count the outcome as ``Watchkeep/Audit`` ``IntegrityFailures`` (0 or
    1 per run), so that a metric alarm can page on tampering (PCI DSS 10.3.4)."""
    result = verifier.run()
    row = datum_row(
        namespace="Watchkeep/Audit",
        metric_name="IntegrityFailures",
        dimensions={},
        ts_ms=int(time.time() * 1000),
        unit="Count",
        values=[0.0 if result["result"] == "valid" else 1.0],
    )
    metrics.put(pa.Table.from_pylist([row], schema=METRIC_SCHEMA))


def _warn_about_root(services: Services) -> None:
    """Spec audit §7.2: root keys should not stay active once an admin user exists."""
    ctx = RequestContext("127.0.0.1", datetime.now(UTC), secure_transport=True)
    admins = services.directory.admin_users(ctx)
    active_root = [
        k for k in services.directory.list_access_keys("root") if k["status"] == "Active"
    ]
    if admins and active_root:
        log.warning(
            "the root access key %s is still active although admin users exist (%s): use an "
            "admin user's key and deactivate root with `watchkeep keys deactivate %s`",
            active_root[0]["access_key_id"],
            ", ".join(admins[:5]),
            active_root[0]["access_key_id"],
        )


def _open_trail(settings: Settings) -> AuditTrail:
    trail = AuditTrail(
        TrailConfig(
            root=settings.audit_dir,
            account=account(settings),
            fsync=settings.fsync,
            segment_max_events=settings.audit_segment_max_events,
            segment_max_age_s=settings.audit_segment_max_age_s,
        )
    )
    trail.open()
    return trail


def _open_digester(settings: Settings, trail: AuditTrail) -> Digester:
    """Sign the trail: the key (generated beside the data on first start), a startup digest."""
    key_file = settings.signing_key_file
    key, generated = ensure_signing_key(key_file)
    if generated or key_file.resolve().is_relative_to(settings.data_dir.resolve()):
        log.warning(
            "the audit signing key %s (fingerprint %s) is beside the data: move it off the data "
            "volume (WATCHKEEP_AUDIT_SIGNING_KEY_FILE) and give auditors its public key "
            "(`watchkeep audit verify --public-key`)",
            key_file,
            fingerprint(key.public_key()),
        )
    digester = Digester(
        trail,
        key,
        interval_s=settings.audit_digest_interval_s,
        checkpoint_every=settings.audit_checkpoint_every,
        anchors=settings.audit_anchors,
    )
    if digester.integrity_problems:
        log.error("audit integrity: %s", "; ".join(digester.integrity_problems))
        trail.append_service_event(
            "AuditIntegrityFailure", {"problems": digester.integrity_problems[:20]}
        )
    digester.write_digest("startup")
    return digester


def _write_flood_summaries(services: Services) -> None:
    for summary in services.auth_failures.summaries(force=not services.ready):
        services.trail.append_service_event("AuthFailureSummary", summary)


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


__all__ = ["account", "lifespan"]
