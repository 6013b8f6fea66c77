"""The one error tree of watchkeep.

Every error a caller can see is a ``WatchkeepError``. Its ``status`` is the HTTP status the
native API answers with, its ``code`` is the exception name of the specs (and of the audit
record's ``errorCode``), and ``details`` carries structured context (line, column, index...).

    WatchkeepError (500, InternalFailure)
    ├── BadRequest (400, InvalidParameterException)
    │   ├── IngestValidationError        every event of a batch was rejected
    │   └── UnsupportedMediaType (415)   a body whose Content-Type we cannot decode
    ├── Unauthenticated (401, MissingAuthenticationTokenException | UnrecognizedClientException
    │                         | InvalidSignatureException)
    ├── AccessDenied (403, AccessDeniedException)
    ├── NotFound (404, ResourceNotFoundException)
    ├── Conflict (409, ResourceAlreadyExistsException)
    │   └── IdempotencyKeyConflict (IdempotentParameterMismatchException)
    ├── PayloadTooLarge (413, RequestEntityTooLargeException)
    ├── Throttled (429, ThrottlingException)         carries retry_after_s
    └── Unavailable (503, ServiceUnavailableException) carries retry_after_s
        └── StorageFull                               the disk or a configured limit is full
"""

from __future__ import annotations

from typing import Any


class WatchkeepError(Exception):
    """Base of every error watchkeep reports to a caller; unexpected bugs are not this."""

    status: int = 500
    code: str = "InternalFailure"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class BadRequest(WatchkeepError):
    """Raised when a request's parameters or body are invalid."""

    status = 400
    code = "InvalidParameterException"


class IngestValidationError(BadRequest):
    """Raised when not a single event of an ingest batch could be accepted."""


class UnsupportedMediaType(BadRequest):
    """Raised when a body's Content-Type (or Content-Encoding) is not one we decode."""

    status = 415


class Unauthenticated(WatchkeepError):
    """Raised when credentials are missing, malformed, unknown or wrong."""

    status = 401
    code = "MissingAuthenticationTokenException"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        if code is not None:
            self.code = code


class AccessDenied(WatchkeepError):
    """Raised when an authenticated principal may not perform an action."""

    status = 403
    code = "AccessDeniedException"


class NotFound(WatchkeepError):
    """Raised when a named resource (log group, query, alarm...) does not exist."""

    status = 404
    code = "ResourceNotFoundException"


class Conflict(WatchkeepError):
    """Raised when a resource to create already exists, or a change conflicts with state."""

    status = 409
    code = "ResourceAlreadyExistsException"


class IdempotencyKeyConflict(Conflict):
    """Raised when an ``Idempotency-Key`` comes again from the same caller for the same target
    with a different request body: it names another request, which must not be dropped as a
    retry nor stored under a key that already stands for something else."""

    # AWS's name for a client token reused with different parameters (EC2, DynamoDB...).
    code = "IdempotentParameterMismatchException"


class PayloadTooLarge(WatchkeepError):
    """Raised when a request body or batch exceeds a configured limit."""

    status = 413
    code = "RequestEntityTooLargeException"


class _RetryLater(WatchkeepError):
    def __init__(
        self, message: str, *, retry_after_s: int = 1, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class Throttled(_RetryLater):
    """Raised when a caller sends faster than a configured rate allows."""

    status = 429
    code = "ThrottlingException"


class Unavailable(_RetryLater):
    """Raised when the server cannot take the request now: starting up, or backpressure."""

    status = 503
    code = "ServiceUnavailableException"


class StorageFull(Unavailable):
    """Raised when the disk is full or the WAL/memtable limits are reached."""
