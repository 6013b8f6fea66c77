"""Syntax errors in words: where, what was found, what would have fitted (spec §14.1).

Turns lark's ``UnexpectedInput`` into ``QuerySyntaxError`` with line, column, character offsets
and a message in the project's style ("Unknown command "limt" at line 1, column 20. Did you
mean "limit"?"). No I/O here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from query import nodes as n
from query.errors import QuerySyntaxError

__all__ = ["COMMANDS", "OUT_OF_SCOPE_COMMANDS", "point", "syntax_error", "token_span"]

COMMANDS = (
    "fields",
    "display",
    "filter",
    "stats",
    "sort",
    "limit",
    "parse",
    "dedup",
    "SOURCE",
    "filterIndex",
    "pattern",
    "diff",
    "anomaly",
    "unmask",
)
# Recent AWS commands that v1 refuses by name (spec §1).
OUT_OF_SCOPE_COMMANDS = ("unnest", "lookup", "join", "addtotals", "logcompare", "json")


def token_span(token: Token) -> n.Span:
    return n.Span(token.line or 1, token.column or 1, token.start_pos or 0, token.end_pos or 0)


_TERMINALS = {
    "IDENT": "a field name",
    "BACKTICK": "a `quoted` field name",
    "STRING": "a string",
    "REGEX": "a regex /…/",
    "NUMBER": "a number",
    "PERIOD": "a period such as 5m",
    "TRUE": "true",
    "FALSE": "false",
    "NOT": '"not"',
    "BANG": '"!"',
    "ASC": '"asc"',
    "DESC": '"desc"',
    "_PIPE": '"|"',
    "VBAR": '"|"',
    "LPAR": '"("',
    "RPAR": '")"',
    "LSQB": '"["',
    "RSQB": '"]"',
    "COMMA": '","',
    "COLON": '":"',
    "$END": "the end of the query",
}
_OPERATORS = {
    "EQ": "=",
    "NE": "!=",
    "LT": "<",
    "LE": "<=",
    "GT": ">",
    "GE": ">=",
    "MATCH": "=~",
    "PLUS": "+",
    "MINUS": "-",
    "STAR": "*",
    "SLASH": "/",
    "PERCENT": "%",
    "CARET": "^",
}
_EXPRESSION_START = {"IDENT", "NUMBER", "STRING"}


def _describe(terminal: str) -> str:
    if terminal in _TERMINALS:
        return _TERMINALS[terminal]
    if terminal in _OPERATORS:
        return f'"{_OPERATORS[terminal]}"'
    if terminal.startswith("_"):
        return f'"{terminal[1:].lower()}"'
    return terminal.lower()


def _expected(terminals: set[str]) -> list[str]:
    """What the parser would have accepted, in words, with expression starters folded."""
    names = set(terminals)
    words: list[str] = []
    if _EXPRESSION_START <= names:
        names -= {
            "IDENT",
            "BACKTICK",
            "NUMBER",
            "STRING",
            "TRUE",
            "FALSE",
            "NOT",
            "BANG",
            "MINUS",
            "LPAR",
            "PERIOD",
            "STAR",
        }
        words.append("an expression")
    if names and names <= {f"_{c.upper()}" for c in COMMANDS}:
        return ["a command (" + ", ".join(COMMANDS[:8]) + ")"]
    if names & set(_OPERATORS) and len(names & set(_OPERATORS)) > 3:
        names -= set(_OPERATORS)
        words.append("an operator")
    if {"IDENT", "BACKTICK"} <= names:
        names.discard("BACKTICK")
    words += sorted(_describe(t) for t in names)
    return words


def point(text: str, offset: int, end: int | None = None) -> n.Span:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return n.Span(line, column, offset, offset if end is None else end)


def _at(span: n.Span) -> str:
    return f"at line {span.line}, column {span.column}"


def syntax_error(exc: UnexpectedInput, text: str) -> QuerySyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(exc, text)
    assert isinstance(exc, UnexpectedToken)
    if exc.token.type == "SLASH" and "REGEX" in exc.expected:
        span = token_span(exc.token)
        return QuerySyntaxError(
            f"Unterminated regex starting {_at(span)}: close it with /.",
            n.Span(span.line, span.column, span.start, len(text)),
            expected=["/"],
        )
    return _unexpected_token(exc, text)


def _unexpected_character(exc: UnexpectedCharacters, text: str) -> QuerySyntaxError:
    offset = exc.pos_in_stream or 0
    char = text[offset]
    span = point(text, offset, offset + 1)
    closers = {'"': "string", "'": "string", "`": "quoted field name", "/": "regex"}
    if text.startswith("``", offset):
        return QuerySyntaxError(
            f"A quoted field name cannot be empty ({_at(span)}): write the name between the "
            "backticks, e.g. `user name`.",
            n.Span(span.line, span.column, offset, offset + 2),
            expected=["a `quoted` field name"],
        )
    if char in closers and (char != "/" or "REGEX" in exc.allowed):
        kind = closers[char]
        return QuerySyntaxError(
            f"Unterminated {kind} starting {_at(span)}: close it with {char}.",
            n.Span(span.line, span.column, offset, len(text)),
            expected=[char],
        )
    expected = _expected(set(exc.allowed or ()))
    shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
    return QuerySyntaxError(
        f"Unexpected character {shown} {_at(span)}: expected {_or(expected)}.",
        span,
        expected=expected,
    )


def _unexpected_token(exc: UnexpectedToken, text: str) -> QuerySyntaxError:
    token = exc.token
    expected_terminals = _acceptable(exc)
    expected = _expected(expected_terminals)
    if token.type == "$END":
        span = point(text, len(text.rstrip()), len(text))
        if _command_expected(expected_terminals):
            message = f"The query must not end with | ({_at(span)}): add a command after it."
        else:
            message = f"The query ends too early {_at(span)}: expected {_or(expected)}."
        return QuerySyntaxError(message, span, expected=expected)
    span = token_span(token)
    value = str(token)
    if _command_expected(expected_terminals):
        return _bad_command(token, span, expected)
    if token.type == "_BY" and "IDENT" in expected_terminals:
        return QuerySyntaxError(
            f'Expected an aggregate before "by" {_at(span)}: stats needs at least one, '
            "e.g. stats count(*) by x.",
            span,
            expected=expected,
        )
    if (
        token.type == "IDENT"
        and value.lower() in OUT_OF_SCOPE_COMMANDS
        and "_PIPE" in expected_terminals
    ):
        return QuerySyntaxError(
            f'The command "{value}" is not supported by watchkeep yet ({_at(span)}).',
            span,
            expected=expected,
        )
    return QuerySyntaxError(
        f"Unexpected {_token_text(token)} {_at(span)}: expected {_or(expected)}.",
        span,
        expected=expected,
    )


def _acceptable(exc: UnexpectedToken) -> set[str]:
    """The terminals that could really come next: LALR's expected set merges states."""
    parser = exc.interactive_parser
    if parser is not None:
        accepts: Callable[[], set[str]] = parser.accepts  # untyped in lark
        try:
            accepted = set(accepts())
        except UnexpectedInput:  # pragma: no cover - accepts() only simulates
            accepted = set()
        if accepted:
            return accepted
    return set(exc.expected)


