"""A group commit that fails part-way (full disk, fsync error): every batch in it is refused,
and none of its records comes back after a crash, so a client's retry is stored once."""

from __future__ import annotations

import errno
import os
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from core.errors import StorageFull
from store import wal
from store.engine import Store
from tests.conftest import fill_disk
from tests.store.test_engine import append, batch, crash, open_store, rows


def submit_together(store: Store, messages: list[list[str]]) -> list[Future[Any]]:
    """Queue several batches so that the commit thread takes them as one group commit."""
    commit = store._commit
    assert commit is not None
    with commit._cond:  # the commit thread cannot take the queue until all are in it
        return [
            store.submit_logs("g", "s", batch(m), batch(m).select([]), {"n": len(m)})
            for m in messages
        ]


def refused(futures: list[Future[Any]]) -> None:
    for future in futures:
        with pytest.raises(StorageFull):
            future.result(10)


@pytest.mark.disk_size("4m")
def test_full_disk_mid_group_commit_replays_none_of_its_batches(small_disk: Path) -> None:
    data = small_disk / "data"
    store = open_store(data)
    append(store, "g", ["acked before"])
    filler = fill_disk(small_disk, leave_bytes=64 << 10)
    # The first record fits in what is left, the second does not.
    futures = submit_together(store, [["refused, fits"], ["refused, too big" + "x" * (1 << 20)]])
    refused(futures)
    filler.unlink()
    append(store, "g", ["acked after"])
    crash(store)
    again = open_store(data)
    assert [m for _, m in rows(again, "g")] == ["acked before", "acked after"]
    again.close()


def test_fsync_error_replays_none_of_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An fsync error cannot be provoked on a healthy disk: inject it, once.
    store = open_store(tmp_path)
    append(store, "g", ["acked before"])
    real_fdatasync = os.fdatasync
    calls = iter([OSError(errno.EIO, "Input/output error")])

    def fdatasync(fd: int) -> None:
        error = next(calls, None)
        if error is not None:
            raise error
        real_fdatasync(fd)

    monkeypatch.setattr(wal.os, "fdatasync", fdatasync)
    refused(submit_together(store, [["refused a"], ["refused b"]]))
    monkeypatch.undo()
    append(store, "g", ["acked after"])
    crash(store)
    again = open_store(tmp_path)
    assert [m for _, m in rows(again, "g")] == ["acked before", "acked after"]
    again.close()


def test_nothing_is_appended_after_a_failed_batch_until_it_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write fails, and so does the first attempt to cut the file back: the next batch is
    # refused rather than written behind the unacknowledged bytes; once the cut works, writes
    # go on in the same file.
    store = open_store(tmp_path)
    append(store, "g", ["acked before"])
    real_writev, real_ftruncate = os.writev, os.ftruncate
    failures = {"writev": 1, "ftruncate": 3}  # append's own cut, the rollback, the retry

    def failing(name: str, real: Any) -> Any:
        def call(*args: Any) -> Any:
            if failures[name]:
                failures[name] -= 1
                if name == "writev":  # half a record reaches the file first
                    real(args[0], [b"\0" * 10])
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args)

        return call

    monkeypatch.setattr(wal.os, "writev", failing("writev", real_writev))
    monkeypatch.setattr(wal.os, "ftruncate", failing("ftruncate", real_ftruncate))
    with pytest.raises(StorageFull):
        append(store, "g", ["refused, written in part"])
    with pytest.raises(StorageFull):
        append(store, "g", ["refused, the file is not clean yet"])
    append(store, "g", ["acked after"])
    monkeypatch.undo()
    crash(store)
    again = open_store(tmp_path)
    assert [m for _, m in rows(again, "g")] == ["acked before", "acked after"]
    again.close()
