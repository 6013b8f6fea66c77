"""How uvicorn serves the app: the options ``watchkeep serve`` and the test servers share."""

from __future__ import annotations

from typing import Any

import uvicorn

GRACEFUL_SHUTDOWN_S = 10


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn configuration for the app; ``options`` are uvicorn's (host, port, log level...).

    uvicorn's own proxy handling is off: it is on by default and trusts ``X-Forwarded-For``
    from 127.0.0.1, rewriting the client address before the gate sees it, so any local caller
    could choose the source IP that IAM conditions and the audit trail see. The gate reads the
    header itself, and only from the networks in ``settings.trusted_proxies``.
    """
    return uvicorn.Config(
        app,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **options,
    )
