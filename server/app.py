"""``create_app``: the routers, the gate in front of them, the error handlers.

What the app opens at start-up and closes at shutdown is in ``server.lifespan``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from alarms.routes import router as alarms_router
from alarms.silence_routes import router as silences_router
from audit.floods import AuthFailureLimiter
from audit.report_routes import router as report_router
from audit.routes import router as audit_router
from iam.routes import router as iam_router
from ingest.metric_filter_routes import router as metric_filter_router
from ingest.metric_routes import router as metric_ingest_router
from ingest.routes import router as logs_router
from query.metric_routes import router as metric_query_router
from query.routes import router as query_router
from server.errors import install_error_handlers
from server.gate import EXEMPT_PATHS, Gate, Services, check_registry
from server.lifespan import account, lifespan
from server.responses import JSONBody
from server.settings import Settings
from web.routes import is_console_path
from web.routes import router as web_router

DEFAULT_ROUTERS = (
    logs_router,
    metric_filter_router,
    query_router,
    metric_ingest_router,
    metric_query_router,
    silences_router,  # before alarms_router, whose /{name} would take its paths
    alarms_router,
    iam_router,
    audit_router,
    report_router,
    web_router,
)


def create_app(
    settings: Settings | None = None, *, routers: Sequence[APIRouter] = DEFAULT_ROUTERS
) -> FastAPI:
    """The app; ``routers`` is for tests that need a route of their own behind the gate."""
    settings = settings or Settings()
    app = FastAPI(title="watchkeep", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.services = services = Services()
    services.level_policy = settings.audit_policy
    services.auth_failures = AuthFailureLimiter(settings.audit_auth_failures_per_minute)
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
        account=account(settings),
        trusted_proxies=settings.trusted_proxies,
        max_body_bytes=settings.max_body_bytes,
        # The console's page and static files are not API calls (spec audit §2.7).
        is_exempt=lambda path: path in EXEMPT_PATHS or is_console_path(path),
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONBody:
        if not services.ready:
            return JSONBody({"status": "starting"}, status_code=503)
        return JSONBody({"status": "ok", **app.state.store.stats(), **app.state.metrics.stats()})

    return app


__all__ = ["DEFAULT_ROUTERS", "create_app"]
