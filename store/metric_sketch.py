"""SQL for the log-bucket histogram of rolled-up metric rows (spec §1.8: 1 % relative accuracy).

A DDSketch-style histogram: with ``a = 0.01`` and ``gamma = (1 + a) / (1 - a)``, a value ``v > 0``
falls in bucket ``k = ceil(ln(v) / ln(gamma))``, that is ``gamma^(k-1) < v <= gamma^k``, whose
representative ``2 * gamma^k / (gamma + 1)`` is within ``a`` of every value of the bucket. Merging
two histograms adds the counts of equal keys, so roll-ups merge in any order and any grouping.

One integer key per bucket covers the sign as well, ordered like the values it stands for, so a
sorted key list is a sorted sample and the rank rules of spec §2.3.2 apply to it unchanged:

- zero is key 0 (exact);
- ``v > 0`` is key ``BIAS + k`` and ``v < 0`` is ``-(BIAS + k(|v|))``, with ``k`` clamped to
  ``(-BIAS, BIAS)``; since spec §1.4 bounds magnitudes to ``[2^-360, 2^360]`` (``|k| <= 12,476``),
  the clamp never touches an accepted value.

A rolled-up row stores ``sketch_keys`` (ascending) and ``sketch_counts``. Everything here is SQL
text for DuckDB, so that values are bucketed and merged in the database, never one by one in
Python. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "ALPHA",
    "BIAS",
    "GAMMA",
    "constant_set_sql",
    "key_of",
    "key_sql",
    "opaque_sql",
    "sketch_points_sql",
    "value_of",
    "value_sql",
]

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
BIAS = 1 << 14
_LN_GAMMA = math.log(GAMMA)


def key_sql(value: str) -> str:
    """The bucket key of the DOUBLE expression ``value``."""
    magnitude = f"least({BIAS - 1}, greatest({1 - BIAS}, ceil(ln(abs({value})) / {_LN_GAMMA!r})))"
    return (
        f"CAST(CASE WHEN ({value}) = 0 THEN 0 "
        f"ELSE sign({value}) * ({BIAS} + {magnitude}) END AS INTEGER)"
    )


def value_sql(key: str) -> str:
    """The representative value of the INTEGER key expression ``key`` (within ALPHA of each)."""
    return (
        f"CASE WHEN ({key}) = 0 THEN 0.0 "
        f"ELSE sign({key}) * 2 * pow({GAMMA!r}, abs({key}) - {BIAS}) / {GAMMA + 1!r} END"
    )


def sketch_points_sql(relation: str, group: Sequence[str]) -> str:
    """``(group..., key, w)`` for every sample of ``relation`` (metric-table columns).

    Raw values count with their weights, earlier histograms with theirs, and a statistic set
    of one value or identical values as ``sample_count`` copies of it (spec §1.3). A statistic
    set of several values has no samples to give: the caller marks its bucket opaque.
    """
    cols = ", ".join(group)
    return f"""SELECT {cols}, {key_sql("v")} AS key, coalesce(w, 1) AS w
    FROM (
        SELECT {cols}, unnest("values") AS v, unnest(counts) AS w
        FROM {relation} WHERE len("values") > 0
    )
    UNION ALL
    SELECT {cols}, key, w
    FROM (
        SELECT {cols}, unnest(sketch_keys) AS key, unnest(sketch_counts) AS w
        FROM {relation} WHERE sketch_keys IS NOT NULL
    )
    UNION ALL
    SELECT {cols}, {key_sql("minimum")} AS key, sample_count AS w
    FROM {relation}
    WHERE {constant_set_sql()}"""


def constant_set_sql() -> str:
    """Rows that are statistic sets of one value or identical values (spec §1.3)."""
    return (
        'coalesce(len("values"), 0) = 0 AND sketch_keys IS NULL '
        "AND (sample_count = 1 OR minimum = maximum)"
    )


def opaque_sql() -> str:
    """Rows whose samples are unknown: statistic sets of several values (spec §1.3)."""
    return (
        'coalesce(len("values"), 0) = 0 AND sketch_keys IS NULL '
        "AND sample_count <> 1 AND minimum <> maximum"
    )


def key_of(value: float) -> int:
    """``key_sql`` in Python, for tests and documentation."""
    if value == 0:
        return 0
    k = max(1 - BIAS, min(BIAS - 1, math.ceil(math.log(abs(value)) / _LN_GAMMA)))
    return int(math.copysign(BIAS + k, value))


def value_of(key: int) -> float:
    """``value_sql`` in Python."""
    if key == 0:
        return 0.0
    return math.copysign(2 * GAMMA ** (abs(key) - BIAS) / (GAMMA + 1), key)
