"""Regexes and globs for RE2 (DuckDB): checks, named groups, and the glob translation.

Spec §8.5: lookaround and backreferences are refused here, with our message rather than RE2's.
Named groups ``(?<n>…)`` / ``(?P<n>…)`` become plain groups, and the compiler maps them to fields
by position, so a field name need not be a valid RE2 group name. Whether the rest compiles is
checked by RE2 itself before the query runs (``query.run``). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from query.errors import QueryError
from query.nodes import Span

__all__ = ["GlobRegexes", "Group", "RegexInfo", "analyze_regex", "glob_regexes", "glob_to_regex"]

_METACHARACTERS = frozenset("\\.+*?()|[]{}^$")


@dataclass(frozen=True, slots=True)
class Group:
    """A capture group: its field name (None if unnamed), and whether it may sit out a match."""

    name: str | None
    optional: bool


@dataclass(frozen=True, slots=True)
class RegexInfo:
    pattern: str
    groups: tuple[Group, ...]
    # The rewritten pattern in pieces, and which pieces open a capture group, so that
    # ``isolate`` can keep one capture and turn the others into non-capturing groups.
    pieces: tuple[str, ...] = ()
    opens: tuple[int, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups if g.name is not None)

    def isolate(self, index: int) -> str:
        """The pattern with only capture ``index`` (0-based) left capturing, as group 1.

        Matching is unchanged (RE2 is leftmost-first whatever captures); fewer captures let
        RE2 pick a faster engine.
        """
        pieces = list(self.pieces)
        for number, position in enumerate(self.opens):
            if number != index:
                pieces[position] = "(?:"
        return "".join(pieces)


@dataclass(slots=True)
class _Frame:
    captures: list[int]
    alternation: bool = False
    capture: int | None = None


def analyze_regex(pattern: str, span: Span) -> RegexInfo:
    """Check a regex literal and rewrite its named groups; raise ``QueryError`` if refused."""
    out: list[str] = []
    names: list[str | None] = []
    opens: list[int] = []
    optional: set[int] = set()
    stack = [_Frame(captures=[])]
    i = 0
    in_class = False
    class_start = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            _check_escape(pattern, i, in_class, span)
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]" and i > class_start:
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            class_start = i + 1
            if pattern.startswith("^", class_start):
                class_start += 1
            out.append(char)
            i += 1
            continue
        if char == "(":
            before = len(names)
            i = _open_group(pattern, i, span, out, names, stack)
            if len(names) > before:
                opens.append(len(out) - 1)
            continue
        if char == ")" and len(stack) > 1:
            frame = stack.pop()
            if frame.alternation or _zero_minimum(pattern, i + 1):
                optional.update(frame.captures)
            stack[-1].captures.extend(frame.captures)
        elif char == "|":
            stack[-1].alternation = True
        out.append(char)
        i += 1
    if stack[0].alternation:
        optional.update(stack[0].captures)
    groups = tuple(Group(name, index in optional) for index, name in enumerate(names))
    seen: set[str] = set()
    for group in groups:
        if group.name is not None:
            if group.name in seen:
                raise QueryError(
                    f'The regex names the group "{group.name}" twice; use different names.', span
                )
            seen.add(group.name)
    return RegexInfo("".join(out), groups, tuple(out), tuple(opens))


def _check_escape(pattern: str, i: int, in_class: bool, span: Span) -> None:
    following = pattern[i + 1 : i + 2]
    if not in_class and (following in tuple("123456789") or following in ("k", "g")):
        raise QueryError(
            f"The regex uses a backreference (\\{following}), which is not supported: "
            "regexes follow RE2, which has no backreferences.",
            span,
        )


def _open_group(
    pattern: str,
    i: int,
    span: Span,
    out: list[str],
    names: list[str | None],
    stack: list[_Frame],
) -> int:
    """Handle a ``(`` at ``i``; return the index after the group's opening."""
    if not pattern.startswith("(?", i):
        names.append(None)
        stack.append(_Frame(captures=[len(names) - 1], capture=len(names) - 1))
        out.append("(")
        return i + 1
    rest = pattern[i + 2 :]
    if rest.startswith(("=", "!", "<=", "<!")):
        kind = "lookahead" if rest[0] in "=!" else "lookbehind"
        raise QueryError(
            f"The regex uses a {kind} ({pattern[i : i + 4]}…), which is not supported: "
            "regexes follow RE2, which has no lookaround.",
            span,
        )
    if rest.startswith(("P=", "P>")):
        raise QueryError(f"The regex uses {pattern[i : i + 4]}…, which RE2 does not support.", span)
    if rest.startswith(("<", "P<")):
        start = i + (3 if rest.startswith("<") else 4)
        end = pattern.find(">", start)
        if end < 0 or end == start:
            raise QueryError("The regex has a named group without a closing >.", span)
        names.append(pattern[start:end])
        stack.append(_Frame(captures=[len(names) - 1], capture=len(names) - 1))
        out.append("(")
        return end + 1
    stack.append(_Frame(captures=[]))
    out.append("(?")
    return i + 2


def _zero_minimum(pattern: str, i: int) -> bool:
    """Whether the quantifier at ``i`` (if any) allows zero repetitions."""
    following = pattern[i : i + 1]
    if following in ("?", "*"):
        return True
    return pattern.startswith(("{0", "{,"), i)


def glob_to_regex(glob: str) -> tuple[str, int]:
    """The regex of a glob pattern (spec §7.7) and its number of captures.

    Literal text is escaped, each inner ``*`` captures lazily, a trailing ``*`` greedily, and
    ``(?s)`` lets captures cross newlines. ``\\*`` is a literal asterisk.
    """
    pieces: list[str] = []
    captures = 0
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "\\" and glob[i + 1 : i + 2] == "*":
            pieces.append("\\*")
            i += 2
            continue
        if char == "*":
            captures += 1
            pieces.append("(.*)" if i == len(glob) - 1 else "(.*?)")
        elif char in _METACHARACTERS:
            pieces.append("\\" + char)
        else:
            pieces.append(char)
        i += 1
    return "(?s)" + "".join(pieces), captures


@dataclass(frozen=True, slots=True)
class GlobRegexes:
    """Regexes for one glob: the spec's lazy regex, and per capture a fast and a lazy one.

    ``fields[k]`` is ``(fast, lazy)`` for capture ``k``, each with that capture as its only
    group. ``fast`` is anchored and deterministic (``[^c]*`` up to the next literal's first
    character), which RE2 runs with its one-pass engine; when it matches, its capture is the
    lazy regex's (see ``glob_regexes``). When it does not, ``lazy`` decides.
    """

    pattern: str
    fields: tuple[tuple[str, str], ...]


def glob_regexes(glob: str) -> GlobRegexes:
    """The regexes of a glob pattern (spec §7.7).

    Why the fast regex agrees with the lazy one whenever it matches: the lazy regex starts at
    the first place where the first literal occurs and the rest matches; the fast one starts
    at the first occurrence of that literal's first character (``^[^c0]*``), so if it matches
    there, that is the lazy regex's start too. Each inner ``*`` of the lazy regex takes the
    shortest text after which the next literal occurs and the rest matches; the fast one takes
    the text up to the first occurrence of the literal's first character, which no shorter
    capture can skip, so when the rest matches there, both take the same text. A ``*`` right
    before another ``*`` captures nothing in either; a trailing ``*`` takes the rest in both.
    """
    literals = _glob_literals(glob)
    count = len(literals) - 1
    pattern = _lazy_glob(literals, None)
    fields = tuple((_fast_glob(literals, k), _lazy_glob(literals, k)) for k in range(count))
    return GlobRegexes(pattern, fields)


def _glob_literals(glob: str) -> list[str]:
    """The literal text around the ``*`` of a glob: one more piece than there are stars."""
    pieces = [""]
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "\\" and glob[i + 1 : i + 2] == "*":
            pieces[-1] += "*"
            i += 2
            continue
        if char == "*":
            pieces.append("")
        else:
            pieces[-1] += char
        i += 1
    return pieces


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _METACHARACTERS else c for c in text)


def _not(char: str) -> str:
    """A class of every character but ``char`` (newlines included, as under ``(?s)``)."""
    return f"[^\\x{{{ord(char):x}}}]*"


def _lazy_glob(literals: list[str], only: int | None) -> str:
    out = ["(?s)", _escape(literals[0])]
    last = len(literals) - 1
    for k, literal in enumerate(literals[1:]):
        body = ".*" if k == last - 1 and literal == "" else ".*?"
        out.append(f"({body})" if only is None or k == only else f"(?:{body})")
        out.append(_escape(literal))
    return "".join(out)


def _fast_glob(literals: list[str], only: int) -> str:
    first = literals[0]
    out = ["(?s)^", _not(first[0]) + _escape(first) if first else ""]
    last = len(literals) - 1
    for k, literal in enumerate(literals[1:]):
        if literal:
            body = _not(literal[0])
        else:
            # Before another * this capture is always empty; a trailing * takes the rest.
            body = ".*" if k == last - 1 else ""
        if k == only:
            out.append(f"({body})")
        elif body != ".*":  # a trailing .* nobody captures cannot change whether it matches
            out.append(body)
        out.append(_escape(literal))
    return "".join(out)
