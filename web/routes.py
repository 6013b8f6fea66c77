"""The console: its single page, its static assets, and ConsoleLogin.

``GET /`` answers the one page of the console and ``GET /static/...`` its ES modules, styles
and vendored libraries (spec audit §2.7 lists static UI assets among the non-audited paths, so
the gate lets ``is_console_path`` through). Everything the console shows it fetches from the
same authorized, audited API as any other client, with the access key the user signed in with.

``POST /api/v1/signin`` is that sign-in: the gate has already authenticated the key and
authorized ``signin:ConsoleLogin`` by the time the handler runs, so the handler only says who
the key belongs to; the gate's record of the call is the ``signin.watchkeep`` event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from core.operations import Operation, operation

__all__ = ["CONSOLE_LOGIN", "is_console_path", "router"]

STATIC_DIR = Path(__file__).parent / "static"
INDEX_FILE = STATIC_DIR / "index.html"
STATIC_PREFIX = "/static/"

router = APIRouter(tags=["console"])

CONSOLE_LOGIN = Operation(
    "ConsoleLogin", "signin:ConsoleLogin", False, True, event_type="AwsConsoleSignIn"
)

# The page holds an access key in sessionStorage: it loads code from this server only, talks
# to this server only, and may not be framed (clickjacking) or leak its URL to other sites.
# uPlot styles its elements through the CSSOM, which `style-src 'self'` allows.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# check_dir=False: a missing directory is a packaging bug that the first request reports.
_static = StaticFiles(directory=STATIC_DIR, check_dir=False)


def is_console_path(path: str) -> bool:
    """True for the console's page and static assets, which the gate neither authorizes nor
    records (spec audit §2.7: static UI assets are non-audited paths)."""
    return path == "/" or (path.startswith(STATIC_PREFIX) and ".." not in path)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def console_page() -> Response:
    """The single page of the console."""
    return FileResponse(INDEX_FILE, media_type="text/html", headers=_PAGE_HEADERS)


@router.api_route(STATIC_PREFIX + "{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def console_asset(request: Request, path: str) -> Response:
    """A static asset. StaticFiles answers 404 outside ``web/static`` and handles ETags."""
    response = await _static.get_response(path, request.scope)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"  # revalidate by ETag: upgrades show at once
    return response


@router.post("/api/v1/signin")
@operation(CONSOLE_LOGIN)
async def console_login(request: Request) -> dict[str, Any]:
    """ConsoleLogin: the key is valid and may use the console; answers who it belongs to."""
    principal = request.state.principal
    settings = request.app.state.settings
    return {
        "console_login": "Success",
        "type": principal.kind,
        "user_name": principal.user_name if not principal.is_root else "root",
        "arn": principal.arn,
        "access_key_id": principal.access_key_id,
        "account_id": settings.account_id,
        "region": settings.region,
    }
