"""Scalar functions (spec §9) compiled to DuckDB SQL. No I/O here.

``compile_scalar`` turns a call that ``query.check`` accepted (against ``query.signatures``)
into a ``Value``. IP functions live in ``query.ip``, aggregates in ``query.aggregates``.
"""

from __future__ import annotations

from collections.abc import Callable

from query import nodes as n
from query.context import Context, arguments
from query.errors import QueryError
from query.ip import IPV4, IPV6, in_subnet, ip_check, ipv4_to_number
from query.periods import ceil_sql, floor_sql
from query.values import (
    Kind,
    Value,
    is_number_sql,
    to_bool,
    to_num,
    to_str,
    unify,
)

__all__ = ["compile_scalar"]


# Space, tab, CR and LF (spec §9.1), spelled so that the SQL text stays printable.
_WHITESPACE_SQL = "(' ' || chr(9) || chr(13) || chr(10))"
# Years 1 to 9999: DuckDB's timestamps, and so strftime and calendar arithmetic, stop there.
MIN_TIMESTAMP_MS = -62_135_596_800_000
MAX_TIMESTAMP_MS = 253_402_300_799_999
_TIME_RANGE = f"BETWEEN {MIN_TIMESTAMP_MS} AND {MAX_TIMESTAMP_MS}"


def _clamped_int(number: str, low: int, high: int) -> str:
    """A DOUBLE as a BIGINT within [low, high]: never an out-of-range error."""
    return f"CAST(least(greatest(floor({number}), {low}), {high}) AS BIGINT)"


def _flag(sql: str) -> str:
    """A SQL boolean as the numbers 1 / 0 (``isempty``, ``strcontains``...)."""
    return f"CAST({sql} AS BIGINT)"


# ---- §9.1 string ----------------------------------------------------------------------------


