"""The rule-file models (spec §6, §5.1): pydantic types, strict, frozen, and the RuleSet.

Values are checked by type here; checks that need several fields or files are in
``alarms.rule_checks``, and loading (with errors placed at file:line:column) in ``alarms.rules``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from alarms import composite
from core.errors import BadRequest
from query.metrics.statistic import Statistic, parse_statistic

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
    """Raised when rule files are invalid; ``issues`` lists every problem found.

    ``lines`` (one per issue) replaces the ``file:line:column: field: message`` lines of the
    message, for documents that are no file of the user's (an API body)."""

    def __init__(
        self,
        issues: Sequence[RuleIssue],
        *,
        title: str = "invalid rules",
        lines: Sequence[str] | None = None,
    ) -> None:
        lines = [str(issue) for issue in issues] if lines is None else list(lines)
        super().__init__(
            f"{title}:\n" + "\n".join(lines) if len(lines) > 1 else f"{title}: {lines[0]}",
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
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
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
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
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
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)

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
    # Problems that do not stop a load: an empty file, a secret's unset environment variable.
    warnings: tuple[RuleIssue, ...] = ()

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
