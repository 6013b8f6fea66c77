"""One translator from exceptions to the error body of DESIGN.md (code, message, details)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from core.errors import WatchkeepError, _RetryLater
from server.responses import JSONBody

log = logging.getLogger(__name__)

# Details that belong in the audit trail only, never in a response (spec audit §7.5).
_PRIVATE_DETAILS = frozenset({"key_status"})

_HTTP_CODES = {
    400: "InvalidParameterException",
    401: "MissingAuthenticationTokenException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    405: "UnsupportedOperationException",
    413: "RequestEntityTooLargeException",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def watchkeep_error_response(exc: WatchkeepError) -> JSONBody:
    details = {k: v for k, v in exc.details.items() if k not in _PRIVATE_DETAILS}
    headers = {}
    if isinstance(exc, _RetryLater):
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONBody(
        error_body(exc.code, exc.message, details), status_code=exc.status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WatchkeepError)
    async def _watchkeep(request: Request, exc: WatchkeepError) -> JSONBody:
        return watchkeep_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONBody:
        problems = [_describe(e) for e in exc.errors()]
        return JSONBody(
            error_body("InvalidParameterException", "; ".join(problems), {"errors": problems}),
            status_code=400,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONBody:
        if isinstance(exc.__cause__, WatchkeepError):
            # FastAPI wraps what reading a body raised (a body over the size limit) in a 400
            # "error parsing the body": answer the error itself.
            return watchkeep_error_response(exc.__cause__)
        if isinstance(exc.__cause__, UnicodeDecodeError):
            message = "the request body is not valid UTF-8"
            return JSONBody(error_body("InvalidParameterException", message), status_code=400)
        code = _HTTP_CODES.get(exc.status_code, "InvalidParameterException")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such API route: {request.method} {_shown(request.url.path)}"
        elif exc.status_code == 405:
            message = f"{request.method} is not supported on {_shown(request.url.path)}"
        return JSONBody(error_body(code, message), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONBody:
        request_id = str(uuid.uuid4())
        log.exception("unexpected error (request id %s)", request_id)
        return internal_failure_response(request_id)


def internal_failure_response(request_id: str) -> JSONBody:
    return JSONBody(
        error_body(
            "InternalFailure",
            f"internal error; the server log has the details under request id {request_id}",
            {"request_id": request_id},
        ),
        status_code=500,
    )


def _describe(error: Any) -> str:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type")
    if kind == "json_invalid":  # FastAPI's loc is ("body", <character offset>)
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        return f"the request body is not valid JSON: {reason}{at}"
    if loc == ("body",) and kind == "missing":
        return "the request body is empty: send a JSON object (Content-Type: application/json)"
    if loc == ("body",) and kind in _NOT_AN_OBJECT:
        return "the request body must be a JSON object, sent as Content-Type: application/json"
    where = ".".join(str(part) for part in loc if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


# What pydantic says of a body that is not an object: another JSON value, or a body FastAPI
# did not parse because its Content-Type is not JSON.
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


def _shown(path: str, limit: int = 200) -> str:
    """A path as an error message shows it: a 60 KB path is not echoed whole."""
    return path if len(path) <= limit else f"{path[:limit]}... ({len(path)} characters)"
