"""YAML rule files (spec §6): pydantic models, strict loading, errors with file, line and column.

A rules directory is loaded atomically: ``load_rules_dir(path)`` either returns a complete new
``RuleSet`` or raises ``RulesError`` listing every problem of every file, so the caller keeps
its old rules untouched. Each problem names the file, the 1-based line and column of the YAML
node at fault and the field path (``alarms[0].threshold``).

Strictness (issue 6): an unknown key, a duplicate key, a wrong type (``threshold: "80"``) or a
conflicting pair of keys is refused, never ignored; a typo must not disable an alarm. YAML is
composed into nodes first (``yaml.SafeLoader``) so that pydantic's error locations and our own
checks can be mapped back to the node marks. No I/O except reading the files named.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from alarms import composite
from core.errors import BadRequest, WatchkeepError
from query.metrics import math_parse
from query.metrics.statistic import Percentile, Statistic, parse_statistic
from store.metric_model import UNITS

__all__ = [
    "CompositeAlarm",
    "MetricAlarm",
    "RuleFile",
    "RuleIssue",
    "RuleSet",
    "RulesError",
    "ScalingTarget",
    "Silence",
    "WebhookTarget",
    "load_rule_texts",
    "load_rules_dir",
    "load_rules_path",
    "parse_duration",
]

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
STATIC_OPERATORS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
BAND_OPERATORS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
OPERATOR_ALIASES = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}
MAX_ACTIONS = 5
_DURATION = re.compile(r"([0-9]+)\s*(s|m|h|d)")
_DURATION_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_NAME_CHARS = re.compile(r"[^\x00-\x1f\x7f]{1,255}")


class RulesError(BadRequest):
    """Raised when rule files are invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[RuleIssue]) -> None:
        lines = [str(issue) for issue in issues]
        super().__init__(
            "invalid rules:\n" + "\n".join(lines)
            if len(lines) > 1
            else f"invalid rules: {lines[0]}",
            details={"errors": [issue.as_dict() for issue in issues]},
        )
        self.issues = tuple(issues)


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """One problem: where (file, 1-based line and column, field path) and what."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


# ---- value types


def parse_duration(value: object) -> int:
    """Seconds from an integer or a string with a unit: ``10s``, ``5m``, ``1h``, ``7d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is an integer of seconds or a string such as 30s, 5m, 1h, 7d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            return int(match.group(1)) * _DURATION_S[match.group(2)]
    raise ValueError(
        f"{value!r} is not a duration: use an integer of seconds or a string such as "
        "30s, 5m, 1h, 7d"
    )


def _operator(value: object) -> object:
    return OPERATOR_ALIASES.get(value, value) if isinstance(value, str) else value


def _no_inline_secret(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            "secrets are never written inline: use {env: NAME} or {file: /run/secrets/name}"
        )
    return value


Duration = Annotated[int, BeforeValidator(parse_duration)]
Operator = Annotated[
    Literal[
        "GreaterThanOrEqualToThreshold",
        "GreaterThanThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
        "LessThanLowerOrGreaterThanUpperThreshold",
        "LessThanLowerThreshold",
        "GreaterThanUpperThreshold",
    ],
    BeforeValidator(_operator),
]
Number = int | float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class MetricSpec(_Model):
    namespace: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    unit: str | None = None


class QueryEntry(_Model):
    """One ``MetricDataQuery`` of a math alarm (spec §5.10)."""

    id: str
    metric: MetricSpec | None = None
    statistic: str | None = None
    period: Duration | None = None
    expression: str | None = None
    return_data: bool = Field(False, alias="return")
    label: str | None = None


class Actions(_Model):
    alarm: list[str] = Field(default_factory=list)
    ok: list[str] = Field(default_factory=list)
    insufficient_data: list[str] = Field(default_factory=list)

    def for_state(self, state: str) -> list[str]:
        return {"ALARM": self.alarm, "OK": self.ok}.get(state, self.insufficient_data)


class ThresholdBand(_Model):
    upper: str | Number
    lower: str | Number


