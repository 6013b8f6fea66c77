"""The rules a server runs: its rule files plus the alarms and silences created through the API.

A whole load (start, reload) validates both together with ``load_rule_texts``, so names stay
unique across files and the API, composites may reference either, and one bad file changes
nothing (spec §6.1). API definitions are kept as JSON documents in the rule-file shape and
handed to the loader as one more YAML file named ``api`` (JSON is YAML). The errors of one API
body name their JSON path in it, not a line of that internal text.

Putting or deleting one API alarm or silence does not load everything again: the document is
validated on its own and merged into the running ``RuleSet``, which is already valid
(``merge_rule_texts``), so that creating N alarms one by one costs N puts, not N loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from alarms.rule_links import referrers
from alarms.rules import (
    RulesError,
    RuleSet,
    load_rule_texts,
    merge_rule_texts,
    read_rule_files,
)
from core.errors import Conflict, NotFound

__all__ = [
    "API_SOURCE",
    "KINDS",
    "AlarmInUse",
    "load_all",
    "put_alarm",
    "put_silence",
    "remove_alarm",
    "remove_silence",
    "rule_files",
]

API_SOURCE = "api"
KINDS = {"metric": "alarms", "composite": "composites"}


class AlarmInUse(Conflict):
    """Raised when deleting an alarm that a composite alarm still references (spec §5.1)."""

    code = "ResourceInUseException"


def rule_files(rules: Path | None, *, required: bool = False) -> list[tuple[str, str]]:
    """(path, text) of a directory's ``*.yaml``/``*.yml``, or of a single rule file.

    A path that does not exist gives no files, unless ``required`` (it was named by the
    user, as ``serve --rules``, rather than the default ``<data-dir>/rules``): then it is a
    ``RulesError``, as are files that cannot be read, are too large or are not UTF-8."""
    if rules is None or (not required and not rules.exists()):
        return []
    return read_rule_files(rules)


def load_all(
    files: Sequence[tuple[str, str]],
    definitions: Mapping[str, dict[str, Any]],
    silences: Mapping[str, dict[str, Any]],
) -> RuleSet:
    """Every rule, all or nothing; ``definitions`` map a name to ``{"kind", "alarm"}``."""
    texts = list(files)
    if definitions or silences:
        texts.append((API_SOURCE, _api_text(definitions, silences)))
    return load_rule_texts(texts)


def put_alarm(ruleset: RuleSet, kind: str, document: dict[str, Any]) -> RuleSet:
    """``ruleset`` with one API alarm created or replaced; ``RulesError`` if it is invalid."""
    definition = {document["name"]: {"kind": kind, "alarm": document}}
    return _merge_body(ruleset, _api_text(definition, {}), KINDS[kind], "alarm")


def put_silence(ruleset: RuleSet, document: dict[str, Any]) -> RuleSet:
    """``ruleset`` with one API silence created or replaced (by ``id``)."""
    text = _api_text({}, {document["id"]: document})
    return _merge_body(ruleset, text, "silences", "silence")


def _merge_body(ruleset: RuleSet, text: str, section: str, what: str) -> RuleSet:
    """``merge_rule_texts`` of one API body, its errors named by their JSON path in the body
    (``threshold``): the line and column of the text it was checked as mean nothing to a client
    who sent JSON. ``details`` keeps every issue as the loader gave it, plus that ``path``."""
    try:
        return merge_rule_texts(ruleset, [(API_SOURCE, text)])
    except RulesError as exc:
        prefix = f"{section}[0]"
        paths = [
            issue.field.removeprefix(prefix).removeprefix(".")
            if issue.field.startswith(prefix)
            else issue.field
            for issue in exc.issues
        ]
        lines = [
            f"{path}: {issue.message}" if path else issue.message
            for path, issue in zip(paths, exc.issues, strict=True)
        ]
        error = RulesError(exc.issues, title=f"invalid {what}", lines=lines)
        error.details["errors"] = [
            {**issue.as_dict(), "path": path} for path, issue in zip(paths, exc.issues, strict=True)
        ]
        raise error from None


def remove_alarm(ruleset: RuleSet, name: str) -> RuleSet:
    """``ruleset`` without an alarm; refused (409) while a composite references it."""
    if name not in ruleset.alarms and name not in ruleset.composites:
        raise NotFound(f"alarm {name!r} does not exist", details={"alarm": name})
    parents = referrers(ruleset, name)
    if parents:
        raise AlarmInUse(
            f"alarm {name!r} is referenced by the composite alarm(s) {', '.join(parents)}; "
            "delete or change them first",
            details={"alarm": name, "composites": parents},
        )
    alarms = {key: rule for key, rule in ruleset.alarms.items() if key != name}
    composites = {key: rule for key, rule in ruleset.composites.items() if key != name}
    # ``files`` also names targets, which are another namespace: a target's entry stays.
    files = {
        key: file for key, file in ruleset.files.items() if key != name or key in ruleset.targets
    }
    return replace(ruleset, alarms=alarms, composites=composites, files=files)


def remove_silence(ruleset: RuleSet, silence_id: str) -> RuleSet:
    silences = tuple(silence for silence in ruleset.silences if silence.id != silence_id)
    return replace(ruleset, silences=silences)


def _api_text(definitions: Mapping[str, dict[str, Any]], silences: Mapping[str, Any]) -> str:
    document: dict[str, list[Any]] = {"alarms": [], "composites": [], "silences": []}
    for definition in definitions.values():
        document[KINDS[definition["kind"]]].append(definition["alarm"])
    document["silences"] = list(silences.values())
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
