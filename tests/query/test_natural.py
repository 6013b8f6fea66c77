"""Oracles in Python for the natural order (spec §11) and nearest-rank percentiles (§10).

A store holds generated values; DuckDB's answers must equal these plain implementations.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections.abc import Iterator
from fractions import Fraction

import pytest

from query.run import run_query
from query.values import reads_as_number
from store.engine import Store
from tests.query.conftest import T0, ingest, open_store

PIECES = ["a", "b", "A", "Z", "x", "!", "-", ".", " ", "0", "1", "9", "10", "007", "é", "日", "e5"]
_CHUNK = re.compile(r"[0-9]+|[^0-9]+")


def natural_compare(a: str, b: str) -> int:
    a_number, b_number = reads_as_number(a), reads_as_number(b)
    if a_number != b_number:
        return 1 if a_number else -1
    if a_number:
        if float(a) != float(b):
            return -1 if float(a) < float(b) else 1
        return (a > b) - (a < b)
    for x, y in zip(_CHUNK.findall(a), _CHUNK.findall(b), strict=False):
        if x == y:
            continue
        if x[0].isascii() and x[0].isdigit() and y[0].isascii() and y[0].isdigit():
            return -1 if (len(x), x) < (len(y), y) else 1
        return -1 if x < y else 1
    return len(_CHUNK.findall(a)) - len(_CHUNK.findall(b))


def nearest_rank(values: list[float], percent: Fraction) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def generated_values(count: int) -> list[str]:
    rng = random.Random(20240603)
    values = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4))) for _ in range(count)]
    return values + ["10", "9", "01", "1", "1e1", "-5", ".5", "item7", "item12", "9b", "10a"]


@pytest.fixture(scope="module")
def values_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[str]]]:
    store = open_store(tmp_path_factory.mktemp("natural"))
    values = generated_values(300)
    numbers = [round(random.Random(i).uniform(-50, 50), 2) for i in range(len(values))]
    lines = [
        json.dumps({"timestamp": T0 + i, "v": v, "n": x})
        for i, (v, x) in enumerate(zip(values, numbers, strict=True))
    ]
    ingest(store, "natural", "s", "\n".join(lines).encode(), "application/x-ndjson", T0)
    yield store, values
    store.close()


def column(store: Store, query: str) -> list[str | None]:
    result = run_query(store, query, ["natural"], T0, T0 + 10**6)
    out: list[str | None] = []
    for row in result.rows:
        values = [p["value"] for p in row if p["field"] != "@ptr"]
        out.append(values[0] if values else None)
    return out


def test_sort_ascending_is_the_natural_order(values_store: tuple[Store, list[str]]) -> None:
    store, values = values_store
    expected = sorted(values, key=functools.cmp_to_key(natural_compare))
    assert column(store, "sort v asc | display v") == expected


def test_sort_descending_reverses_it(values_store: tuple[Store, list[str]]) -> None:
    store, values = values_store
    expected = sorted(values, key=functools.cmp_to_key(natural_compare), reverse=True)
    assert column(store, "sort v desc | display v") == expected


def test_sorts_first_and_last(values_store: tuple[Store, list[str]]) -> None:
    store, values = values_store
    ordered = sorted(values, key=functools.cmp_to_key(natural_compare))
    result = column(store, "stats sortsFirst(v) as f | display f")
    assert result == [ordered[0]]
    assert column(store, "stats sortsLast(v) as l | display l") == [ordered[-1]]


@pytest.mark.parametrize("percent", ["0", "1", "7", "25", "50", "90", "99", "99.9", "100"])
def test_pct_is_nearest_rank(values_store: tuple[Store, list[str]], percent: str) -> None:
    store, values = values_store
    numbers = [round(random.Random(i).uniform(-50, 50), 2) for i in range(len(values))]
    expected = nearest_rank(numbers, Fraction(percent))
    got = column(store, f"stats pct(n, {percent}) as p | display p")
    assert got == [str(int(expected)) if expected.is_integer() else repr(expected)]