class MetricAlarm(_Model):
    """A metric alarm (spec §6.2 and §5.1); ``metric`` or ``query``, never both."""

    name: str
    description: str = Field("", max_length=1024)
    labels: dict[str, str] = Field(default_factory=dict)
    metric: MetricSpec | None = None
    statistic: str | None = None
    period: Duration | None = None
    query: list[QueryEntry] | None = None
    evaluation_periods: int = Field(ge=1)
    datapoints_to_alarm: int | None = Field(None, ge=1)
    comparison: Operator
    threshold: Number | None = None
    threshold_band: ThresholdBand | None = None
    treat_missing_data: Literal["missing", "ignore", "breaching", "notBreaching"] = "missing"
    evaluate_low_sample_count_percentile: Literal["evaluate", "ignore"] = "evaluate"
    evaluation_range: Literal["auto"] | int = "auto"
    evaluation_delay: Duration = 0
    actions_enabled: bool = True
    actions: Actions = Field(default_factory=Actions)

    kind: ClassVar[str] = "metric"

    @property
    def n(self) -> int:
        return self.evaluation_periods

    @property
    def m(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def range_length(self) -> int:
        """L, the number of buckets of the evaluation range (spec §5.5.1, decision D1)."""
        return self.n + 2 if self.evaluation_range == "auto" else self.evaluation_range

    @property
    def period_s(self) -> int:
        if self.period is not None:
            return self.period
        for entry in self.query or ():
            if entry.period is not None:
                return entry.period
        return 60

    @property
    def is_math(self) -> bool:
        return self.query is not None

    @property
    def parsed_statistic(self) -> Statistic | None:
        return _statistic(self.statistic) if self.statistic is not None else None

    @property
    def unit(self) -> str | None:
        return self.metric.unit if self.metric is not None else None


class Suppression(_Model):
    suppressor: str = Field(min_length=1, max_length=1600)
    wait_period: Duration
    extension_period: Duration


class CompositeAlarm(_Model):
    """A composite alarm (spec §6.3, §5.11)."""

    name: str
    description: str = Field("", max_length=1024)
    labels: dict[str, str] = Field(default_factory=dict)
    rule: str
    actions_enabled: bool = True
    actions: Actions = Field(default_factory=Actions)
    suppression: Suppression | None = None

    kind: ClassVar[str] = "composite"

    @property
    def parsed_rule(self) -> composite.Rule:
        return _rule(self.rule)


class Secret(_Model):
    env: str | None = None
    file: str | None = None


SecretRef = Annotated[Secret | list[Secret], BeforeValidator(_no_inline_secret)]


class Retry(_Model):
    max_attempts: int = Field(default=8, ge=1)
    initial_backoff: Duration = 1
    multiplier: Number = Field(default=2, ge=1)
    max_backoff: Duration = 300
    deadline: Duration = 3_600


class WebhookTarget(_Model):
    """An HTTP webhook (spec §6.4)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: SecretRef
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10
    retry: Retry = Field(default_factory=lambda: Retry())


class Step(_Model):
    lower: Number | None = None
    upper: Number | None = None
    value: Number


class Adjustment(_Model):
    type: Literal["change_in_capacity", "percent_change_in_capacity", "exact_capacity"]
    steps: list[Step] | None = None
    value: Number | None = None
    min_adjustment_magnitude: int | None = Field(None, ge=1)


class ScalingTarget(_Model):
    """A scaling hook (spec §6.5): a signed webhook that repeats while the state holds."""

    type: Literal["scaling"]
    url: str = Field(pattern=r"^https?://")
    secret: SecretRef
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10
    group: str = Field(min_length=1)
    adjustment: Adjustment
    cooldown: Duration = 0
    repeat_interval: Duration = 60
    retry: Retry = Field(default_factory=lambda: Retry())


Target = Annotated[WebhookTarget | ScalingTarget, Field(discriminator="type")]


class Match(_Model):
    alarm: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """Glob on the name, exact on labels; every given part must match."""
        if self.alarm is not None and not fnmatch.fnmatchcase(name, self.alarm):
            return False
        return all(labels.get(key) == value for key, value in self.labels.items())


class Schedule(_Model):
    cron: str
    duration: Duration
    timezone: str = "UTC"


class Silence(_Model):
    """A silence (spec §6.6): a one-off window or a schedule, matching alarms."""

    id: str = Field(min_length=1)
    match: Match
    # Not strict: API silences arrive as JSON, where a time can only be a string.
    starts: datetime | None = Field(None, strict=False)
    ends: datetime | None = Field(None, strict=False)
    schedule: Schedule | None = None
    comment: str = ""
    created_by: str = ""


class Inhibit(_Model):
    source: Match
    target: Match
    equal_labels: list[str] = Field(default_factory=list)


class RuleFile(_Model):
    """The top level of one rule file."""

    targets: dict[str, Target] = Field(default_factory=dict)
    alarms: list[MetricAlarm] = Field(default_factory=list)
    composites: list[CompositeAlarm] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    inhibit: list[Inhibit] = Field(default_factory=list)


@dataclass(frozen=True)
class RuleSet:
    """Every rule of a directory, validated together; names are unique across files."""

    alarms: dict[str, MetricAlarm] = field(default_factory=dict)
    composites: dict[str, CompositeAlarm] = field(default_factory=dict)
    targets: dict[str, WebhookTarget | ScalingTarget] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()
    inhibit: tuple[Inhibit, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # alarm/composite/target name -> file

    def composite_order(self) -> list[str]:
        """Composites in dependency order: children before parents (cycles are refused)."""
        done: dict[str, None] = {}

        def visit(name: str) -> None:
            if name in done:
                return
            for child in self.composites[name].parsed_rule.children:
                if child in self.composites:
                    visit(child)
            done[name] = None

        for name in self.composites:
            visit(name)
        return list(done)


# ---- caches: parsing a statistic or a rule once per distinct text


_STATISTICS: dict[str, Statistic] = {}
_RULES: dict[str, composite.Rule] = {}


def _statistic(text: str) -> Statistic:
    parsed = _STATISTICS.get(text)
    if parsed is None:
        parsed = _STATISTICS[text] = parse_statistic(text)
    return parsed


def _rule(text: str) -> composite.Rule:
    parsed = _RULES.get(text)
    if parsed is None:
        parsed = _RULES[text] = composite.parse_rule(text)
    return parsed


# ---- loading


def load_rules_dir(directory: str | Path, *, reserved_names: Iterable[str] = ()) -> RuleSet:
    """Load ``*.yaml``/``*.yml`` of a directory, all or nothing; raise ``RulesError``."""
    root = Path(directory)
    if not root.is_dir():
        raise RulesError([RuleIssue(str(root), 1, 1, "", "not a directory")])
    paths = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
    return load_rule_texts(
        [(str(p), p.read_text(encoding="utf-8")) for p in paths], reserved_names=reserved_names
    )


def load_rules_path(path: str | Path, *, reserved_names: Iterable[str] = ()) -> RuleSet:
    """A directory (``load_rules_dir``) or a single file."""
    target = Path(path)
    if target.is_dir():
        return load_rules_dir(target, reserved_names=reserved_names)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([RuleIssue(str(target), 1, 1, "", f"cannot read: {exc}")]) from None
    return load_rule_texts([(str(target), text)], reserved_names=reserved_names)


def load_rule_texts(
    files: Sequence[tuple[str, str]], *, reserved_names: Iterable[str] = ()
) -> RuleSet:
    """Validate (file name, YAML text) pairs together; raise ``RulesError`` on any problem.

    ``reserved_names`` are names taken by alarms created through the API (spec §6.1).
    """
    issues: list[RuleIssue] = []
    parsed: list[tuple[_Source, RuleFile]] = []
    for name, text in files:
        source = _Source.compose(name, text, issues)
        if source is None:
            continue
        try:
            model = RuleFile.model_validate(source.data if source.data is not None else {})
        except ValidationError as exc:
            issues.extend(_pydantic_issues(source, exc))
            continue
        file_issues = [source.issue(path, message) for path, message in _check_file(model)]
        file_issues += _check_rules(source, model)
        issues.extend(file_issues)
        if not file_issues:
            parsed.append((source, model))
    if issues:
        raise RulesError(issues)
    ruleset, cross = _merge(parsed, set(reserved_names))
    if cross:
        raise RulesError(cross)
    return ruleset


Path_ = tuple[str | int, ...]
# libyaml's loader when PyYAML was built with it: 10,000 alarms load in seconds, not half a
# minute; its nodes carry the same marks, so errors are placed the same.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
            key = str(loc[-1])
            known = list(RuleFile.model_fields) if len(loc) == 1 else sorted(_ALL_KEYS)
            message = f"unknown key {key!r}{_suggest(key, known)}"
            issues.append(source.issue(node_path, message, at_key=True))
            continue
        field_path: Path_ = (*node_path, *(p for p in rest if p not in _TAGS))
        if kind == "missing":
            message = f"missing required key {str(loc[-1])!r}"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        issue = source.issue(node_path, message)
        issues.append(
            RuleIssue(issue.file, issue.line, issue.column, _dotted(field_path), issue.message)
        )
    return issues


_TAGS = {"webhook", "scaling", "[key]", "int", "float", "str", "list[Secret]", "Secret"}


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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


# ---- checks of one file (spec §5.1 rejections, §5.10, §6)


def _check_file(model: RuleFile) -> list[tuple[Path_, str]]:
    issues: list[tuple[Path_, str]] = []
    for index, alarm in enumerate(model.alarms):
        issues.extend(((("alarms", index, *p)), m) for p, m in _check_alarm(alarm))
    for index, comp in enumerate(model.composites):
        issues.extend(((("composites", index, *p)), m) for p, m in _check_composite(comp))
    for name, target in model.targets.items():
        issues.extend(((("targets", name, *p)), m) for p, m in _check_target(target))
    for index, silence in enumerate(model.silences):
        issues.extend(((("silences", index, *p)), m) for p, m in _check_silence(silence))
    return issues


def _check_name(name: str) -> str | None:
    if not _NAME_CHARS.fullmatch(name):
        return "a name is 1 to 255 characters without control characters"
    return None


def _check_alarm(alarm: MetricAlarm) -> list[tuple[Path_, str]]:
    out: list[tuple[Path_, str]] = []
    if problem := _check_name(alarm.name):
        out.append((("name",), problem))
    if (alarm.metric is None) == (alarm.query is None):
        out.append(((), "give exactly one of `metric` and `query`"))
        return out
    n = alarm.n
    if alarm.datapoints_to_alarm is not None and alarm.datapoints_to_alarm > n:
        out.append(
            (
                ("datapoints_to_alarm",),
                f"datapoints_to_alarm ({alarm.datapoints_to_alarm}) may not exceed "
                f"evaluation_periods ({n})",
            )
        )
    if alarm.metric is not None:
        out.extend(_check_single(alarm))
    else:
        out.extend(_check_query(alarm))
    period = alarm.period_s
    window = period * n
    limit = 86_400 if period < 3_600 else 604_800
    if window > limit:
        out.append(
            (
                ("evaluation_periods",),
                f"period x evaluation_periods is {window} s; the limit is {limit} s "
                "[evaluation_window]",
            )
        )
    if alarm.evaluation_range != "auto" and not n <= alarm.evaluation_range <= n + 20:
        out.append(
            (
                ("evaluation_range",),
                f"evaluation_range is auto or an integer from {n} to {n + 20}",
            )
        )
    if alarm.comparison in BAND_OPERATORS:
        out.append(
            (
                ("comparison",),
                f"{alarm.comparison} needs an anomaly band, which watchkeep 1.0 does not "
                "support yet (spec §5.12); use a static operator [band]",
            )
        )
    elif alarm.threshold is None:
        out.append((("threshold",), "a static-threshold alarm needs a threshold"))
    if alarm.threshold_band is not None:
        out.append((("threshold_band",), "threshold_band is not supported yet (spec §5.12) [band]"))
    if alarm.evaluation_delay:
        out.append((("evaluation_delay",), "evaluation_delay is not supported yet"))
    for state, targets in (
        ("alarm", alarm.actions.alarm),
        ("ok", alarm.actions.ok),
        ("insufficient_data", alarm.actions.insufficient_data),
    ):
        if len(targets) > MAX_ACTIONS:
            out.append((("actions", state), f"at most {MAX_ACTIONS} targets per state"))
    return out


def _check_period(period: int | None, path: Path_) -> list[tuple[Path_, str]]:
    if period is None:
        return [(path, "a period is required")]
    if period in (10, 20, 30) or (period > 0 and period % 60 == 0):
        return []
    return [(path, f"period must be 10s, 20s, 30s or a multiple of 60s, not {period} s")]


def _check_statistic(text: str | None, path: Path_) -> list[tuple[Path_, str]]:
    if text is None:
        return [(path, "a statistic is required (Average, Sum, p99, ...) [statistic]")]
    try:
        _statistic(text)
    except WatchkeepError as exc:
        return [(path, exc.message)]
    return []


def _check_unit(unit: str | None, path: Path_) -> list[tuple[Path_, str]]:
    if unit is not None and unit not in UNITS:
        close = _suggest(unit, sorted(UNITS))
        return [(path, f"unknown unit {unit!r}{close}")]
    return []


def _check_single(alarm: MetricAlarm) -> list[tuple[Path_, str]]:
    assert alarm.metric is not None
    out = _check_statistic(alarm.statistic, ("statistic",))
    out += _check_period(alarm.period, ("period",))
    out += _check_unit(alarm.metric.unit, ("metric", "unit"))
    if alarm.evaluate_low_sample_count_percentile != "evaluate" and not isinstance(
        alarm.parsed_statistic if not out else None, Percentile
    ):
        if not out:
            out.append(
                (
                    ("evaluate_low_sample_count_percentile",),
                    "evaluate_low_sample_count_percentile applies to percentiles only",
                )
            )
    return out


def _check_query(alarm: MetricAlarm) -> list[tuple[Path_, str]]:
    assert alarm.query is not None
    out: list[tuple[Path_, str]] = []
    for key in ("statistic", "period"):
        if getattr(alarm, key) is not None:
            out.append(((key,), f"`{key}` goes into the metric entries of `query`, not beside it"))
    entries = alarm.query
    if not 1 <= len(entries) <= 20:
        out.append((("query",), "a query holds 1 to 20 entries"))
    metric_count = sum(e.metric is not None for e in entries)
    if metric_count > 10 or len(entries) - metric_count > 10:
        out.append((("query",), "a query holds at most 10 metric entries and 10 expressions"))
    returned = [i for i, e in enumerate(entries) if e.return_data]
    if len(returned) != 1:
        out.append(
            (("query",), f"exactly one entry must have `return: true`, not {len(returned)} "
             "[return_data]")
        )  # fmt: skip
    ids: dict[str, int] = {}
    periods: set[int] = set()
    for index, entry in enumerate(entries):
        path: Path_ = ("query", index)
        try:
            math_parse.check_query_id(entry.id)
        except WatchkeepError as exc:
            out.append(((*path, "id"), exc.message))
        if entry.id in ids:
            out.append(((*path, "id"), f"duplicate id {entry.id!r}"))
        ids[entry.id] = index
        if (entry.metric is None) == (entry.expression is None):
            out.append((path, "give exactly one of `metric` and `expression`"))
            continue
        if entry.metric is not None:
            out += _check_statistic(entry.statistic, (*path, "statistic"))
            out += _check_period(entry.period, (*path, "period"))
            out += _check_unit(entry.metric.unit, (*path, "metric", "unit"))
            if entry.period is not None:
                periods.add(entry.period)
        else:
            for key in ("statistic", "period"):
                if getattr(entry, key) is not None:
                    out.append(((*path, key), f"an expression entry has no `{key}`"))
    if len(periods) > 1:
        out.append((("query",), "every metric entry must use the same period [mixed_periods]"))
    if metric_count == 0:
        out.append((("query",), "a query needs at least one metric entry"))
    for index, entry in enumerate(entries):
        if entry.expression is None:
            continue
        try:
            expr = math_parse.parse_expression(entry.expression)
        except WatchkeepError as exc:
            out.append((("query", index, "expression"), exc.message))
            continue
        for ref in sorted(math_parse.references(expr)):
            if ref not in ids:
                out.append(
                    (("query", index, "expression"), f"unknown id {ref!r} in the expression")
                )
    return out


def _check_composite(comp: CompositeAlarm) -> list[tuple[Path_, str]]:
    out: list[tuple[Path_, str]] = []
    if problem := _check_name(comp.name):
        out.append((("name",), problem))
    return out


def _check_rules(source: _Source, model: RuleFile) -> list[RuleIssue]:
    """Parse each composite rule; point at the failing character when the scalar allows it."""
    issues: list[RuleIssue] = []
    for index, comp in enumerate(model.composites):
        try:
            comp.parsed_rule  # noqa: B018 - parses and caches
        except composite.RuleSyntaxError as exc:
            path: Path_ = ("composites", index, "rule")
            style = source.styles.get(path)
            issue = source.issue(path, f"{exc.reason} (rule column {exc.column})")
            if "\n" not in comp.rule and style in (None, "", '"', "'"):
                quote = 1 if style in ('"', "'") else 0
                issue = source.issue(
                    path,
                    f"{exc.reason} (rule column {exc.column})",
                    column_offset=exc.column - 1 + quote,
                )
            issues.append(issue)
    return issues


def _check_target(target: WebhookTarget | ScalingTarget) -> list[tuple[Path_, str]]:
    out: list[tuple[Path_, str]] = []
    secrets = target.secret if isinstance(target.secret, list) else [target.secret]
    if not secrets:
        out.append((("secret",), "give at least one secret"))
    for secret in secrets:
        if (secret.env is None) == (secret.file is None):
            out.append((("secret",), "a secret is {env: NAME} or {file: PATH}, exactly one"))
    for name, value in target.headers.items():
        if not (name + value).isascii():
            out.append((("headers", name), "header names and values must be ASCII"))
    if target.retry.initial_backoff > target.retry.max_backoff:
        out.append((("retry",), "initial_backoff may not exceed max_backoff"))
    if isinstance(target, ScalingTarget):
        adjustment = target.adjustment
        if (adjustment.steps is None) == (adjustment.value is None):
            out.append((("adjustment",), "give exactly one of `steps` and `value`"))
        if (
            adjustment.min_adjustment_magnitude is not None
            and adjustment.type != "percent_change_in_capacity"
        ):
            out.append(
                (
                    ("adjustment", "min_adjustment_magnitude"),
                    "min_adjustment_magnitude applies to percent_change_in_capacity only",
                )
            )
        steps = sorted(
            adjustment.steps or (),
            key=lambda s: float("-inf") if s.lower is None else s.lower,
        )
        for before, after in zip(steps, steps[1:], strict=False):
            upper = float("inf") if before.upper is None else before.upper
            lower = float("-inf") if after.lower is None else after.lower
            if upper > lower:
                out.append((("adjustment", "steps"), "steps overlap"))
                break
        for index, step in enumerate(adjustment.steps or ()):
            if step.lower is not None and step.upper is not None and step.lower >= step.upper:
                out.append((("adjustment", "steps", index), "lower must be below upper"))
    return out


def _check_silence(silence: Silence) -> list[tuple[Path_, str]]:
    out: list[tuple[Path_, str]] = []
    window = silence.starts is not None or silence.ends is not None
    if window == (silence.schedule is not None):
        out.append(((), "give either `starts` and `ends`, or a `schedule`"))
    elif window:
        if silence.starts is None or silence.ends is None:
            out.append(((), "a one-off silence needs both `starts` and `ends`"))
        elif silence.starts.tzinfo is None or silence.ends.tzinfo is None:
            out.append((("starts",), "give times with a zone, e.g. 2026-01-10T22:00:00Z"))
        elif silence.ends <= silence.starts:
            out.append((("ends",), "`ends` must be after `starts`"))
    if silence.schedule is not None:
        if len(silence.schedule.cron.split()) != 5:
            out.append((("schedule", "cron"), "a cron expression has 5 fields"))
        try:
            zoneinfo.ZoneInfo(silence.schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            out.append(
                (("schedule", "timezone"), f"unknown time zone {silence.schedule.timezone!r}")
            )
        if silence.schedule.duration <= 0:
            out.append((("schedule", "duration"), "the duration must be positive"))
    return out


# ---- checks across files


def _merge(
    parsed: Sequence[tuple[_Source, RuleFile]], reserved: set[str]
) -> tuple[RuleSet, list[RuleIssue]]:
    issues: list[RuleIssue] = []
    alarms: dict[str, MetricAlarm] = {}
    composites: dict[str, CompositeAlarm] = {}
    targets: dict[str, WebhookTarget | ScalingTarget] = {}
    files: dict[str, str] = {}
    where: dict[str, tuple[_Source, Path_]] = {}
    silences: list[Silence] = []
    silence_ids: set[str] = set()
    inhibit: list[Inhibit] = []

    def claim(kind: str, name: str, source: _Source, path: Path_) -> bool:
        key = f"{kind}:{name}"
        if key in where or (kind == "alarm" and name in reserved):
            other = where.get(key)
            was = f" (also defined in {other[0].name})" if other else " (an API alarm)"
            issues.append(source.issue(path, f"the name {name!r} is already taken{was}"))
            return False
        where[key] = (source, path)
        files[name] = source.name
        return True

    for source, model in parsed:
        for name, target in model.targets.items():
            if claim("target", name, source, ("targets", name)):
                targets[name] = target
        for index, alarm in enumerate(model.alarms):
            if claim("alarm", alarm.name, source, ("alarms", index, "name")):
                alarms[alarm.name] = alarm
        for index, comp in enumerate(model.composites):
            if claim("alarm", comp.name, source, ("composites", index, "name")):
                composites[comp.name] = comp
        for index, silence in enumerate(model.silences):
            if silence.id in silence_ids:
                issues.append(
                    source.issue(("silences", index, "id"), f"duplicate silence id {silence.id!r}")
                )
            silence_ids.add(silence.id)
            silences.append(silence)
        inhibit.extend(model.inhibit)

    def place(name: str, *rest: str | int) -> tuple[_Source, Path_]:
        source, path = where[f"alarm:{name}"]
        return source, (*path[:2], *rest)

    known = set(alarms) | set(composites) | reserved
    for name, alarm in alarms.items():
        issues.extend(_check_actions(name, alarm.actions, targets, place, composite_=False))
    parents: dict[str, int] = {}
    for name, comp in composites.items():
        issues.extend(_check_actions(name, comp.actions, targets, place, composite_=True))
        for child in comp.parsed_rule.children:
            parents[child] = parents.get(child, 0) + 1
            if child not in known:
                source, path = place(name, "rule")
                issues.append(
                    source.issue(
                        path,
                        f"the rule names {child!r}, which is not an alarm"
                        f"{_suggest(child, sorted(known))}",
                    )
                )
        if comp.suppression is not None:
            suppressor = composite.alarm_name(comp.suppression.suppressor)
            if suppressor not in known:
                source, path = place(name, "suppression", "suppressor")
                issues.append(source.issue(path, f"unknown suppressor alarm {suppressor!r}"))
    for child, count in parents.items():
        if count > composite.MAX_PARENTS and f"alarm:{child}" in where:
            source, path = place(child, "name")
            issues.append(source.issue(path, f"a child of {count} composites; the limit is 150"))
    cycle = _find_cycle(composites)
    if cycle:
        source, path = place(cycle[0], "rule")
        issues.append(source.issue(path, "composite rules form a cycle: " + " -> ".join(cycle)))
    ruleset = RuleSet(alarms, composites, targets, tuple(silences), tuple(inhibit), files)
    return ruleset, issues


def _check_actions(
    name: str, actions: Actions, targets: Mapping[str, Any], place: Any, *, composite_: bool
) -> list[RuleIssue]:
    issues: list[RuleIssue] = []
    for state in ("alarm", "ok", "insufficient_data"):
        for index, target_name in enumerate(getattr(actions, state)):
            source, path = place(name, "actions", state, index)
            target = targets.get(target_name)
            if target is None:
                issues.append(
                    source.issue(
                        path,
                        f"unknown target {target_name!r}{_suggest(target_name, sorted(targets))}",
                    )
                )
            elif isinstance(target, ScalingTarget) and (composite_ or state == "insufficient_data"):
                where = "a composite" if composite_ else "the insufficient_data list"
                issues.append(
                    source.issue(
                        path,
                        f"scaling hook {target_name!r} cannot be used in {where}; scaling hooks "
                        "belong in the alarm or ok list of a metric alarm",
                    )
                )
    return issues


def _find_cycle(composites: Mapping[str, CompositeAlarm]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        colour[name] = 1
        stack.append(name)
        for child in composites[name].parsed_rule.children:
            if child not in composites:
                continue
            if colour.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in colour and (found := visit(child)):
                return found
        stack.pop()
        colour[name] = 2
        return None

    for name in composites:
        if name not in colour and (found := visit(name)):
            return found
    return None
