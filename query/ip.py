"""IP address functions (spec §9.5): RE2 patterns for addresses, IPv4 subnets. No I/O here."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from query import nodes as n
from query.context import Context, arguments
from query.errors import QueryError
from query.values import Kind, Value, sql_string, to_str

__all__ = ["IPV4", "IPV6", "ip_check", "ipv4_to_number", "in_subnet"]

_IPV4_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_IPV4_OCTET}(\.{_IPV4_OCTET}){{3}}"
_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = rf"({_H16}:{_H16}|{IPV4})"
# RFC 3986's IPv6address, which covers RFC 4291's text forms with an embedded IPv4 tail.
IPV6 = (
    "("
    + "|".join(
        [
            rf"({_H16}:){{6}}{_LS32}",
            rf"::({_H16}:){{5}}{_LS32}",
            rf"({_H16})?::({_H16}:){{4}}{_LS32}",
            rf"(({_H16}:){{0,1}}{_H16})?::({_H16}:){{3}}{_LS32}",
            rf"(({_H16}:){{0,2}}{_H16})?::({_H16}:){{2}}{_LS32}",
            rf"(({_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            rf"(({_H16}:){{0,4}}{_H16})?::{_LS32}",
            rf"(({_H16}:){{0,5}}{_H16})?::{_H16}",
            rf"(({_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)


def ip_check(pattern: str) -> Callable[[Context, n.Call], Value]:
    def compile_ip_check(ctx: Context, call: n.Call) -> Value:
        (v,) = arguments(ctx, call)
        return Value(f"regexp_full_match({to_str(v)}, {sql_string(pattern)})", Kind.BOOL)

    return compile_ip_check


def ipv4_number_sql(text: str) -> str:
    parts = [f"CAST(split_part({text}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    return f"({parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]})"


def ipv4_to_number(ctx: Context, call: n.Call) -> Value:
    (v,) = arguments(ctx, call)
    text = to_str(v)
    valid = f"regexp_full_match({text}, {sql_string(IPV4)})"
    return Value(f"CASE WHEN {valid} THEN {ipv4_number_sql(text)} END", Kind.INT)


def ipv6_hex_sql(text: str) -> str:
    """A valid IPv6 address as its 32 lower-case hex digits, so that ranges compare as text.

    An embedded IPv4 tail becomes two hextets, then ``::`` is filled with zero hextets.
    """
    quad = f"regexp_extract({text}, '([0-9.]+)$', 1)"
    octets = [f"CAST(split_part({quad}, '.', {i}) AS INTEGER)" for i in range(1, 5)]
    hextets = f"printf('%x:%x', {octets[0]} * 256 + {octets[1]}, {octets[2]} * 256 + {octets[3]})"
    plain = (
        f"CASE WHEN contains({text}, '.') "
        f"THEN regexp_replace({text}, '[0-9.]+$', {hextets}) ELSE {text} END"
    )
    head = f"CASE WHEN contains({plain}, '::') THEN split_part({plain}, '::', 1) ELSE {plain} END"
    tail = f"CASE WHEN contains({plain}, '::') THEN split_part({plain}, '::', 2) ELSE '' END"
    head_list = f"CASE WHEN {head} = '' THEN []::VARCHAR[] ELSE string_split({head}, ':') END"
    tail_list = f"CASE WHEN {tail} = '' THEN []::VARCHAR[] ELSE string_split({tail}, ':') END"
    zeros = f"list_resize(['0'], 8 - len({head_list}) - len({tail_list}), '0')"
    full = f"list_concat({head_list}, {zeros}, {tail_list})"
    return f"array_to_string(list_transform({full}, lambda h: lpad(lower(h), 4, '0')), '')"


def in_subnet(ctx: Context, call: n.Call) -> Value:
    """``isIpInSubnet`` and the family-specific forms; the CIDR must be a literal."""
    address, cidr_arg = call.args
    family = {"isipv4insubnet": 4, "isipv6insubnet": 6}.get(call.name.lower())
    network = _network(cidr_arg)
    if network is None or (family is not None and network.version != family):
        kind = {4: "an IPv4", 6: "an IPv6"}.get(family or 0, "a")
        raise QueryError(
            f"{call.name}() at line {call.span.line}, column {call.span.column} needs {kind} "
            'CIDR string literal such as "10.0.0.0/8" or "2001:db8::/32" as its second argument.',
            cidr_arg.span,
        )
    text = to_str(ctx.value(address))  # type: ignore[arg-type]
    if network.version == 4:
        valid = f"regexp_full_match({text}, {sql_string(IPV4)})"
        low = ctx.params.add(int(network.network_address))
        high = ctx.params.add(int(network.broadcast_address))
        inside = f"{ipv4_number_sql(text)} BETWEEN {low} AND {high}"
    else:
        valid = f"regexp_full_match({text}, {sql_string(IPV6)})"
        low = ctx.params.add(f"{int(network.network_address):032x}")
        high = ctx.params.add(f"{int(network.broadcast_address):032x}")
        inside = f"{ipv6_hex_sql(text)} BETWEEN {low} AND {high}"
    # A non-address makes the predicate false (spec §9.5); a missing one, null.
    return Value(
        f"CASE WHEN {valid} THEN {inside} WHEN {text} IS NOT NULL THEN false END", Kind.BOOL
    )


def _network(arg: n.Arg) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(arg, n.Str):
        return None
    try:
        return ipaddress.ip_network(arg.value, strict=False)
    except ValueError:
        return None
