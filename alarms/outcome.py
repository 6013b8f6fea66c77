"""What an evaluation returns (spec §5.2, §5.7): the state, its reason and reason data, and the
datapoints the decision used. Plain values; no behaviour beyond naming a state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["INITIAL_REASON", "BucketLike", "Breach", "Datapoint", "Evaluation", "State", "to_state"]

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
INITIAL_REASON = "Unchecked: Initial alarm creation"
_STATES: dict[str, State] = {"OK": "OK", "ALARM": "ALARM", "INSUFFICIENT_DATA": "INSUFFICIENT_DATA"}


class BucketLike(Protocol):
    @property
    def start_ms(self) -> int: ...
    @property
    def value(self) -> float: ...
    @property
    def sample_count(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Datapoint:
    """One bucket with a value: its start, the statistic's value and its sample count."""

    start_ms: int
    value: float
    sample_count: float | None = None


@dataclass(frozen=True, slots=True)
class Breach:
    """The newest datapoint the decision used, for scaling hooks (spec §6.5)."""

    value: float
    threshold: float
    delta: float  # v - t, or t - v for LessThan operators, so steps stay positive


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one evaluation; ``transition`` when the state value changed."""

    state: State
    reason: str
    reason_data: dict[str, Any]
    transition: bool
    datapoints_used: tuple[Datapoint, ...] = ()  # newest first; fills are not listed
    kept: bool = False
    breach: Breach | None = None
    evaluation_state: str | None = None  # EVALUATION_ERROR / EVALUATION_FAILURE (spec §5.2)


def to_state(text: str) -> State:
    """``text`` as a ``State``; ValueError for anything else."""
    try:
        return _STATES[text]
    except KeyError:
        raise ValueError(f"unknown alarm state {text!r}") from None
