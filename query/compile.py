"""``compile_query(query, schema) -> CompiledQuery``: a checked query as DuckDB SQL.

Each command becomes one stage of a CTE chain over the relation ``logs`` (DESIGN.md, Contracts);
fields live in columns with internal names, and a ``Scope`` maps each field name of the query to
the SQL that reads it. Records keep a *current order* (newest first by default, spec §6.1), which
``limit``, ``dedup`` and the final projection apply. Every query value is a bound parameter and
every identifier is quoted. Expressions compile in ``query.expressions``. No I/O here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from query import nodes as n
from query.aggregates import compile_aggregate
from query.captures import glob_captures, regex_captures
from query.check import MAX_LIMIT, check
from query.compile_options import CompileOptions
from query.compiled import CompiledQuery, OutputColumn, Projection
from query.errors import QueryError
from query.expressions import ExpressionCompiler, Scope
from query.nesting import TOO_DEEP
from query.regex import analyze_regex
from query.schema import base_scope, internal_prefix, ptr
from query.values import (
    Kind,
    Params,
    Value,
    order_columns,
    quote,
    sort_key,
    sort_term,
    to_bool,
    to_str,
)

__all__ = ["CompileOptions", "CompiledQuery", "OutputColumn", "compile_query"]

log = logging.getLogger(__name__)

_DEFAULT_ORDER = ("ts_ms DESC", "seq DESC", "log_group DESC")
_SCANNED = "count(*) AS records_scanned, coalesce(sum(message_bytes), 0) AS bytes_scanned"


@dataclass(slots=True)
class _Stage:
    name: str
    sql: str
    inline: bool = False  # NOT MATERIALIZED: read more than once, but never worth copying


def compile_query(
    query: n.Query, schema: Mapping[str, str], options: CompileOptions | None = None
) -> CompiledQuery:
    """Compile a parsed query against the ``logs`` schema (column name -> Arrow type)."""
    try:
        check(query)
        return _Compiler(schema, options or CompileOptions()).run(query)
    except RecursionError:  # pragma: no cover - parse() bounds nesting well below this
        log.exception("query: recursion while compiling a query within the nesting limit")
        raise QueryError(
            f"The query is {TOO_DEEP}: simplify its expressions.", n.Span(1, 1, 0, len(query.text))
        ) from None


class _Compiler:
    def __init__(self, schema: Mapping[str, str], options: CompileOptions) -> None:
        self.options = options
        self.params = Params()
        self.prefix = internal_prefix(schema)
        self.counters: dict[str, int] = {}
        self.stages: list[_Stage] = []
        self.source = "logs"
        self.order: list[str] = list(_DEFAULT_ORDER[:2] if options.groups == 1 else _DEFAULT_ORDER)
        self.scope = base_scope(schema, self.params, options)
        self.exprs = ExpressionCompiler(self, compile_aggregate)
        self.projection = Projection()
        self.stats_seen = 0
        self.matched: str | None = None
        self.filtered = False
        self.matched_column: str | None = None
        self.matched_at_end = False
        self.matched_after = False
        self.regexes: list[tuple[str, n.Span]] = []
        self.warnings: list[str] = []

    # ---- ExpressionCompiler's view of the compiler

    def fresh(self, hint: str) -> str:
        """A new internal name: ``$s1`` for stages, ``$f1`` for fields, and so on."""
        self.counters[hint] = self.counters.get(hint, 0) + 1
        return f"{self.prefix}{hint}{self.counters[hint]}"

    def regex(self, pattern: str, span: n.Span) -> str:
        self.regexes.append((pattern, span))
        return self.params.add(pattern)

    def setting(self, name: str) -> int:
        if name == "range_ms":
            return self.options.end_ms - self.options.start_ms
        value: int = getattr(self.options, name)
        return value

    def warn(self, message: str) -> None:
        log.warning("query: %s", message)
        self.warnings.append(message)

    def _out(self, name: str) -> str:
        """A column of the final SELECT, prefixed so that no schema column can shadow it."""
        return quote(self.prefix + name)

    # ---- stages

    def _stage(self, sql: str) -> str:
        name = self.fresh("s")
        self.stages.append(_Stage(name, sql))
        self.source = quote(name)
        return self.source

    def _with(self, stages: list[_Stage], body: str) -> str:
        if not stages:
            return body
        ctes = ",\n".join(
            f"{quote(s.name)} AS {'NOT MATERIALIZED ' if s.inline else ''}({s.sql})" for s in stages
        )
        return f"WITH {ctes}\n{body}"

    # ---- commands

    def run(self, query: n.Query) -> CompiledQuery:
        for command in query.commands:
            self._command(command)
        if self.matched is None:
            # No limit or dedup: every matched record reaches the end, so the rows count
            # them, unless the cap cut them short (``CompiledQuery.matched_below``).
            self.matched_at_end = not self.stats_seen
            self.matched = self.source
        return self._finish()

    def _command(self, command: n.Command) -> None:
        match command:
            case n.Fields():
                self._fields(command)
            case n.Display():
                self.projection.display = command
            case n.Filter():
                self._filter(command)
            case n.Stats():
                self._stats(command)
            case n.Sort():
                self._sort(command)
            case n.Limit():
                self._limit(command)
            case n.ParseGlob():
                self._parse_glob(command)
            case n.ParseRegex():
                self._parse_regex(command)
            case n.Dedup():
                self._dedup(command)
            case n.Unsupported():  # pragma: no cover - check() refuses these
                raise QueryError(f'The command "{command.command}" is not supported.', command.span)

    def _fields(self, command: n.Fields) -> None:
        columns: list[str] = []
        defined: dict[str, Value] = {}
        for item in command.items:
            # A later item may use an earlier item's alias: it reads the expression itself.
            value = self.exprs.value(item.expr, extra=defined)
            column = self.fresh("f")
            columns.append(f"{value.sql} AS {quote(column)}")
            defined[item.name] = value
            self._remember(item.name, Value(quote(column), value.kind, value.nullable))
            names = self.projection.after_stats if self.stats_seen else self.projection.fields
            if item.name not in names:
                names.append(item.name)
        self._stage(f"SELECT *, {', '.join(columns)} FROM {self.source}")

    def _remember(self, name: str, value: Value) -> None:
        self.scope.fields[name] = value

    def _filter(self, command: n.Filter) -> None:
        condition = to_bool(self.exprs.value(command.condition), self.params)
        self._stage(f"SELECT * FROM {self.source} WHERE {condition}")
        if not self.stats_seen and self.matched is None:
            self.filtered = True

    def _sort(self, command: n.Sort) -> None:
        columns: list[str] = []
        terms: list[str] = []
        for key in command.keys:
            value = self.exprs.value(key.expr)
            column = quote(self.fresh("o"))
            columns.append(f"{sort_key(value, self.params)} AS {column}")
            terms.append(sort_term(column, descending=key.descending))
        self._stage(f"SELECT *, {', '.join(columns)} FROM {self.source}")
        # A stable sort: ties keep their previous order (spec §7.5).
        self.order = terms + self.order

    def _limit(self, command: n.Limit) -> None:
        self._mark_matched()
        count = int(command.count)
        self._stage(f"SELECT * FROM {self.source} ORDER BY {', '.join(self.order)} LIMIT {count}")

    def _mark_matched(self) -> None:
        if self.matched is None and not self.stats_seen:
            self.matched = self.source

    def _dedup(self, command: n.Dedup) -> None:
        self._mark_matched()
        keys = [self.exprs.value(e).sql for e in command.exprs]
        number = quote(self.fresh("rn"))
        window = f"PARTITION BY {', '.join(keys)} ORDER BY {', '.join(self.order)}"
        numbered = self._stage(
            f"SELECT *, row_number() OVER ({window}) AS {number} FROM {self.source}"
        )
        keep = " OR ".join([f"{number} = 1", *(f"{k} IS NULL" for k in keys)])
        self._stage(f"SELECT * EXCLUDE ({number}) FROM {numbered} WHERE {keep}")

    def _parse_source(self, source: n.Field | None, span: n.Span) -> str:
        field_ = source or n.Field("@message", span)
        return to_str(self.exprs.value(field_))

    def _parse_glob(self, command: n.ParseGlob) -> None:
        source = self._parse_source(command.source, command.span)
        captures = glob_captures(source, command.pattern.value, self.params)
        self._add_captures(list(zip(command.names, captures, strict=True)))

    def _parse_regex(self, command: n.ParseRegex) -> None:
        info = analyze_regex(command.pattern.pattern, command.pattern.span)
        self.regexes.append((info.pattern, command.pattern.span))  # RE2 checks it first
        source = self._parse_source(command.source, command.span)
        self._add_captures(regex_captures(source, info, self.params))

    def _add_captures(self, captures: Sequence[tuple[str, str]]) -> None:
        """Add the captures of one ``parse`` as fields, in one stage (no second one: DuckDB then
        pushes a later ``filter`` below it, and extracts the rest only where it passes)."""
        columns: list[str] = []
        for name, sql in captures:
            column = quote(self.fresh("p"))
            columns.append(f"{sql} AS {column}")
            self._remember(name, Value(column, Kind.STR, costly=True))
            if name not in self.projection.parsed:
                self.projection.parsed.append(name)
        if columns:
            self._stage(f"SELECT *, {', '.join(columns)} FROM {self.source}")

    def _stats(self, command: n.Stats) -> None:
        if not self.stats_seen:
            self.matched = self.source
        self.stats_seen += 1
        second = self.stats_seen == 2
        selects: list[str] = []
        outputs: dict[str, Value] = {}
        keys: list[Value] = []
        for group in command.groups:
            value = self.exprs.value(group.expr)
            column = self.fresh("k")
            selects.append(f"{value.sql} AS {quote(column)}")
            key = Value(quote(column), value.kind, value.nullable)
            outputs[group.name] = key
            keys.append(key)
        for item in command.aggregates:
            value = self.exprs.value(item.expr, aggregates=True)
            column = self.fresh("a")
            selects.append(f"{value.sql} AS {quote(column)}")
            outputs[item.name] = Value(quote(column), value.kind, value.nullable)
        selects += self._carry_matched(first=not second)
        group_by = ""
        if keys:
            group_by = " GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys)))
        self._stage(f"SELECT {', '.join(selects)} FROM {self.source}{group_by}")
        self.scope = Scope(fields=dict(outputs), raw=False)
        # Stats rows come out in the natural order of their keys (spec §6.1); text keys need a
        # computed sort key, kept in a hidden column.
        self.order = []
        hidden: list[str] = []
        for key in keys:
            if key.kind is Kind.STR:
                column = quote(self.fresh("o"))
                hidden.append(f"{sort_key(key, self.params)} AS {column}")
                self.order.append(sort_term(column, descending=False))
            else:
                self.order.append(sort_term(key.sql, descending=False))
        if hidden:
            self._stage(f"SELECT *, {', '.join(hidden)} FROM {self.source}")
        self.projection.stats = list(outputs)
        self.projection.after_stats = []

    def _carry_matched(self, *, first: bool) -> list[str]:
        """recordsMatched is the number of records entering the first stats: count it there
        (a window over the groups costs nothing) instead of filtering everything twice."""
        if first:
            if not self.filtered:
                return []
            self.matched_column = quote(self.fresh("m"))
            return [f"CAST(sum(count(*)) OVER () AS BIGINT) AS {self.matched_column}"]
        if self.matched_column is None:
            return []
        return [f"max({self.matched_column}) AS {self.matched_column}"]

    # ---- output

    def _output_names(self) -> list[tuple[str, n.Expr | None]]:
        projection = self.projection
        if projection.display is not None:
            return [(item.name, item.expr) for item in projection.display.items]
        if self.stats_seen:
            names = projection.stats + [
                x for x in projection.after_stats if x not in projection.stats
            ]
        elif projection.fields:
            names = projection.fields + [x for x in projection.parsed if x not in projection.fields]
        else:
            names = ["@timestamp", "@message"]
        return [(name, None) for name in names]

    def _finish(self) -> CompiledQuery:
        selects: list[str] = []
        columns: list[OutputColumn] = []
        seen: set[str] = set()
        for name, expr in self._output_names():
            if name in seen:
                continue
            seen.add(name)
            value = self.exprs.value(expr) if expr is not None else self.exprs.field(name)
            selects.append(f"{value.sql} AS {self._out(f'c{len(columns)}')}")
            columns.append(OutputColumn(name, value.kind))
        if not self.stats_seen and "@ptr" not in seen:  # once, even when the query names it
            pointer = self.scope.fields.get("@ptr") or ptr()
            selects.append(f"{pointer.sql} AS {self._out(f'c{len(columns)}')}")
            columns.append(OutputColumn("@ptr", Kind.STR))
        cap = min(MAX_LIMIT, self.options.limit or MAX_LIMIT)
        # The order is applied twice: by the top-N of the rows, and again outside, since SQL
        # does not promise that a subquery's order survives the SELECT around it.
        inner_keys, outer_order = order_columns(self.order, self._out)
        shown = [self._out(f"c{i}") for i in range(len(columns))]
        if self.matched_column is not None:
            inner_keys.append(f"{self.matched_column} AS {self._out('m')}")
            shown.append(self._out("m"))
        present = self._out("present")
        body = f"SELECT {', '.join(selects + inner_keys)}, true AS {present} FROM {self.source}"
        if outer_order:
            body += f" ORDER BY {', '.join(outer_order)}"
        body += f" LIMIT {cap}"
        # The statistics ride along in the same statement (one bind of the segments, not
        # two): one row of counts, joined to every row, or alone when there are none.
        rows, counts = self.fresh("s"), self.fresh("s")
        statistics, in_stats = self._statistics()
        stages = [*self.stages, _Stage(rows, body), _Stage(counts, statistics)]
        join = f"SELECT * FROM {quote(counts)} LEFT JOIN {quote(rows)} ON true"
        hidden = [present]
        hidden += [] if self.options.scanned_by_store else ["records_scanned", "bytes_scanned"]
        hidden += ["records_matched"] if in_stats else []
        text = f"SELECT {', '.join(shown + hidden)} FROM (\n{self._with(stages, join)}\n)"
        if outer_order:
            text += f" ORDER BY {', '.join(outer_order)}"
        sql, params = self.params.finish(text)
        fallback, _ = self._statistics(standalone=True)
        stats_sql, stats_params = self.params.finish(fallback)
        return CompiledQuery(
            sql=sql,
            params=params,
            columns=tuple(columns),
            statistics_sql=stats_sql,
            statistics_params=stats_params,
            regexes=tuple(self.regexes),
            warnings=tuple(self.warnings),
            aggregated=bool(self.stats_seen),
            matched_in_rows=self.matched_column is not None,
            matched_in_stats=in_stats,
            matched_below=cap if self.matched_at_end and self.filtered else None,
            matched_after=self.matched_after,
            scanned_in_sql=not self.options.scanned_by_store,
        )

    def _statistics(self, *, standalone: bool = False) -> tuple[str, bool]:
        """SQL for recordsScanned and bytesScanned (unless the store counts them) and, where the
        rows do not give it and it differs from recordsScanned, recordsMatched; and whether it has
        recordsMatched. ``standalone``: a statement of its own, always with recordsMatched."""
        scanned = "" if self.options.scanned_by_store else _SCANNED
        if not self.filtered or (
            not standalone and (self.matched_column is not None or self.matched_at_end)
        ):
            if standalone:
                counts = ", ".join(filter(None, [scanned, "count(*) AS records_matched"]))
                return f"SELECT {counts} FROM logs", True
            if scanned:
                return f"SELECT {scanned} FROM logs", False
            return f"SELECT true AS {self._out('one')}", False
        assert self.matched is not None
        index = next(i for i, s in enumerate(self.stages) if quote(s.name) == self.matched)
        if standalone:
            matched = self._with(self.stages[: index + 1], f"SELECT count(*) FROM {self.matched}")
            if not scanned:
                return f"SELECT ({matched}) AS records_matched", True
            return f"SELECT {scanned}, ({matched}) AS records_matched FROM logs", True
        if not scanned:  # the store counts the rest: recordsMatched waits until the rows are out
            self.matched_after = True
            return f"SELECT true AS {self._out('one')}", False
        # The stages up to the matched one are read twice (by the rows and here): keep DuckDB
        # from materializing them, which would copy every column of every record.
        for stage in self.stages[: index + 1]:
            stage.inline = True
        return f"SELECT {scanned}, (SELECT count(*) FROM {self.matched}) AS records_matched", True