def _isempty(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    if v.kind is not Kind.STR:
        return Value(_flag(f"{v.sql} IS NULL"), Kind.INT, nullable=False)
    return Value(_flag(f"coalesce({v.sql} = '', true)"), Kind.INT, nullable=False)


def _isblank(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    if v.kind is not Kind.STR:
        return Value(_flag(f"{v.sql} IS NULL"), Kind.INT, nullable=False)
    blank = f"regexp_full_match({v.sql}, '[ \\t\\r\\n]*')"
    return Value(_flag(f"coalesce({blank}, true)"), Kind.INT, nullable=False)


def _concat(ctx: Context, call: n.Call) -> Value:
    values = arguments(ctx, call)
    return Value("(" + " || ".join(to_str(v) for v in values) + ")", Kind.STR)


def _trimmer(kind: str) -> Callable[[Context, n.Call], Value]:
    def compile_trim(ctx: Context, call: n.Call) -> Value:
        values = arguments(ctx, call)
        chars = to_str(values[1]) if len(values) > 1 else _WHITESPACE_SQL
        return Value(f"{kind}({to_str(values[0])}, {chars})", Kind.STR)

    return compile_trim


def _strlen(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    return Value(f"length({to_str(v)})", Kind.INT)


def _case_map(sql_name: str) -> Callable[[Context, n.Call], Value]:
    def compile_case(ctx: Context, call: n.Call) -> Value:
        (v,) = arguments(ctx, call)
        return Value(f"{sql_name}({to_str(v)})", Kind.STR)

    return compile_case


def _substr(ctx: Context, call: n.Call) -> Value:
    values = arguments(ctx, call)
    text = to_str(values[0])
    start = f"{_clamped_int(to_num(values[1], ctx.params), 0, 2**31 - 2)} + 1"
    if len(values) == 2:
        return Value(f"substring({text}, {start})", Kind.STR)
    length = _clamped_int(to_num(values[2], ctx.params), 0, 2**31 - 1)
    return Value(f"substring({text}, {start}, {length})", Kind.STR)


def _replace(ctx: Context, call: n.Call) -> Value:
    s, find, repl = (to_str(v) for v in arguments(ctx, call))
    return Value(f"replace({s}, {find}, {repl})", Kind.STR)


def _strcontains(ctx: Context, call: n.Call) -> Value:
    values = arguments(ctx, call)
    s, sub = to_str(values[0]), to_str(values[1])
    plain = f"contains({s}, {sub})"
    if len(values) == 2:
        return Value(_flag(plain), Kind.INT)
    folded = f"contains(lower({s}), lower({sub}))"
    ci = values[2]
    if ci.is_const:
        return Value(_flag(folded if _truthy(ci.const) else plain), Kind.INT)
    cond = to_bool(ci, ctx.params)
    return Value(_flag(f"CASE WHEN {cond} THEN {folded} ELSE {plain} END"), Kind.INT)


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        try:
            return float(value) != 0
        except ValueError:
            return value.lower() == "true"
    return bool(value)


def _regex_replace(ctx: Context, call: n.Call) -> Value:
    subject, pattern, replacement = call.args
    if not isinstance(pattern, n.Str):
        raise QueryError(
            f"regexReplace() at line {call.span.line}, column {call.span.column} needs the regex "
            'as a string literal, e.g. regexReplace(@message, "[0-9]+", "N").',
            call.span,
        )
    s, repl = (ctx.value(a) for a in (subject, replacement))  # type: ignore[arg-type]
    marker = ctx.regex(pattern.value, pattern.span)
    return Value(f"regexp_replace({to_str(s)}, {marker}, {to_str(repl)}, 'g')", Kind.STR)


def _affix(sql_name: str) -> Callable[[Context, n.Call], Value]:
    def compile_affix(ctx: Context, call: n.Call) -> Value:
        s, p = arguments(ctx, call)
        return Value(_flag(f"{sql_name}({to_str(s)}, {to_str(p)})"), Kind.INT)

    return compile_affix


def _unary_str(template: str) -> Callable[[Context, n.Call], Value]:
    def compile_unary(ctx: Context, call: n.Call) -> Value:
        (v,) = arguments(ctx, call)
        return Value(template.format(to_str(v)), Kind.STR)

    return compile_unary


def _dec_to_hex(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    number = f"TRY_CAST(trunc({to_num(v, ctx.params)}) AS BIGINT)"
    return Value(f"'0x' || lower(hex({number}))", Kind.STR)


def _hex_to_dec(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    text = f"regexp_replace({to_str(v)}, '^0[xX]', '')"
    sql = (
        f"CASE WHEN regexp_full_match({text}, '[0-9A-Fa-f]{{1,15}}') "
        f"THEN CAST(('0x' || {text}) AS BIGINT) END"
    )
    return Value(sql, Kind.INT)


# ---- §9.2 numeric ---------------------------------------------------------------------------


def _numeric(template: str, kind: Kind = Kind.NUM) -> Callable[[Context, n.Call], Value]:
    def compile_numeric(ctx: Context, call: n.Call) -> Value:
        nums = [to_num(v, ctx.params) for v in arguments(ctx, call)]
        return Value(template.format(*nums), kind)

    return compile_numeric


def _extreme(sql_name: str) -> Callable[[Context, n.Call], Value]:
    def compile_extreme(ctx: Context, call: n.Call) -> Value:
        # DuckDB's greatest/least skip nulls: null only when every argument is (spec §9.2).
        nums = [to_num(v, ctx.params) for v in arguments(ctx, call)]
        return Value(f"{sql_name}({', '.join(nums)})", Kind.NUM)

    return compile_extreme


def _round(ctx: Context, call: n.Call) -> Value:
    values = [to_num(v, ctx.params) for v in arguments(ctx, call)]
    if len(values) == 1:
        return Value(f"round({values[0]})", Kind.NUM)
    return Value(f"round({values[0]}, {_clamped_int(values[1], -308, 308)})", Kind.NUM)


def _haversine(ctx: Context, call: n.Call) -> Value:
    lat1, lon1, lat2, lon2 = (f"radians({to_num(v, ctx.params)})" for v in arguments(ctx, call))
    inner = (
        f"pow(sin(({lat2} - {lat1}) / 2), 2) + "
        f"cos({lat1}) * cos({lat2}) * pow(sin(({lon2} - {lon1}) / 2), 2)"
    )
    return Value(f"(2 * 6371.0088 * asin(sqrt({inner})))", Kind.NUM)


def _to_int(bits: int) -> Callable[[Context, n.Call], Value]:
    sql_type = "INTEGER" if bits == 32 else "BIGINT"

    def compile_to_int(ctx: Context, call: n.Call) -> Value:
        (v,) = arguments(ctx, call)
        return Value(
            f"CAST(TRY_CAST(trunc({to_num(v, ctx.params)}) AS {sql_type}) AS BIGINT)", Kind.INT
        )

    return compile_to_int


# ---- §9.3 datetime --------------------------------------------------------------------------


def _millis(v: Value, ctx: Context) -> str:
    """Epoch ms of a timestamp, or of a number read as epoch ms; null outside years 1-9999."""
    if v.kind is Kind.TS:
        return v.sql
    if v.kind is Kind.INT:
        return f"CASE WHEN {v.sql} {_TIME_RANGE} THEN {v.sql} END"
    number = to_num(v, ctx.params)
    return f"CASE WHEN {number} {_TIME_RANGE} THEN CAST(floor({number}) AS BIGINT) END"


def _bin(ctx: Context, call: n.Call) -> Value:
    period = call.args[0]
    if not isinstance(period, n.Period):
        raise QueryError("bin() takes a period such as 5m or 1h.", call.span)
    ts = ctx.timestamp(call.span)
    return Value(floor_sql(ts.sql, ctx.bucket(period)), Kind.TS, nullable=ts.nullable)


def _date_round(up: bool) -> Callable[[Context, n.Call], Value]:
    def compile_date_round(ctx: Context, call: n.Call) -> Value:
        target, period = call.args
        if not isinstance(period, n.Period) or isinstance(target, n.Period | n.Star):
            name = "dateceil" if up else "datefloor"
            raise QueryError(
                f"{name}() takes a timestamp and a period, e.g. {name}(@timestamp, 1h).",
                call.span,
            )
        ts = _millis(ctx.value(target), ctx)
        bucket = ctx.bucket(period)
        return Value(ceil_sql(ts, bucket) if up else floor_sql(ts, bucket), Kind.TS)

    return compile_date_round


def _from_millis(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    return Value(_millis(v, ctx), Kind.TS)


def _to_millis(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    return Value(_millis(v, ctx), Kind.INT)


def _setting(name: str, divisor: int = 1) -> Callable[[Context, n.Call], Value]:
    def compile_setting(ctx: Context, call: n.Call) -> Value:
        value = ctx.setting(name) // divisor
        return Value(ctx.params.add(value), Kind.INT, nullable=False, const=value, is_const=True)

    return compile_setting


# ---- §9.4 general ---------------------------------------------------------------------------


def _ispresent(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    return Value(f"({v.sql} IS NOT NULL)", Kind.BOOL, nullable=False)


def _coalesce(ctx: Context, call: n.Call) -> Value:
    values = arguments(ctx, call)
    sqls, kind = unify(values)
    return Value(f"coalesce({', '.join(sqls)})", kind)


def _if(ctx: Context, call: n.Call) -> Value:
    cond, a, b = arguments(ctx, call)
    (sa, sb), kind = unify([a, b])
    return Value(f"CASE WHEN {to_bool(cond, ctx.params)} THEN {sa} ELSE {sb} END", kind)


def _case(ctx: Context, call: n.Call) -> Value:
    values = arguments(ctx, call)
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
    default = values[-1] if len(values) % 2 else None
    results = [v for _, v in pairs] + ([default] if default is not None else [])
    sqls, kind = unify(results)
    branches = " ".join(
        f"WHEN {to_bool(c, ctx.params)} THEN {s}" for (c, _), s in zip(pairs, sqls, strict=False)
    )
    tail = f" ELSE {sqls[-1]}" if default is not None else ""
    return Value(f"CASE {branches}{tail} END", kind)


def _is_numeric(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    return Value(f"coalesce({is_number_sql(v)}, false)", Kind.BOOL, nullable=False)


def _message_size(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    return Value(f"strlen({to_str(v)})", Kind.INT)


_SCALARS: dict[str, Callable[[Context, n.Call], Value]] = {
    "isempty": _isempty,
    "isblank": _isblank,
    "concat": _concat,
    "ltrim": _trimmer("ltrim"),
    "rtrim": _trimmer("rtrim"),
    "trim": _trimmer("trim"),
    "strlen": _strlen,
    "toupper": _case_map("upper"),
    "tolower": _case_map("lower"),
    "substr": _substr,
    "replace": _replace,
    "strcontains": _strcontains,
    "regexreplace": _regex_replace,
    "startswith": _affix("starts_with"),
    "endswith": _affix("ends_with"),
    "urlencode": _unary_str("url_encode({})"),
    "urldecode": _unary_str("try(url_decode({}))"),
    "base64encode": _unary_str("to_base64(encode({}))"),
    "base64decode": _unary_str("try(decode(from_base64({})))"),
    "dectohex": _dec_to_hex,
    "hextodec": _hex_to_dec,
    # Hex digits (an optional 0x) as UTF-8 text; null for odd lengths, non-hex, invalid UTF-8.
    "hextoascii": _unary_str("try(decode(unhex(regexp_replace({}, '^0[xX]', ''))))"),
    "abs": _numeric("abs({})"),
    "ceil": _numeric("ceil({})"),
    "floor": _numeric("floor({})"),
    "greatest": _extreme("greatest"),
    "least": _extreme("least"),
    "log": _numeric("ln({})"),
    "sqrt": _numeric("CASE WHEN {0} >= 0 THEN sqrt({0}) END"),
    "round": _round,
    "haversine": _haversine,
    "tonumber": _numeric("{}"),
    "todouble": _numeric("{}"),
    "toint": _to_int(32),
    "tolong": _to_int(64),
    "bin": _bin,
    "datefloor": _date_round(up=False),
    "dateceil": _date_round(up=True),
    "frommillis": _from_millis,
    "tomillis": _to_millis,
    "now": _setting("now_ms", 1000),
    "ispresent": _ispresent,
    "coalesce": _coalesce,
    "if": _if,
    "case": _case,
    "isnumeric": _is_numeric,
    "messagesize": _message_size,
    "querystarttime": _setting("start_ms"),
    "queryendtime": _setting("end_ms"),
    "querytimerange": _setting("range_ms"),
    "isvalidip": ip_check(f"({IPV4}|{IPV6})"),
    "isvalidipv4": ip_check(IPV4),
    "isvalidipv6": ip_check(IPV6),
    "isipinsubnet": in_subnet,
    "isipv4insubnet": in_subnet,
    "isipv6insubnet": in_subnet,
    "ipv4tonumber": ipv4_to_number,
}


def compile_scalar(ctx: Context, call: n.Call) -> Value:
    """SQL for a scalar function call that ``query.check`` accepted."""
    return _SCALARS[call.name.lower()](ctx, call)
