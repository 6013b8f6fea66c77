"""YAML rule files (spec §6): strict loading, all or nothing, errors with file, line and column.

A rules directory is loaded atomically: ``load_rules_dir(path)`` either returns a complete new
``RuleSet`` or raises ``RulesError`` listing every problem of every file, so the caller keeps
its old rules untouched. Each problem names the file, the 1-based line and column of the YAML
node at fault and the field path (``alarms[0].threshold``).

Strictness (issue 6): an unknown key, a duplicate key, a wrong type (``threshold: "80"``) or a
conflicting pair of keys is refused, never ignored; a typo must not disable an alarm. The
models are in ``alarms.rule_models`` (and exported from here), the composed YAML with its node
marks in ``alarms.rule_source``, the checks across fields in ``alarms.rule_checks`` and across
files in ``alarms.rule_links``. ``merge_rule_texts`` puts one more text (an alarm created
through the API) into a valid ``RuleSet`` and checks only what it can break.
No I/O except reading the files named, and the environment for ``RuleSet.warnings`` (a
secret's unset variable).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from alarms.rule_checks import _check_file, _check_rules, _warnings
from alarms.rule_links import _merge, _merge_into
from alarms.rule_models import (
    BAND_OPERATORS,
    MAX_ACTIONS,
    OPERATOR_ALIASES,
    STATIC_OPERATORS,
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
    RuleSet,
    ScalingTarget,
    Schedule,
    Secret,
    Silence,
    Step,
    Suppression,
    ThresholdBand,
    WebhookTarget,
    parse_duration,
)
from alarms.rule_source import MAX_RULE_FILE_BYTES, _pydantic_issues, _Source, read_rule_text

# The models live in alarms.rule_models; importing them from here is the public way.
__all__ = [
    "Actions",
    "Adjustment",
    "BAND_OPERATORS",
    "CompositeAlarm",
    "Inhibit",
    "MAX_ACTIONS",
    "MAX_RULE_FILE_BYTES",
    "Match",
    "MetricAlarm",
    "MetricSpec",
    "OPERATOR_ALIASES",
    "QueryEntry",
    "Retry",
    "RuleFile",
    "RuleIssue",
    "RuleSet",
    "RulesError",
    "STATIC_OPERATORS",
    "ScalingTarget",
    "Schedule",
    "Secret",
    "Silence",
    "Step",
    "Suppression",
    "ThresholdBand",
    "WebhookTarget",
    "load_rule_texts",
    "load_rules_dir",
    "load_rules_path",
    "merge_rule_texts",
    "parse_duration",
    "read_rule_files",
    "read_rule_text",
    "rule_file_paths",
]


# ---- loading


def load_rules_dir(directory: str | Path, *, reserved_names: Iterable[str] = ()) -> RuleSet:
    """Load ``*.yaml``/``*.yml`` of a directory, all or nothing; raise ``RulesError``."""
    root = Path(directory)
    if not root.is_dir():
        reason = "not a directory" if root.exists() else "no such file or directory"
        raise RulesError([RuleIssue(str(root), 1, 1, "", reason)])
    return load_rules_path(root, reserved_names=reserved_names)


def rule_file_paths(path: str | Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` of a directory, sorted, or a single file; ``RulesError`` when
    the path does not exist."""
    target = Path(path)
    if target.is_dir():
        return sorted([*target.glob("*.yaml"), *target.glob("*.yml")])
    if not target.exists():
        raise RulesError([RuleIssue(str(target), 1, 1, "", "no such file or directory")])
    return [target]


def read_rule_files(path: str | Path) -> list[tuple[str, str]]:
    """(name, text) of each file of ``rule_file_paths``; ``RulesError`` listing every file
    that cannot be read, is too large or is not UTF-8 (``read_rule_text``)."""
    files: list[tuple[str, str]] = []
    issues: list[RuleIssue] = []
    for file in rule_file_paths(path):
        try:
            files.append((str(file), read_rule_text(file)))
        except RulesError as exc:
            issues.extend(exc.issues)
    if issues:
        raise RulesError(issues)
    return files


def load_rules_path(path: str | Path, *, reserved_names: Iterable[str] = ()) -> RuleSet:
    """A directory (its ``*.yaml``/``*.yml``) or a single file, all or nothing.

    The set's ``warnings`` also say when a directory holds no rule files."""
    files = read_rule_files(path)
    ruleset = load_rule_texts(files, reserved_names=reserved_names)
    if not files:
        empty = RuleIssue(str(path), 1, 1, "", f"no rule files (*.yaml, *.yml) in {path}")
        ruleset = replace(ruleset, warnings=(empty, *ruleset.warnings))
    return ruleset


def load_rule_texts(
    files: Sequence[tuple[str, str]], *, reserved_names: Iterable[str] = ()
) -> RuleSet:
    """Validate (file name, YAML text) pairs together; raise ``RulesError`` on any problem.

    ``reserved_names`` are names taken by alarms created through the API (spec §6.1).
    """
    parsed, issues = _parse(files)
    if issues:
        raise RulesError(issues)
    ruleset, cross = _merge(parsed, set(reserved_names))
    if cross:
        raise RulesError(cross)
    warnings = [w for source, model in parsed for w in _warnings(source, model, os.environ)]
    return replace(ruleset, warnings=tuple(warnings)) if warnings else ruleset


def merge_rule_texts(base: RuleSet, files: Sequence[tuple[str, str]]) -> RuleSet:
    """``base``, already valid, with the alarms, composites and silences of ``files`` put into
    it; raise ``RulesError`` on any problem, and ``base`` is unchanged.

    A rule ``base`` took from a file of the same name is replaced, as is a silence of the same
    id. Only what the new rules can break is checked (their names, targets, children,
    suppressors, parents and cycles through them), so a put costs its own size.
    """
    parsed, issues = _parse(files)
    if issues:
        raise RulesError(issues)
    ruleset, cross = _merge_into(base, parsed)
    if cross:
        raise RulesError(cross)
    return ruleset


def _parse(
    files: Sequence[tuple[str, str]],
) -> tuple[list[tuple[_Source, RuleFile]], list[RuleIssue]]:
    """Each text composed, validated by the models and checked on its own."""
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
    return parsed, issues
