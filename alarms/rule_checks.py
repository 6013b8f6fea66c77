"""Checks a model cannot express alone: spec §5.1 rejections, §5.10 math alarms, §6 targets
and silences, within one file. Names, references and cycles across files are in
``alarms.rule_links``.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping

from apscheduler.triggers.cron import CronTrigger

from alarms import composite
from alarms.rule_models import (
    _NAME_CHARS,
    BAND_OPERATORS,
    MAX_ACTIONS,
    CompositeAlarm,
    MetricAlarm,
    RuleFile,
    RuleIssue,
    ScalingTarget,
    Silence,
    WebhookTarget,
    _statistic,
)
from alarms.rule_source import Path_, _Source, _suggest
from core.errors import WatchkeepError
from query.metrics import math_parse
from query.metrics.statistic import Percentile
from store.metric_model import UNITS

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


def check_api_name(name: str, *, silence: bool = False) -> str | None:
    """Why ``name`` cannot name an alarm (or, with ``silence``, a silence) created through the
    API, or None. Stricter than ``_check_name``, as CloudWatch is: never blank, no whitespace at
    either end; and a silence id holds no ``/``, which would make it unreachable at
    ``DELETE /api/v1/alarms/silences/{id}``. Checked at put time only: a name that a rule file
    or a stored definition already uses must not stop the rules from loading.
    """
    if silence:
        rule = (
            "a silence id is 1 to 255 characters without control characters or '/', and is "
            "neither blank nor starts or ends with whitespace"
        )
        bad = "/" in name
    else:
        rule = (
            "an alarm name is 1 to 255 characters without control characters, and is neither "
            "blank nor starts or ends with whitespace"
        )
        bad = False
    if bad or _check_name(name) or name.strip() != name:
        return rule
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


def _warnings(source: _Source, model: RuleFile, environ: Mapping[str, str]) -> list[RuleIssue]:
    """What does not stop a load but is probably wrong: a file with nothing in it, and a
    secret whose environment variable is unset or empty here (it may be set only where the
    server runs, so validating elsewhere warns and does not fail)."""
    if not (model.targets or model.alarms or model.composites or model.silences or model.inhibit):
        return [source.issue((), f"file {source.name} holds no rules")]
    out: list[RuleIssue] = []
    for name, target in model.targets.items():
        listed = isinstance(target.secret, list)
        secrets = target.secret if isinstance(target.secret, list) else [target.secret]
        for index, secret in enumerate(secrets):
            if secret.env is None or environ.get(secret.env):
                continue
            path: Path_ = (
                ("targets", name, "secret", index) if listed else ("targets", name, "secret")
            )
            state = "empty" if secret.env in environ else "not set"
            out.append(
                source.issue(
                    path,
                    f"target {name!r}: secret environment variable {secret.env} is {state}; "
                    "its deliveries fail unless it is set where the server runs",
                )
            )
    return out


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
        else:
            try:
                CronTrigger.from_crontab(silence.schedule.cron)
            except ValueError as exc:
                out.append((("schedule", "cron"), f"invalid cron expression: {exc}"))
        try:
            zoneinfo.ZoneInfo(silence.schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            out.append(
                (("schedule", "timezone"), f"unknown time zone {silence.schedule.timezone!r}")
            )
        if silence.schedule.duration <= 0:
            out.append((("schedule", "duration"), "the duration must be positive"))
    return out
