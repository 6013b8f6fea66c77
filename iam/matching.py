"""What a policy statement is matched against: wildcard patterns, the request context, conditions.

Wildcards follow audit spec §7.3: ``*`` matches any run of characters (empty, ``:`` and ``/``
included), ``?`` exactly one, and every other character, ``[`` and ``]`` included, is literal.
``fnmatch`` is never used because it reads ``[…]`` as a character class. The whole string must
match. Actions compare case-insensitively (ASCII case only), resources and condition strings
case-sensitively.

Patterns are matched without backtracking: a pattern is split on ``*`` into fixed-length chunks,
and each middle chunk is found at its leftmost position. A regex such as ``.*a.*a.*a…b`` could
take exponential time on a long value, and decide() runs on every request, so a policy must not
be able to slow it down.

Conditions (v1) are the operators and keys of ``CONDITION_OPERATORS`` and ``CONDITION_KEYS``;
``compile_condition`` turns one validated operator/key/values triple into a test of a
``RequestContext``. Where a condition sits in a document is ``iam.policy``'s business.
Pure code: no I/O, no clock.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ConditionTest = Callable[["RequestContext"], bool]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The values of the condition keys (``wk:SourceIp``...) for one request.

    ``username`` is ``None`` for the root principal; conditions then see an empty string.
    """

    source_ip: str
    current_time: datetime
    secure_transport: bool
    username: str | None = None

    def __post_init__(self) -> None:
        # Date conditions compare aware datetimes; a naive one would raise TypeError mid-request.
        if self.current_time.tzinfo is None:
            raise ValueError("RequestContext.current_time must be timezone-aware (UTC)")


def fold_case(value: str) -> str:
    """Lower-case ASCII letters only, the way action names compare (``str.lower`` folds more)."""
    return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


# A chunk is the text between two '*': a plain string, or a regex when it holds a '?'.
_Chunk = str | re.Pattern[str]


class _Wildcard:
    """One compiled pattern that contains ``*`` or ``?``, matched against whole values.

    For a case-insensitive pattern, both the pattern and the values are folded by the caller.
    """

    __slots__ = ("_head", "_head_len", "_middle", "_min_len", "_star", "_tail", "_tail_len")

    def __init__(self, pattern: str) -> None:
        chunks = pattern.split("*")
        self._star = len(chunks) > 1
        head, *middle, tail = chunks if self._star else (pattern, "")
        self._head, self._head_len = _chunk(head), len(head)
        self._tail, self._tail_len = _chunk(tail), len(tail)
        self._middle = tuple((_chunk(c), len(c)) for c in middle if c)
        # Every chunk matches exactly as many characters as it has ('?' is one character).
        self._min_len = sum(len(c) for c in chunks)

    def matches(self, value: str) -> bool:
        size = len(value)
        if size < self._min_len or (size != self._min_len and not self._star):
            return False
        if self._head_len and not _match_at(self._head, value, 0):
            return False
        end = size - self._tail_len
        if self._tail_len and not _match_at(self._tail, value, end):
            return False
        start = self._head_len
        for chunk, length in self._middle:
            # Chunks have a fixed length, so the leftmost match never rules out a later chunk.
            if isinstance(chunk, str):
                found = value.find(chunk, start, end)
            else:
                hit = chunk.search(value, start, end)
                found = -1 if hit is None else hit.start()
            if found < 0:
                return False
            start = found + length
        return True


def _chunk(text: str) -> _Chunk:
    if "?" not in text:
        return text
    return re.compile("".join("." if char == "?" else re.escape(char) for char in text), re.DOTALL)


def _match_at(chunk: _Chunk, value: str, position: int) -> bool:
    if isinstance(chunk, str):
        return value.startswith(chunk, position)
    return chunk.match(value, position) is not None


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> _Wildcard:
    return _Wildcard(pattern)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Return whether ``value`` matches ``pattern`` as a whole (``*`` and ``?`` are special)."""
    if ignore_case:
        pattern, value = fold_case(pattern), fold_case(value)
    if not has_wildcard(pattern):
        return pattern == value
    return _compile(pattern).matches(value)


class PatternSet:
    """Several patterns of one statement element (``Action``, ``Resource``...), compiled once.

    ``matches`` is true when any pattern matches: one set look-up for the literal patterns, then
    the wildcard ones in order.
    """

    __slots__ = ("_any", "_exact", "_ignore_case", "_wildcards")

    def __init__(self, patterns: Iterable[str], *, ignore_case: bool) -> None:
        patterns = tuple(fold_case(p) if ignore_case else p for p in patterns)
        self._ignore_case = ignore_case
        self._any = any(p and not p.strip("*") for p in patterns)
        self._exact = frozenset(p for p in patterns if not has_wildcard(p))
        self._wildcards = tuple(_compile(p) for p in patterns if has_wildcard(p))

    def matches(self, value: str) -> bool:
        if self._any:
            return True
        if self._ignore_case:
            value = fold_case(value)
        if value in self._exact:
            return True
        for wildcard in self._wildcards:
            if wildcard.matches(value):
                return True
        return False


# Conditions. Operator → the kind of key it applies to; every v1 key has exactly one kind.
CONDITION_OPERATORS: Final = {
    "StringEquals": "string",
    "StringNotEquals": "string",
    "StringLike": "string",
    "StringNotLike": "string",
    "IpAddress": "ip",
    "NotIpAddress": "ip",
    "DateGreaterThan": "date",
    "DateLessThan": "date",
    "Bool": "bool",
}
# Condition keys compare case-insensitively, as in AWS: lower-cased name → (canonical name, kind).
CONDITION_KEYS: Final = {
    "wk:sourceip": ("wk:SourceIp", "ip"),
    "wk:currenttime": ("wk:CurrentTime", "date"),
    "wk:securetransport": ("wk:SecureTransport", "bool"),
    "wk:username": ("wk:username", "string"),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator: {key: values}`` test; ``values`` are as written, ``test`` is compiled."""

    operator: str
    key: str
    values: tuple[str, ...]
    test: ConditionTest = field(repr=False, compare=False)


