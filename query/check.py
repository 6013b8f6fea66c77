"""The rules a parsed query must follow before it compiles (spec §6.2, §10, §14.1).

Structure (how many ``stats``, what may follow ``dedup``...), ``limit`` bounds, function names and
arities, where aggregates, ``*`` and periods may stand, and the shape of ``parse`` patterns.
Rules that depend on which fields exist are the compiler's. No I/O here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from query import nodes as n
from query.errors import QueryError
from query.nesting import operands
from query.regex import analyze_regex, glob_to_regex
from query.signatures import AGGREGATES, OUT_OF_SCOPE, SIGNATURES

__all__ = ["MAX_LIMIT", "check"]

MAX_LIMIT = 10_000
_PERIOD_ARGS = {"bin": 0, "datefloor": 1, "dateceil": 1}


def _at(span: n.Span) -> str:
    return f"at line {span.line}, column {span.column}"


def check(query: n.Query) -> None:
    """Raise ``QueryError`` at the first rule the query breaks."""
    _check_structure(query.commands)
    for command in query.commands:
        _check_command(command)


def _check_structure(commands: tuple[n.Command, ...]) -> None:
    stats = [i for i, c in enumerate(commands) if isinstance(c, n.Stats)]
    if len(stats) > 2:
        third = commands[stats[2]]
        raise QueryError(
            f"A query may hold at most two stats commands; the third is {_at(third.span)}.",
            third.span,
        )
    if len(stats) == 2:
        for command in commands[: stats[1]]:
            if isinstance(command, n.Sort | n.Limit):
                word = "sort" if isinstance(command, n.Sort) else "limit"
                raise QueryError(
                    f"With two stats commands, {word} must come after the second one "
                    f"({word} {_at(command.span)}).",
                    command.span,
                )
    dedup = next((i for i, c in enumerate(commands) if isinstance(c, n.Dedup)), None)
    if dedup is not None:
        for command in commands[dedup + 1 :]:
            if not isinstance(command, n.Limit):
                raise QueryError(
                    f"Only limit may follow dedup; move this command before dedup "
                    f"({_at(command.span)}).",
                    command.span,
                )


def _check_command(command: n.Command) -> None:
    match command:
        case n.Unsupported(name, span):
            raise QueryError(
                f'The command "{name}" {_at(span)} is not supported by watchkeep yet.', span
            )
        case n.Limit():
            _check_limit(command)
        case n.Fields(items) | n.Display(items):
            for item in items:
                _check_scalar(item.expr)
        case n.Filter(condition):
            _check_scalar(condition)
        case n.Sort(keys):
            for key in keys:
                _check_scalar(key.expr)
        case n.Dedup(exprs):
            for expr in exprs:
                _check_scalar(expr)
        case n.Stats():
            _check_stats(command)
        case n.ParseGlob(_, pattern, names, span):
            _, captures = glob_to_regex(pattern.value)
            if captures != len(names):
                raise QueryError(
                    f"The parse pattern {_at(pattern.span)} has {captures} * but {len(names)} "
                    "field names follow as: give one name for each *.",
                    pattern.span,
                )
        case n.ParseRegex(_, pattern, names, span):
            if names:
                raise QueryError(
                    f"parse with a regex takes its field names from the named groups; "
                    f"'as' after a regex is not supported ({_at(span)}).",
                    span,
                )
            if not analyze_regex(pattern.pattern, pattern.span).names:
                raise QueryError(
                    f"The parse regex {_at(pattern.span)} has no named group: name the parts "
                    "to extract, e.g. /user=(?<user>\\w+)/.",
                    pattern.span,
                )


def _check_limit(command: n.Limit) -> None:
    if command.modifier is not None:
        raise QueryError(
            f'"limit {command.modifier}" {_at(command.span)} is not supported by watchkeep yet: '
            "write limit and a number.",
            command.span,
        )
    text = command.count
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise QueryError(
            f"limit takes a whole number from 1 to {MAX_LIMIT:,}; {text} is not one "
            f"({_at(command.span)}).",
            command.span,
        )


def _check_stats(command: n.Stats) -> None:
    keys = {g.expr.name for g in command.groups if isinstance(g.expr, n.Field)}
    for item in command.aggregates:
        _check_expr(item.expr, aggregates=True)
        if not any(_aggregate_calls(item.expr)):
            raise QueryError(
                f'"{item.text}" {_at(item.span)} is not an aggregate: stats needs a function '
                "such as count(*), sum(x), avg(x) or pct(x, 99).",
                item.span,
            )
        for field in _bare_fields(item.expr):
            if field.name not in keys:
                raise QueryError(
                    f'The field "{field.name}" {_at(field.span)} must be inside an aggregate '
                    "function or listed after by.",
                    field.span,
                )
    for group in command.groups:
        _check_scalar(group.expr, where="by")


def _check_scalar(expr: n.Expr, where: str = "") -> None:
    _check_expr(expr, aggregates=False, where=where)


def _check_expr(expr: n.Expr, *, aggregates: bool, where: str = "", inside: str = "") -> None:
    """Validate calls in ``expr``; ``inside`` names the enclosing aggregate, if any."""
    for node in _children(expr):
        _check_expr(node, aggregates=aggregates, where=where, inside=inside)
    match expr:
        case n.Like(_, n.Regex() as regex):
            analyze_regex(regex.pattern, regex.span)
        case n.Call():
            _check_call(expr, aggregates=aggregates, where=where, inside=inside)


def _check_call(call: n.Call, *, aggregates: bool, where: str, inside: str) -> None:
    name = call.name.lower()
    signature = SIGNATURES.get(name)
    if signature is None:
        raise _unknown_function(call)
    count = len(call.args)
    if count < signature.min_args or (
        signature.max_args is not None and count > signature.max_args
    ):
        raise QueryError(_arity_message(call, signature.min_args, signature.max_args), call.span)
    if name in AGGREGATES:
        if not aggregates:
            place = "after by" if where == "by" else "outside stats"
            raise QueryError(
                f"The aggregate function {call.name}() {_at(call.span)} cannot be used {place}: "
                "aggregates belong in the list of a stats command.",
                call.span,
            )
        if inside:
            raise QueryError(
                f"The aggregate {call.name}() {_at(call.span)} is nested inside {inside}(): use "
                "two stats commands instead, e.g. stats count(*) as c by x | stats avg(c).",
                call.span,
            )
    for index, arg in enumerate(call.args):
        _check_arg(call, name, index, arg)
    for arg in call.args:
        if not isinstance(arg, n.Period | n.Star):
            _check_expr(
                arg,
                aggregates=aggregates,
                where=where,
                inside=call.name if name in AGGREGATES else inside,
            )


def _check_arg(call: n.Call, name: str, index: int, arg: n.Arg) -> None:
    if isinstance(arg, n.Star) and not (name == "count" and len(call.args) == 1):
        raise QueryError(
            f"* {_at(arg.span)} is only allowed as count(*).",
            arg.span,
        )
    wants_period = _PERIOD_ARGS.get(name) == index
    if isinstance(arg, n.Period) and not wants_period:
        raise QueryError(
            f"The period {arg.quantity}{arg.unit} {_at(arg.span)} is only allowed in bin(), "
            "datefloor() and dateceil().",
            arg.span,
        )
    if wants_period and not isinstance(arg, n.Period):
        raise QueryError(
            f"{call.name}() {_at(call.span)} needs a period such as 5m or 1h as argument "
            f"{index + 1}.",
            call.span,
        )


def _arity_message(call: n.Call, low: int, high: int | None) -> str:
    if high is None:
        wanted = f"at least {low}"
    elif low == high:
        wanted = str(low)
    else:
        wanted = f"{low} to {high}"
    plural = "" if wanted == "1" else "s"
    return f"{call.name}() {_at(call.span)} takes {wanted} argument{plural}, not {len(call.args)}."


def _unknown_function(call: n.Call) -> QueryError:
    name = call.name.lower()
    if name in OUT_OF_SCOPE:
        return QueryError(
            f"The function {OUT_OF_SCOPE[name]}() {_at(call.span)} is not supported by "
            "watchkeep yet.",
            call.span,
        )
    message = f'Unknown function "{call.name}" {_at(call.span)}.'
    names = {s.name.lower(): s.name for s in SIGNATURES.values()}
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    if close:
        message += f' Did you mean "{names[close[0]]}"?'
    return QueryError(message, call.span)


def _children(expr: n.Expr) -> list[n.Expr]:
    """The operands of ``expr`` (a chain's flattened, so that recursion follows nesting, not
    chain length); a call's arguments are handled by the callers."""
    return operands(expr)


def _aggregate_calls(expr: n.Expr) -> Iterator[n.Call]:
    if isinstance(expr, n.Call):
        if expr.name.lower() in AGGREGATES:
            yield expr
            return
        for arg in expr.args:
            if not isinstance(arg, n.Period | n.Star):
                yield from _aggregate_calls(arg)
        return
    for child in _children(expr):
        yield from _aggregate_calls(child)


def _bare_fields(expr: n.Expr) -> Iterator[n.Field]:
    """Fields of an aggregate item that are not inside an aggregate call."""
    if isinstance(expr, n.Field):
        yield expr
    elif isinstance(expr, n.Call):
        if expr.name.lower() in AGGREGATES or expr.name.lower() not in SIGNATURES:
            return
        for arg in expr.args:
            if not isinstance(arg, n.Period | n.Star):
                yield from _bare_fields(arg)
    else:
        for child in _children(expr):
            yield from _bare_fields(child)
