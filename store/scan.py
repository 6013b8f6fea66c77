"""The ``logs`` relation a query runs against: pruned Parquet segments plus memtable batches.

Builds SQL text and parameters only; the engine registers the memtable tables and runs it.
Where a field column has different types in different parts, every part renders it as text
(spec §2.4), so ``UNION ALL BY NAME`` never applies DuckDB's own casts (which would turn the
number 42 into ``'42.0'``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from store.catalog import Segment
from store.schema import RESERVED_NAMES

# Integral doubles below 2^53 print without a fraction; other numbers use DuckDB's shortest
# round-trip form.
_RENDER_DOUBLE = (
    "CASE WHEN {c} = trunc({c}) AND abs({c}) < 9007199254740992 "
    "THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) ELSE CAST({c} AS VARCHAR) END"
)
_RENDER_BOOL = "CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"


@dataclass(slots=True)
class Relation:
    """SQL for the relation, its parameters, and Arrow tables to register by name first."""

    sql: str
    params: list[Any] = field(default_factory=list)
    tables: dict[str, pa.Table] = field(default_factory=dict)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_relation(
    data_dir: Path,
    segments: Sequence[Segment],
    memtables: Sequence[pa.Table],
    *,
    empty: pa.Table,
    prefix: str = "wk_mem",
    memtables_first: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Relation:
    """A ``SELECT`` that unions the segments and memtable tables by column name, in the order
    given (``memtables_first`` puts the newest data, the memtable, before the segments).

    With ``start_ms`` and ``end_ms``, only events with ``start_ms <= ts_ms < end_ms``: the
    predicate goes on the memtable and on the segments the range cuts, not on those it covers
    whole (their metadata says so), which then need not read ``ts_ms`` at all.
    """
    part_types: list[dict[str, str]] = [s.columns for s in segments]
    part_types += [{f.name: str(f.type) for f in t.schema} for t in memtables]
    clashes = _clashing(part_types)

    relation = Relation(sql="")
    parts: list[str] = []
    memtable_parts: list[str] = []
    ranged = start_ms is not None and end_ms is not None
    where = " WHERE ts_ms >= ? AND ts_ms < ?" if ranged else ""
    for group, cut in _group_files(segments, start_ms, end_ms):
        replace = _replace_clause(group[0].columns, clashes)
        # The partition folders (date=…/hour=…) are layout, not data: without
        # hive_partitioning = false DuckDB would add them as columns and overwrite a field
        # named ``date`` or ``hour`` with the folder's value. The files of a group have the
        # same columns (DuckDB matches them by name), so binding reads one footer, not all.
        options = "hive_partitioning = false"
        parts.append(f"SELECT *{replace} FROM read_parquet(?, {options}){where if cut else ''}")
        relation.params.append([str(data_dir / s.path) for s in group])
        relation.params += [start_ms, end_ms] if cut else []
    memtable_params: list[Any] = []
    for index, table in enumerate(memtables):
        name = f"{prefix}_{index}"
        relation.tables[name] = table
        replace = _replace_clause({f.name: str(f.type) for f in table.schema}, clashes)
        memtable_parts.append(f"SELECT *{replace} FROM {quote_identifier(name)}{where}")
        memtable_params += [start_ms, end_ms] if ranged else []
    if memtables_first:
        relation.params = memtable_params + relation.params
    else:
        relation.params += memtable_params
    parts = memtable_parts + parts if memtables_first else parts + memtable_parts
    if not parts:
        relation.tables[f"{prefix}_empty"] = empty
        parts.append(f"SELECT * FROM {quote_identifier(prefix + '_empty')}")
    relation.sql = " UNION ALL BY NAME ".join(parts)
    return relation


def relation_schema(
    segments: Sequence[Segment], memtables: Sequence[pa.Table], *, empty: pa.Table
) -> dict[str, str]:
    """The columns of ``build_relation``'s SELECT (name -> Arrow type) from metadata alone.

    A field column whose type differs between parts is text there (see ``_replace_clause``).
    """
    part_types: list[dict[str, str]] = [s.columns for s in segments]
    part_types += [{f.name: str(f.type) for f in t.schema} for t in memtables]
    if not part_types:
        part_types = [{f.name: str(f.type) for f in empty.schema}]
    clashes = _clashing(part_types)
    schema: dict[str, str] = {}
    for types in part_types:
        for name, kind in types.items():
            schema.setdefault(name, "string" if name in clashes else kind)
    return schema


def _clashing(part_types: Sequence[Mapping[str, str]]) -> set[str]:
    seen: dict[str, set[str]] = {}
    for types in part_types:
        for name, kind in types.items():
            if name not in RESERVED_NAMES:
                seen.setdefault(name, set()).add(kind)
    return {name for name, kinds in seen.items() if len(kinds) > 1}


def _group_files(
    segments: Sequence[Segment], start_ms: int | None, end_ms: int | None
) -> list[tuple[list[Segment], bool]]:
    """Segments with the same columns, all inside the range or all cut by it, share one
    read_parquet; and whether the range cuts them (``ts_ms`` must be filtered)."""
    groups: dict[tuple[object, ...], list[Segment]] = {}
    for segment in segments:
        cut = start_ms is not None and end_ms is not None
        if cut and start_ms is not None and end_ms is not None:
            cut = not (start_ms <= segment.min_ts and segment.max_ts < end_ms)
        groups.setdefault((cut, *sorted(segment.columns.items())), []).append(segment)
    return [(group, bool(key[0])) for key, group in groups.items()]


def _replace_clause(types: Mapping[str, str], clashes: set[str]) -> str:
    renders = []
    for name in sorted(clashes & types.keys()):
        column = quote_identifier(name)
        if types[name] == "double":
            renders.append(f"{_RENDER_DOUBLE.format(c=column)} AS {column}")
        elif types[name] == "bool":
            renders.append(f"{_RENDER_BOOL.format(c=column)} AS {column}")
    return f" REPLACE ({', '.join(renders)})" if renders else ""
