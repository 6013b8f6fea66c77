"""SQL fragments of single functions checked against Python's own answers, on real DuckDB."""

from __future__ import annotations

import ipaddress
import re

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from query.ip import IPV4, IPV6, ipv6_hex_sql
from query.values import Kind, Params, Value, is_number_sql, reads_as_number, to_num

_DB = duckdb.connect()


def run_sql(expression: str, values: list[str]) -> list[object]:
    cursor = _DB.cursor()
    try:
        sql = f"SELECT {expression} FROM (SELECT unnest(?::VARCHAR[]) AS a)"
        return [row[0] for row in cursor.execute(sql, [values]).fetchall()]
    finally:
        cursor.close()


def ipv6_forms(address: ipaddress.IPv6Address) -> list[str]:
    forms = [str(address), address.exploded, address.exploded.upper()]
    if address.ipv4_mapped is not None:
        forms.append(f"::ffff:{address.ipv4_mapped}")
    packed = address.packed
    if packed[:2] == b"\0\0":
        forms.append(
            "::" + ":".join(f"{packed[i] << 8 | packed[i + 1]:x}" for i in range(2, 16, 2))
        )
    forms.append(
        ":".join(f"{packed[i] << 8 | packed[i + 1]:x}" for i in range(0, 12, 2))
        + f":{ipaddress.IPv4Address(packed[12:])}"
    )
    return [f for f in forms if _valid_v6(f)]


def _valid_v6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@settings(max_examples=20, deadline=None)
@given(st.lists(st.ip_addresses(v=6), min_size=1, max_size=20))
def test_ipv6_hex_normalisation(addresses: list[ipaddress.IPv6Address]) -> None:
    forms = [(form, int(a)) for a in addresses for form in ipv6_forms(a)]
    got = run_sql(ipv6_hex_sql("a"), [f for f, _ in forms])
    assert got == [f"{number:032x}" for _, number in forms]


ADDRESS_TEXTS = st.one_of(
    st.ip_addresses().map(str),
    st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
    st.sampled_from(["01.2.3.4", "256.1.1.1", "1.2.3", "::", "1::2::3", ":::", "1.2.3.4.5"]),
)


@settings(max_examples=20, deadline=None)
@given(st.lists(ADDRESS_TEXTS, min_size=1, max_size=30))
def test_ip_validity_patterns(texts: list[str]) -> None:
    v4 = run_sql(f"regexp_full_match(a, '{IPV4}')", texts)
    v6 = run_sql(f"regexp_full_match(a, '{IPV6}')", texts)
    for text, got4, got6 in zip(texts, v4, v6, strict=True):
        expected4 = re.fullmatch(r"(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}", text) is not None
        expected4 = expected4 and all(int(p) <= 255 for p in text.split("."))
        assert got4 == expected4, text
        assert got6 == _valid_v6(text), text


NUMBER_TEXTS = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.integers().map(str),
    st.text(alphabet="0123456789+-.eE _xnaifINF\t", max_size=8),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(NUMBER_TEXTS, min_size=1, max_size=40))
def test_number_reading_matches_the_spec_grammar(texts: list[str]) -> None:
    # A costly value (a parse capture) is read once, with a regex: both forms must agree.
    for value in (Value("a", Kind.STR), Value("a", Kind.STR, costly=True)):
        flags = run_sql(is_number_sql(value), texts)
        numbers = run_sql(to_num(value, Params()), texts)
        for text, flag, number in zip(texts, flags, numbers, strict=True):
            assert flag == reads_as_number(text), text
            assert (number is not None) == reads_as_number(text), text
            if number is not None:
                assert number == float(text), text


def test_plus_minus_is_not_a_number() -> None:
    for value in (Value("a", Kind.STR), Value("a", Kind.STR, costly=True)):
        assert run_sql(to_num(value, Params()), ["+-0", "+-1.5", "-1"]) == [None, None, -1.0]
