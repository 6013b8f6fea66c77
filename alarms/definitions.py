"""The rules a server runs: its rule files plus the alarms and silences created through the API.

Both are validated together by ``load_rule_texts``, so names stay unique across files and the
API, composites may reference either, and one bad file changes nothing (spec §6.1). API
definitions are kept as JSON documents in the rule-file shape and handed to the loader as one
more YAML file named ``api`` (JSON is YAML), so their errors carry a line and column too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from alarms.rules import RuleIssue, RulesError, RuleSet, load_rule_texts

__all__ = ["API_SOURCE", "KINDS", "load_all", "rule_files"]

API_SOURCE = "api"
KINDS = {"metric": "alarms", "composite": "composites"}


def rule_files(rules_dir: Path | None) -> list[tuple[str, str]]:
    """(path, text) of the directory's ``*.yaml``/``*.yml``; none when it does not exist."""
    if rules_dir is None or not rules_dir.is_dir():
        return []
    paths = sorted([*rules_dir.glob("*.yaml"), *rules_dir.glob("*.yml")])
    files = []
    for path in paths:
        try:
            files.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError([RuleIssue(str(path), 1, 1, "", f"cannot read: {exc}")]) from None
    return files


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


def _api_text(definitions: Mapping[str, dict[str, Any]], silences: Mapping[str, Any]) -> str:
    document: dict[str, list[Any]] = {"alarms": [], "composites": [], "silences": []}
    for definition in definitions.values():
        document[KINDS[definition["kind"]]].append(definition["alarm"])
    document["silences"] = list(silences.values())
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
