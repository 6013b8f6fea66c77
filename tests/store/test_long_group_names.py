"""Log group names of every valid length on real files: the partition directory always fits the
file system's NAME_MAX, two names never share one, and a failed flush says what really failed."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import StorageFull, WatchkeepError
from core.names import validate_group_name
from store.layout import (
    HOUR_MS,
    LOGS_TABLE_DIR,
    NAME_MAX,
    decode_group,
    encode_group,
    group_dir,
    partition_dir,
)
from store.log_upkeep import ExpiredPartition
from tests.conftest import fill_disk
from tests.store.test_engine import Clock, append, crash, open_store, rows

DAY_MS = 86_400_000

# At and over the old limit: "log_group=" + 245 bytes is exactly NAME_MAX.
NAMES = {
    "245-ascii": "b" * 245,
    "246-ascii": "b" * 246,
    "512-ascii": "b" * 512,
    "81-slashes": "/" * 81,  # 243 bytes encoded: still readable
    "90-slashes": "/" * 90,  # 270 bytes encoded
    "170-slashes": "/" * 170,
    "512-e-acute": "é" * 512,
    "512-cjk": "日" * 512,
    "512-mixed": ("/aws/lambda/é-日#" * 40)[:512],
}


def dir_name_bytes(name: str) -> int:
    return len(group_dir(Path("/"), name).name.encode())


def assert_fits(data: Path, relative: str) -> None:
    for part in Path(relative).parts:
        assert len(part.encode()) <= NAME_MAX, part


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_long_name_ingests_flushes_compacts_expires_and_survives_restart(
    tmp_path: Path, name: str
) -> None:
    data = tmp_path / "data"
    clock = Clock(now_s=10 * 86_400)
    now_ms = int(clock.now_s * 1000)
    old, recent = now_ms - 3 * DAY_MS, now_ms - HOUR_MS
    store = open_store(data, clock, compact_min_segments=1)
    append(store, name, ["old", "recent 1"], ts_ms=[old, recent])
    assert store.flush(force=True) == 2
    append(store, name, ["recent 2"], ts_ms=[recent + 1])
    assert store.flush(force=True) == 1

    segments = store._lake_().all_segments()
    assert len(segments) == 3
    for segment in segments:
        assert_fits(data, segment.path)
        assert (data / segment.path).parent == partition_dir(data, name, segment.hour_ms)
    assert [p.name for p in (data / LOGS_TABLE_DIR).iterdir()] == [group_dir(data, name).name]
    assert rows(store, name) == [(1, "old"), (2, "recent 1"), (3, "recent 2")]

    assert store.compact() == 2, "the two small segments of the recent hour merge"
    assert len(store._lake_().all_segments()) == 2
    assert rows(store, name) == [(1, "old"), (2, "recent 1"), (3, "recent 2")]

    store.put_retention(name, 1)
    old_hour = old - old % HOUR_MS
    [old_segment] = [s for s in store._lake_().all_segments() if s.hour_ms == old_hour]
    expired = [ExpiredPartition(name, old_hour, 1, 1, old_segment.size_bytes)]
    assert store.apply_retention(dry_run=True) == expired
    assert store.apply_retention() == expired
    assert rows(store, name) == [(2, "recent 1"), (3, "recent 2")]

    append(store, name, ["unflushed"], ts_ms=[recent + 2])
    crash(store)
    again = open_store(data, clock)
    assert rows(again, name) == [(2, "recent 1"), (3, "recent 2"), (4, "unflushed")]
    assert again.flush(force=True) == 1
    again.close()

    third = open_store(data, clock)
    assert rows(third, name) == [(2, "recent 1"), (3, "recent 2"), (4, "unflushed")]
    assert third.get_group(name).segment_count == 2
    for segment in third._lake_().all_segments():
        assert (data / segment.path).parent == partition_dir(data, name, segment.hour_ms)
    third.close()


def test_the_names_the_http_api_rejected_for_the_file_system_are_valid() -> None:
    # The reported case: valid names, so only the layout could make them fit.
    for name in ("b" * 246, "/" * 90, "/" * 170, "b" * 512):
        assert validate_group_name(name) == name
        assert dir_name_bytes(name) <= NAME_MAX


def test_long_names_sharing_a_prefix_keep_their_own_directories_and_events(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    names = ["b" * 300, "b" * 301, "b" * 300 + "c", "/" * 100, "/" * 101]
    for name in names:
        append(store, name, [f"from {len(name)} {name[-1]}"])
    store.flush(force=True)
    directories = {group_dir(tmp_path, n) for n in names}
    assert len(directories) == len(names)
    assert {p for p in (tmp_path / LOGS_TABLE_DIR).iterdir()} == directories
    for name in names:
        assert rows(store, name) == [(1, f"from {len(name)} {name[-1]}")]
    store.close()


def test_names_that_fit_keep_the_readable_directory_of_existing_data_dirs() -> None:
    # Directories written before hashing existed must be found again unchanged.
    assert encode_group("app") == "app"
    assert encode_group("/aws/lambda/my-fn") == "%2Faws%2Flambda%2Fmy-fn"
    assert encode_group("a#b.c_d") == "a%23b.c_d"
    assert encode_group("b" * 245) == "b" * 245
    assert encode_group("/" * 81) == "%2F" * 81
    for name in ("app", "/aws/lambda/my-fn", "b" * 245, "/" * 81, "é" * 40):
        assert decode_group(encode_group(name)) == name


def test_a_long_name_gets_a_readable_prefix_and_the_hash_of_the_whole_name() -> None:
    value = encode_group("/aws/lambda/" + "x" * 300)
    prefix, digest = value.split("@")
    assert prefix.startswith("%2Faws%2Flambda%2Fxxx") and len(prefix) <= 180
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert decode_group(value) is None, "a hashed value does not hold the whole name"
    # An escape or a multi-byte character is never cut in half.
    assert not encode_group("日" * 100).split("@")[0].endswith(("%", "%E6", "%E6%97"))
    assert encode_group("x" + "/" * 200).split("@")[0].endswith("%2F")


def test_a_short_name_spelled_like_a_hashed_value_does_not_take_its_directory() -> None:
    long = "b" * 246
    lookalike = encode_group(long)  # contains "@"; the store does not validate names
    assert len(lookalike) <= 245
    assert encode_group(lookalike) != encode_group(long)


ALLOWED = st.sampled_from("ABCXYZabcxyz0189._/#-")
ANY_CHAR = st.characters(codec="utf-8")  # no lone surrogates: UTF-8 cannot hold them
NAME = st.text(st.one_of(ALLOWED, ANY_CHAR), min_size=1, max_size=512) | st.text(
    ALLOWED, min_size=200, max_size=512
)


@settings(max_examples=300, deadline=None)
@given(name=NAME)
def test_every_name_gets_a_directory_that_fits_name_max(name: str) -> None:
    value = encode_group(name)
    assert value.isascii()
    assert dir_name_bytes(name) <= NAME_MAX
    parts = partition_dir(Path("data"), name, 1_800_000_000_000).parts
    assert all(len(p.encode()) <= NAME_MAX for p in parts)
    assert decode_group(value) in (name, None)
    assert (decode_group(value) is None) == ("@" in value)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(NAME, min_size=2, max_size=6, unique=True))
def test_distinct_names_get_distinct_directories(names: list[str]) -> None:
    assert len({encode_group(n) for n in names}) == len(names)


@settings(max_examples=300, deadline=None)
@given(
    stem=st.text(st.one_of(ALLOWED, ANY_CHAR), min_size=60, max_size=400),
    tails=st.lists(st.text(ALLOWED, max_size=112), min_size=2, max_size=4, unique=True),
)
def test_names_alike_up_to_their_last_characters_get_distinct_directories(
    stem: str, tails: list[str]
) -> None:
    names = {stem + tail for tail in tails} | {encode_group(stem + tail) for tail in tails}
    assert len({encode_group(n) for n in names}) == len(names)


# ---- flush failures ------------------------------------------------------------------------


def test_a_flush_failure_that_is_not_a_full_disk_names_the_error_and_the_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path)
    append(store, "app", ["kept"])
    blocker = group_dir(tmp_path, "app")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the group's directory belongs")

    with pytest.raises(WatchkeepError) as info:
        store.flush(force=True)
    assert not isinstance(info.value, StorageFull), "the disk is not full"
    message = info.value.message
    assert "Not a directory" in message and "ENOTDIR" in message
    assert str(blocker) in message and "'app'" in message
    assert info.value.details["errno"] == "ENOTDIR"
    assert any("Not a directory" in r.getMessage() for r in caplog.records)

    blocker.unlink()
    assert store.flush(force=True) == 1, "the events stayed in the memtable and the WAL"
    assert rows(store, "app") == [(1, "kept")]
    store.close()


def test_one_failing_group_does_not_hold_back_the_others(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "broken", ["a"])
    append(store, "fine", ["b"])
    blocker = group_dir(tmp_path, "broken")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("")
    with pytest.raises(WatchkeepError):
        store.flush(force=True)
    assert store.get_group("fine").segment_count == 1
    blocker.unlink()
    store.close()
    again = open_store(tmp_path)
    assert rows(again, "broken") == [(1, "a")] and rows(again, "fine") == [(1, "b")]
    again.close()


@pytest.mark.disk_size("4m")
def test_a_full_disk_during_a_flush_is_storage_full(small_disk: Path) -> None:
    data = small_disk / "data"
    store = open_store(data)
    append(store, "app", ["x" * 1000 + str(i) for i in range(500)])
    filler = fill_disk(small_disk)
    with pytest.raises(StorageFull) as info:
        store.flush(force=True)
    assert "No space left on device" in info.value.message
    assert info.value.details["errno"] == errno.errorcode[errno.ENOSPC]
    filler.unlink()
    assert store.flush(force=True) == 500
    store.close()
