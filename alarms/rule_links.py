"""Checks across files: unique names, the targets of actions, the children and suppressors of
composites, the parents limit and cycles (spec §5.11, §6.1).

``_merge`` checks every rule of a load; ``_merge_into`` puts a few new rules (one API alarm)
into a rule set that is already valid and checks only what they can break, with the same
messages, so that creating alarms one by one costs each put its own size, not the set's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from alarms import composite
from alarms.rule_models import (
    Actions,
    CompositeAlarm,
    Inhibit,
    MetricAlarm,
    RuleFile,
    RuleIssue,
    RuleSet,
    ScalingTarget,
    Silence,
    WebhookTarget,
)
from alarms.rule_source import Path_, _Source, _suggest

Place = Any  # (name, *path) -> (_Source, Path_)


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
                issues.append(_duplicate_silence(source, index, silence))
            silence_ids.add(silence.id)
            silences.append(silence)
        inhibit.extend(model.inhibit)

    def place(name: str, *rest: str | int) -> tuple[_Source, Path_]:
        source, path = where[f"alarm:{name}"]
        return source, (*path[:2], *rest)

    known = _Names(alarms, composites, reserved)
    for name, alarm in alarms.items():
        issues.extend(_check_actions(name, alarm.actions, targets, place, composite_=False))
    parents: dict[str, int] = {}
    for name, comp in composites.items():
        issues.extend(_check_links(name, comp, known, targets, place))
        for child in comp.parsed_rule.children:
            parents[child] = parents.get(child, 0) + 1
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


def _merge_into(
    base: RuleSet, parsed: Sequence[tuple[_Source, RuleFile]]
) -> tuple[RuleSet, list[RuleIssue]]:
    """``base`` with the alarms, composites and silences of ``parsed`` put into it.

    A rule that ``base`` took from the same file (the same source name) is replaced in place,
    as is a silence of the same id; a name taken from another file is refused as ``_merge``
    refuses it. Targets and inhibit rules come from whole loads only.
    """
    issues: list[RuleIssue] = []
    alarms, composites, files = dict(base.alarms), dict(base.composites), dict(base.files)
    silences = {silence.id: silence for silence in base.silences}
    where: dict[str, tuple[_Source, Path_]] = {}
    new_silences: set[str] = set()

    def claim(name: str, source: _Source, path: Path_) -> bool:
        owner = files.get(name) if name in alarms or name in composites else None
        other = where[name][0].name if name in where else owner
        if name in where or (owner is not None and owner != source.name):
            issues.append(
                source.issue(path, f"the name {name!r} is already taken (also defined in {other})")
            )
            return False
        where[name] = (source, path)
        files[name] = source.name
        return True

    for source, model in parsed:
        if model.targets or model.inhibit:
            issues.append(source.issue((), "targets and inhibit rules belong in rule files"))
        for index, alarm in enumerate(model.alarms):
            if claim(alarm.name, source, ("alarms", index, "name")):
                composites.pop(alarm.name, None)
                alarms[alarm.name] = alarm
        for index, comp in enumerate(model.composites):
            if claim(comp.name, source, ("composites", index, "name")):
                alarms.pop(comp.name, None)
                composites[comp.name] = comp
        for index, silence in enumerate(model.silences):
            if silence.id in new_silences:
                issues.append(_duplicate_silence(source, index, silence))
            new_silences.add(silence.id)
            silences[silence.id] = silence

    def place(name: str, *rest: str | int) -> tuple[_Source, Path_]:
        source, path = where[name]
        return source, (*path[:2], *rest)

    known = _Names(alarms, composites)
    added = [name for name in where if name in composites]
    for name in where:
        if name in alarms:
            issues.extend(
                _check_actions(name, alarms[name].actions, base.targets, place, composite_=False)
            )
        else:
            issues.extend(_check_links(name, composites[name], known, base.targets, place))
    issues.extend(_check_parents(added, composites, place))
    cycle = _find_cycle(composites, roots=added)
    if cycle:
        source, path = place(cycle[0] if cycle[0] in where else added[0], "rule")
        issues.append(source.issue(path, "composite rules form a cycle: " + " -> ".join(cycle)))
    ruleset = RuleSet(
        alarms,
        composites,
        base.targets,
        tuple(silences.values()),
        base.inhibit,
        files,
        base.warnings,
    )
    return ruleset, issues


def referrers(ruleset: RuleSet, name: str) -> list[str]:
    """The composites whose rule or suppressor names ``name``, sorted."""
    return sorted(
        comp.name
        for comp in ruleset.composites.values()
        if name in comp.parsed_rule.children
        or (
            comp.suppression is not None
            and composite.alarm_name(comp.suppression.suppressor) == name
        )
    )


class _Names:
    """Membership in several collections of names without building their union; suggestions
    (only on an error) sort it."""

    def __init__(self, *groups: Collection[str]) -> None:
        self._groups = groups

    def __contains__(self, name: object) -> bool:
        return any(name in group for group in self._groups)

    def sorted(self) -> list[str]:
        return sorted(set().union(*self._groups))


def _duplicate_silence(source: _Source, index: int, silence: Silence) -> RuleIssue:
    return source.issue(("silences", index, "id"), f"duplicate silence id {silence.id!r}")


def _check_links(
    name: str,
    comp: CompositeAlarm,
    known: _Names,
    targets: Mapping[str, WebhookTarget | ScalingTarget],
    place: Place,
) -> list[RuleIssue]:
    """A composite's actions, children and suppressor name things that exist."""
    issues = _check_actions(name, comp.actions, targets, place, composite_=True)
    for child in comp.parsed_rule.children:
        if child not in known:
            source, path = place(name, "rule")
            issues.append(
                source.issue(
                    path,
                    f"the rule names {child!r}, which is not an alarm"
                    f"{_suggest(child, known.sorted())}",
                )
            )
    if comp.suppression is not None:
        suppressor = composite.alarm_name(comp.suppression.suppressor)
        if suppressor not in known:
            source, path = place(name, "suppression", "suppressor")
            issues.append(source.issue(path, f"unknown suppressor alarm {suppressor!r}"))
    return issues


def _check_parents(
    added: Sequence[str], composites: Mapping[str, CompositeAlarm], place: Place
) -> list[RuleIssue]:
    """The children of the ``added`` composites are children of at most 150 composites."""
    children = {child for name in added for child in composites[name].parsed_rule.children}
    if not children:
        return []
    counts = dict.fromkeys(children, 0)
    for comp in composites.values():
        for child in comp.parsed_rule.children:
            if child in counts:
                counts[child] += 1
    issues: list[RuleIssue] = []
    for name in added:
        for child in sorted(composites[name].parsed_rule.children):
            if counts[child] > composite.MAX_PARENTS:
                source, path = place(name, "rule")
                count = counts[child]
                message = f"{child!r} would be a child of {count} composites; the limit is 150"
                issues.append(source.issue(path, message))
    return issues


def _check_actions(
    name: str, actions: Actions, targets: Mapping[str, Any], place: Place, *, composite_: bool
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


def _find_cycle(
    composites: Mapping[str, CompositeAlarm], *, roots: Iterable[str] | None = None
) -> list[str] | None:
    """A cycle of composite references, walked from ``roots`` (default: every composite).

    When the rest was acyclic, the new composites as roots find any cycle there is: it must
    pass through one of them.
    """
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

    for name in composites if roots is None else roots:
        if name not in colour and (found := visit(name)):
            return found
    return None
