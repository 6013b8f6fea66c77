"""A composed YAML file (``_Source``): its data and the mark of every node by path, so that
pydantic's error locations and our own checks are reported at file:line:column.

Limits, so that no rule or test file can make a load run away (each refused at file:line):
a file holds at most ``MAX_RULE_FILE_BYTES`` of UTF-8 (16 MiB, room for some 60,000 alarms;
``read_rule_text``); its YAML nests at most ``MAX_DEPTH`` collections deep; aliases add at most
``MAX_ALIAS_NODES`` nodes to the tree they expand to (a "billion laughs" file of nine levels of
nine aliases would add 400 million), and an alias may not refer to a collection that holds it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from alarms.rule_models import (
    Actions,
    Adjustment,
    CompositeAlarm,
    Inhibit,
    Match,
    MetricAlarm,
    MetricSpec,
    QueryEntry,
    Retry,
    RuleFile,
    RuleIssue,
    RulesError,
    ScalingTarget,
    Schedule,
    Secret,
    Silence,
    Step,
    Suppression,
    ThresholdBand,
    WebhookTarget,
)

Path_ = tuple[str | int, ...]
# libyaml's loader when PyYAML was built with it: 10,000 alarms load in seconds, not half a
# minute; its nodes carry the same marks, so errors are placed the same.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_RULE_FILE_BYTES = 16 << 20
MAX_DEPTH = 64
# An anchor shared by every alarm (actions: *defaults) adds ~10 nodes each; a bomb, millions.
MAX_ALIAS_NODES = 1_000_000


def read_rule_text(path: Path) -> str:
    """The text of a rule (or rule test) file; ``RulesError`` when it cannot be read, is
    larger than ``MAX_RULE_FILE_BYTES`` or is not UTF-8."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RULE_FILE_BYTES + 1)
    except OSError as exc:
        raise _error(name, 1, 1, _os_reason(exc)) from None
    if len(data) > MAX_RULE_FILE_BYTES:
        raise _error(
            name, 1, 1, f"larger than {MAX_RULE_FILE_BYTES:,} bytes (16 MiB), the limit of a file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[start : exc.start].decode("utf-8")) + 1
        raise _error(name, line, column, f"file {name} is not UTF-8 (byte {exc.start})") from None


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return f"cannot read: {exc.strerror or exc}"


def _error(name: str, line: int, column: int, message: str) -> RulesError:
    return RulesError([RuleIssue(name, line, column, "", message)])


@dataclass
class _Source:
    """A composed YAML file: its data and the mark of every node by path."""

    name: str
    data: Any
    values: dict[Path_, yaml.Mark]
    keys: dict[Path_, yaml.Mark]
    styles: dict[Path_, str | None]

    @classmethod
    def compose(cls, name: str, text: str, issues: list[RuleIssue]) -> _Source | None:
        loader = _LOADER(text)
        try:
            node = loader.get_single_node()
            if node is not None and not _check_graph(name, node, issues):
                return None
            data = loader.construct_document(node) if node is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            issues.append(RuleIssue(name, line, column, "", f"invalid YAML: {exc.problem}"))
            return None
        except yaml.YAMLError as exc:
            issues.append(RuleIssue(name, 1, 1, "", f"invalid YAML: {exc}"))
            return None
        finally:
            loader.dispose()
        source = cls(name, data, {}, {}, {})
        if node is not None:
            before = len(issues)
            source._index(node, (), issues)
            if len(issues) > before:
                return None
        return source

    def _index(self, node: yaml.Node, path: Path_, issues: list[RuleIssue]) -> None:
        self.values[path] = node.start_mark
        self.styles[path] = getattr(node, "style", None)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    mark = key_node.start_mark
                    issues.append(
                        RuleIssue(
                            self.name,
                            mark.line + 1,
                            mark.column + 1,
                            _dotted((*path, key)),
                            f"duplicate key {key!r}",
                        )
                    )
                seen.add(key)
                self.keys[(*path, key)] = key_node.start_mark
                self._index(value_node, (*path, key), issues)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index(item, (*path, index), issues)

    def locate(self, loc: Sequence[str | int]) -> tuple[Path_, Path_]:
        """The deepest known node along a pydantic location, and the unmatched rest."""
        path: Path_ = ()
        rest: list[str | int] = []
        for part in loc:
            candidate = part if isinstance(part, int) else str(part)
            if (*path, candidate) in self.values:
                path = (*path, candidate)
            else:
                rest.append(part)
        return path, tuple(rest)

    def issue(
        self, path: Path_, message: str, *, at_key: bool = False, column_offset: int = 0
    ) -> RuleIssue:
        node_path, _ = self.locate(path)
        mark = self.keys.get(node_path) if at_key else None
        mark = mark or self.values.get(node_path)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return RuleIssue(self.name, line, column + column_offset, _dotted(path), message)


def _check_graph(name: str, root: yaml.Node, issues: list[RuleIssue]) -> bool:
    """Refuse a composed document whose aliases would expand it by more than
    ``MAX_ALIAS_NODES`` nodes, that refers to itself, or that nests deeper than ``MAX_DEPTH``.

    The composed graph shares the node of an anchor with its aliases, so its size is that of
    the file; each node's expanded size is computed once, and the walk stops at the first
    problem. An alias has no mark of its own: it is placed at its key (or its sequence)."""
    sizes: dict[int, int] = {}
    inside: set[int] = set()
    path: list[str | int] = []
    added = 0

    def fail(mark: yaml.Mark, message: str) -> None:
        issues.append(RuleIssue(name, mark.line + 1, mark.column + 1, _dotted(path), message))

    def walk(node: yaml.Node, mark: yaml.Mark) -> int | None:
        nonlocal added
        key = id(node)
        if key in inside:
            fail(mark, f"an alias refers to the collection that contains it (anchored at line "
                       f"{node.start_mark.line + 1}); a rule file is a tree")  # fmt: skip
            return None
        size = sizes.get(key)
        if size is not None:  # an alias: the anchor's node again
            added += size
            if added > MAX_ALIAS_NODES:
                fail(mark, f"aliases expand this file by more than {MAX_ALIAS_NODES:,} "
                           "nodes; write the repeated parts out")  # fmt: skip
                return None
            return size
        if len(path) > MAX_DEPTH:
            fail(mark, f"nested more than {MAX_DEPTH} levels deep")
            return None
        size = 1
        inside.add(key)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                fresh = isinstance(key_node, yaml.ScalarNode)
                path.append(str(key_node.value) if fresh else "?")
                for part in (key_node, value_node):
                    part_size = walk(part, key_node.start_mark if fresh else mark)
                    if part_size is None:
                        return None
                    size += part_size
                path.pop()
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                path.append(index)
                fresh = id(item) not in sizes and id(item) not in inside
                item_size = walk(item, item.start_mark if fresh else mark)
                if item_size is None:
                    return None
                size += item_size
                path.pop()
        inside.discard(key)
        sizes[key] = size
        return size

    return walk(root, root.start_mark) is not None


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _pydantic_issues(source: _Source, exc: ValidationError) -> list[RuleIssue]:
    issues: list[RuleIssue] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        node_path, rest = source.locate(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            message = f"unknown key {str(loc[-1])!r}{_accepted(loc)}"
            issues.append(source.issue(node_path, message, at_key=True))
            continue
        field_path: Path_ = (*node_path, *(p for p in rest if not _is_tag(p)))
        if kind == "missing":
            message = f"missing required key {str(loc[-1])!r}"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        issue = source.issue(node_path, message)
        issues.append(
            RuleIssue(issue.file, issue.line, issue.column, _dotted(field_path), issue.message)
        )
    return _join_alternatives(issues)


def _join_alternatives(issues: list[RuleIssue]) -> list[RuleIssue]:
    """One message per field for the members of a union (``int | float``: "a valid integer"
    and "a valid number"; ``"auto" | int``: "'auto' or a valid integer")."""
    joined: dict[tuple[str, int, int, str], list[str]] = {}
    for issue in issues:
        joined.setdefault((issue.file, issue.line, issue.column, issue.field), []).append(
            issue.message
        )
    out: list[RuleIssue] = []
    for (file, line, column, field_), messages in joined.items():
        prefix = "Input should be "
        if len(messages) > 1 and all(m.startswith(prefix) for m in messages):
            options = list(dict.fromkeys(m.removeprefix(prefix) for m in messages))
            if "a valid number" in options and "a valid integer" in options:
                options.remove("a valid integer")
            out.append(RuleIssue(file, line, column, field_, prefix + " or ".join(options)))
        else:
            out.extend(RuleIssue(file, line, column, field_, m) for m in messages)
    return out


_TAGS = {"webhook", "scaling", "[key]", "int", "float", "str", "list[Secret]", "Secret"}


def _is_tag(part: str | int) -> bool:
    """A union member's name in a pydantic location (``int``, ``literal['auto']``)."""
    return part in _TAGS or (isinstance(part, str) and part.startswith("literal["))


def _suggest(key: str, known: Sequence[str]) -> str:
    # Never the word itself: a key another model accepts is not a typo of itself.
    close = difflib.get_close_matches(key, [k for k in known if k != key], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _accepted(loc: Sequence[str | int]) -> str:
    """For an unknown key at ``loc``: a close key that the model there accepts, or else the
    keys it accepts (``metric`` is a metric alarm's key, never a composite alarm's)."""
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return _suggest(key, sorted(_ALL_KEYS))
    known = [
        name if info.alias is None else info.alias for name, info in model.model_fields.items()
    ]
    parents = [part for part in loc[:-1] if isinstance(part, str) and not _is_tag(part)]
    noun = _NOUNS.get(model) or (f"`{parents[-1]}`" if parents else "a rule file")
    return _suggest(key, known) or f"; {noun} accepts {', '.join(known)}"


_NOUNS: dict[type[BaseModel], str] = {
    RuleFile: "a rule file",
    MetricAlarm: "a metric alarm",
    CompositeAlarm: "a composite alarm",
    Silence: "a silence",
    WebhookTarget: "a webhook target",
    ScalingTarget: "a scaling target",
}


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model a pydantic location points into (``("composites", 0)``: CompositeAlarm),
    found by following the field types and the union tags pydantic puts in locations."""
    current: Any = RuleFile
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return None
    current = _unwrap(current)
    return current if _is_model(current) else None


def _step(annotation: Any, part: str | int) -> Any:
    if _is_model(annotation):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin = get_origin(annotation)
    if origin is list:
        return get_args(annotation)[0] if isinstance(part, int) else None
    if origin is dict:
        return get_args(annotation)[1]
    if origin in (Union, UnionType):  # the part is the tag of the member pydantic tried
        for member in get_args(annotation):
            if part in _tags(_unwrap(member)):
                return member
    return None


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [m for m in get_args(annotation) if m is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _tags(annotation: Any) -> set[str]:
    """The names pydantic gives a union member in locations: its class name or, in a
    discriminated union, its ``type``; ``list[Secret]`` for a list."""
    if _is_model(annotation):
        field = annotation.model_fields.get("type")
        values = get_args(field.annotation) if field is not None else ()
        return {annotation.__name__, *map(str, values)}
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return {f"list[{getattr(item, '__name__', item)}]"}
    return {getattr(annotation, "__name__", str(annotation))}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


_ALL_KEYS = {
    name if info.alias is None else info.alias
    for model in (
        RuleFile,
        MetricAlarm,
        MetricSpec,
        QueryEntry,
        Actions,
        CompositeAlarm,
        Suppression,
        WebhookTarget,
        ScalingTarget,
        Adjustment,
        Step,
        Retry,
        Secret,
        Silence,
        Match,
        Schedule,
        Inhibit,
        ThresholdBand,
    )
    for name, info in model.model_fields.items()
}