def compile_condition(operator: str, key: str, values: Sequence[object]) -> Condition:
    """Compile one test of a ``Condition`` block, for a known operator and a key of its kind.

    Several values are ORed. A ``Not*`` operator is true when the request value matches none of
    them (AWS semantics). Raises ``ValueError`` saying which value is wrong and why.
    """
    if not values:
        raise ValueError("needs at least one value")
    shown = tuple(_text(value) for value in values)
    if operator.startswith("String"):
        strings = [_string_value(value) for value in values]
        test = _string_test(strings, like="Like" in operator, negate="Not" in operator)
    elif operator.endswith("IpAddress"):
        networks = [_network_value(value) for value in values]
        test = _ip_test(networks, negate=operator == "NotIpAddress")
    elif operator.startswith("Date"):
        dates = [_date_value(value) for value in values]
        test = _date_test(dates, greater=operator == "DateGreaterThan")
    else:
        flags = frozenset(_bool_value(value) for value in values)
        test = lambda ctx: ctx.secure_transport in flags  # noqa: E731
    return Condition(operator, key, shown, test)


def _string_test(values: list[str], *, like: bool, negate: bool) -> ConditionTest:
    # wk:username is the only string key; root has no user name and is seen as "".
    if like:
        patterns = PatternSet(values, ignore_case=False)
        return lambda ctx: patterns.matches(ctx.username or "") != negate
    accepted = frozenset(values)
    return lambda ctx: ((ctx.username or "") in accepted) != negate


def _ip_test(networks: list[IpNetwork], *, negate: bool) -> ConditionTest:
    ranges = tuple(networks)

    def test(ctx: RequestContext) -> bool:
        # An address that does not parse is in no range: NotIpAddress holds, IpAddress fails.
        addresses = parse_address(ctx.source_ip)
        inside = any(address in net for address in addresses for net in ranges)
        return inside != negate

    return test


def _date_test(thresholds: list[datetime], *, greater: bool) -> ConditionTest:
    # ORed thresholds reduce to the loosest one.
    if greater:
        earliest = min(thresholds)
        return lambda ctx: ctx.current_time > earliest
    latest = max(thresholds)
    return lambda ctx: ctx.current_time < latest


def _string_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{_show(value)} must be a string")
    if "${" in value:
        raise ValueError(
            f"{_show(value)} uses a policy variable; variables are not supported, so it would "
            "be compared literally"
        )
    return value


def _network_value(value: object) -> IpNetwork:
    if not isinstance(value, str):
        raise ValueError(f'{_show(value)} must be a string such as "10.0.0.0/8"')
    try:
        return ipaddress.ip_network(value)
    except ValueError:
        pass
    try:
        meant = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f'{_show(value)} is not an IPv4 or IPv6 address or CIDR block, e.g. "10.0.0.0/8" '
            'or "2001:db8::/32"'
        ) from None
    raise ValueError(f'{_show(value)} has host bits set; did you mean "{meant}"?')


def _date_value(value: object) -> datetime:
    parsed: datetime | None = None
    try:
        if isinstance(value, str) and value.isdigit():
            parsed = datetime.fromtimestamp(int(value), UTC)
        elif isinstance(value, int) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value)
    except (OverflowError, OSError, ValueError):
        parsed = None
    if parsed is None:
        raise ValueError(
            f'{_show(value)} is not a date; use ISO 8601 such as "2026-01-05T12:00:00Z" or '
            "epoch seconds"
        )
    # A date-time without an offset is UTC, as in AWS.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _bool_value(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f'{_show(value)} must be true or false (or "true"/"false")')


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=1024)
def parse_address(text: str) -> tuple[IpAddress, ...]:
    """Return the forms of the address ``text``: none if it is not one, and for an IPv4-mapped
    IPv6 address (``::ffff:10.0.0.1``, what a dual-stack socket reports) its IPv4 form as well.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return (address, address.ipv4_mapped)
    return (address,)
