"""Audit levels (spec audit §2.6): an ordered rule list, first match wins, with floors.

``None`` writes no record, ``Metadata`` drops parameters and responses, ``Request`` keeps the
parameters, ``RequestResponse`` also keeps the response of successful writes. The floors make
``None`` possible only for successful reads outside the audit and IAM services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict


class Level(IntEnum):
    NONE = 0
    METADATA = 1
    REQUEST = 2
    REQUEST_RESPONSE = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Level.NONE: "None",
    Level.METADATA: "Metadata",
    Level.REQUEST: "Request",
    Level.REQUEST_RESPONSE: "RequestResponse",
}
_BY_LABEL = {label: level for level, label in _LABELS.items()}

_FLOOR_SOURCES = frozenset({"cloudtrail.watchkeep", "iam.watchkeep"})


class LevelRule(BaseModel):
    """One rule of the audit policy; every matcher given must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: str
    eventSource: str | None = None  # noqa: N815 - the record's own field names
    eventName: str | None = None  # noqa: N815 - a glob
    readOnly: bool | None = None  # noqa: N815
    managementEvent: bool | None = None  # noqa: N815
    userName: str | None = None  # noqa: N815 - a glob

    def model_post_init(self, _context: object) -> None:
        if self.level not in _BY_LABEL:
            raise ValueError(f"level must be one of {', '.join(_BY_LABEL)}, not {self.level!r}")


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the level decision looks at."""

    event_source: str
    event_name: str
    read_only: bool
    management: bool
    user_name: str | None
    denied_or_unauthenticated: bool


# The default policy: management writes keep their responses, other calls their parameters,
# and data-plane writes only metadata plus a summary of the payload.
DEFAULT_POLICY = (
    LevelRule(level="RequestResponse", readOnly=False, managementEvent=True),
    LevelRule(level="Metadata", readOnly=False, managementEvent=False),
)


def level_for(facts: CallFacts, policy: Sequence[LevelRule] = DEFAULT_POLICY) -> Level:
    """The effective level of a call: the first matching rule's, raised to the floors."""
    level = Level.REQUEST
    for rule in policy:
        if _matches(rule, facts):
            level = _BY_LABEL[rule.level]
            break
    floored = (
        not facts.read_only
        or facts.denied_or_unauthenticated
        or facts.event_source in _FLOOR_SOURCES
    )
    if floored and level < Level.METADATA:
        return Level.METADATA
    return level


def _matches(rule: LevelRule, facts: CallFacts) -> bool:
    if rule.eventSource is not None and rule.eventSource != facts.event_source:
        return False
    if rule.eventName is not None and not fnmatchcase(facts.event_name, rule.eventName):
        return False
    if rule.readOnly is not None and rule.readOnly != facts.read_only:
        return False
    if rule.managementEvent is not None and rule.managementEvent != facts.management:
        return False
    if rule.userName is not None:
        return facts.user_name is not None and fnmatchcase(facts.user_name, rule.userName)
    return True
