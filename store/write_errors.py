"""What a failed Parquet write tells the operator: "disk full" only when it is."""

from __future__ import annotations

import errno
import os

from core.errors import StorageFull, WatchkeepError

__all__ = ["is_out_of_space", "os_error_text", "write_failure"]

# Out of space (or quota): the one write failure that is the operator's "disk full".
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_out_of_space(exc: OSError) -> bool:
    return exc.errno in _NO_SPACE


def os_error_text(exc: OSError) -> str:
    """``exc`` as "<errno text> [<ERRNO>] at <path>", whichever parts it carries."""
    if exc.errno is None:
        text = str(exc)
    else:
        text = f"{os.strerror(exc.errno)} [{errno.errorcode.get(exc.errno, exc.errno)}]"
    return f"{text} at {exc.filename}" if exc.filename is not None else text


def write_failure(subject: str, exc: OSError, kept: str) -> WatchkeepError:
    """The error of a failed write of ``subject`` ("Parquet segments of log group 'x'"):
    ``StorageFull`` (503, retry) only when a disk or quota is full, else a plain error naming
    the errno and the path. ``kept`` says where the data waits meanwhile."""
    head = f"could not write {subject}: {os_error_text(exc)}"
    details = {"errno": errno.errorcode.get(exc.errno or 0), "path": exc.filename}
    error: WatchkeepError
    if is_out_of_space(exc):
        error = StorageFull(
            f"{head}; free disk space or raise the quota; {kept}",
            retry_after_s=5,
            details=details,
        )
    else:
        error = WatchkeepError(f"{head}; {kept}", details=details)
    error.__cause__ = exc
    return error
