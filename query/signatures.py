"""Every function name of the language: arities, which are aggregates, which are refused.

``query.check`` validates calls against this table (names are case-insensitive). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AGGREGATES", "OUT_OF_SCOPE", "SIGNATURES", "Signature"]


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    min_args: int
    max_args: int | None
    aggregate: bool = False


def _sig(name: str, low: int, high: int | None = -1, *, aggregate: bool = False) -> Signature:
    return Signature(name, low, low if high == -1 else high, aggregate)


_SIGNATURES = [
    # §9.1 string
    _sig("isempty", 1),
    _sig("isblank", 1),
    _sig("concat", 1, None),
    _sig("ltrim", 1, 2),
    _sig("rtrim", 1, 2),
    _sig("trim", 1, 2),
    _sig("strlen", 1),
    _sig("toupper", 1),
    _sig("tolower", 1),
    _sig("substr", 2, 3),
    _sig("replace", 3),
    _sig("strcontains", 2, 3),
    _sig("regexReplace", 3),
    _sig("startsWith", 2),
    _sig("endsWith", 2),
    _sig("urlencode", 1),
    _sig("urldecode", 1),
    _sig("base64encode", 1),
    _sig("base64decode", 1),
    _sig("decToHex", 1),
    _sig("hexToDec", 1),
    _sig("hexToAscii", 1),
    # §9.2 numeric
    _sig("abs", 1),
    _sig("ceil", 1),
    _sig("floor", 1),
    _sig("greatest", 1, None),
    _sig("least", 1, None),
    _sig("log", 1),
    _sig("sqrt", 1),
    _sig("round", 1, 2),
    _sig("haversine", 4),
    _sig("toNumber", 1),
    _sig("toDouble", 1),
    _sig("toInt", 1),
    _sig("toLong", 1),
    # §9.3 datetime
    _sig("bin", 1),
    _sig("datefloor", 2),
    _sig("dateceil", 2),
    _sig("fromMillis", 1),
    _sig("toMillis", 1),
    _sig("now", 0),
    # §9.4 general
    _sig("ispresent", 1),
    _sig("coalesce", 1, None),
    _sig("if", 3),
    _sig("case", 2, 21),
    _sig("isNumeric", 1),
    _sig("messageSize", 1),
    _sig("queryStartTime", 0),
    _sig("queryEndTime", 0),
    _sig("queryTimeRange", 0),
    # §9.5 IP
    _sig("isValidIp", 1),
    _sig("isValidIpV4", 1),
    _sig("isValidIpV6", 1),
    _sig("isIpInSubnet", 2),
    _sig("isIpv4InSubnet", 2),
    _sig("isIpv6InSubnet", 2),
    _sig("ipv4ToNumber", 1),
    # §10 aggregates
    _sig("count", 0, 1, aggregate=True),
    _sig("count_distinct", 1, aggregate=True),
    _sig("sum", 1, aggregate=True),
    _sig("avg", 1, aggregate=True),
    _sig("min", 1, aggregate=True),
    _sig("max", 1, aggregate=True),
    _sig("pct", 2, aggregate=True),
    _sig("stddev", 1, aggregate=True),
    _sig("earliest", 1, aggregate=True),
    _sig("latest", 1, aggregate=True),
    _sig("sortsFirst", 1, aggregate=True),
    _sig("sortsLast", 1, aggregate=True),
]
SIGNATURES = {s.name.lower(): s for s in _SIGNATURES}
AGGREGATES = frozenset(k for k, s in SIGNATURES.items() if s.aggregate)

# Spec §1 and §9.6: refused by name, never ignored.
OUT_OF_SCOPE = {
    name.lower(): name
    for name in (
        "jsonParse",
        "jsonStringify",
        "jsonArraySize",
        "jsonArrayContains",
        "split",
        "unnest",
        "parseDate",
        "formatDate",
        "strftime",
        "isPrivateIP",
        "isPublicIP",
        "isReservedIP",
    )
}