def _command_expected(terminals: set[str]) -> bool:
    return "_FIELDS" in terminals


def _bad_command(token: Token, span: n.Span, expected: list[str]) -> QuerySyntaxError:
    value = str(token)
    if token.type in ("_PIPE", "VBAR"):
        where = "start with |" if span.start == 0 else "hold two | with no command between them"
        return QuerySyntaxError(f"A query must not {where} ({_at(span)}).", span, expected=expected)
    if value.lower() in OUT_OF_SCOPE_COMMANDS:
        return QuerySyntaxError(
            f'The command "{value}" is not supported by watchkeep yet ({_at(span)}).',
            span,
            expected=expected,
        )
    if token.type == "IDENT":
        message = f'Unknown command "{value}" {_at(span)}.'
        lowered = {c.lower(): c for c in COMMANDS}
        close = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
        if close:
            message += f' Did you mean "{lowered[close[0]]}"?'
        else:
            message += " A command is one of " + ", ".join(COMMANDS[:8]) + "."
        return QuerySyntaxError(message, span, expected=expected)
    return QuerySyntaxError(
        f"Expected a command {_at(span)}, found {_token_text(token)}: "
        "every command starts with its name, e.g. fields, filter, stats.",
        span,
        expected=expected,
    )


def _token_text(token: Token) -> str:
    value = str(token)
    if len(value) > 40:
        value = value[:37] + "..."
    return f'"{value}"'


def _or(words: list[str]) -> str:
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]
