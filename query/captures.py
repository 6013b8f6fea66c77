"""``parse`` (spec §7.7) as SQL: one expression per capture. No I/O here.

Each capture is read with its own regex in which it is the only group, so that RE2 can use its
one-pass engine (it does so only for anchored regexes with few groups), and with
``regexp_extract_all(...)[1]``, which answers '' for an empty capture and null when nothing
matched or the group sat out, in one call: ``regexp_extract`` answers '' for all three, and
telling them apart afterwards would read the capture twice.
"""

from __future__ import annotations

from query.regex import RegexInfo, glob_regexes
from query.values import Params

__all__ = ["glob_captures", "regex_captures"]


def _capture(source: str, pattern: str) -> str:
    return f"regexp_extract_all({source}, {pattern}, 1)[1]"


def glob_captures(source: str, glob: str, params: Params) -> list[str]:
    """SQL for each ``*`` of a glob, in order.

    The fast anchored regex answers for every text it matches (``query.regex.glob_regexes``
    says why it then agrees with the spec's lazy regex); the lazy one answers for the rest.
    """
    return [
        f"coalesce({_capture(source, params.add(fast))}, {_capture(source, params.add(lazy))})"
        for fast, lazy in glob_regexes(glob).fields
    ]


def regex_captures(source: str, info: RegexInfo, params: Params) -> list[tuple[str, str]]:
    """(field name, SQL) for each named group of a checked regex."""
    return [
        (group.name, _capture(source, params.add(info.isolate(index))))
        for index, group in enumerate(info.groups)
        if group.name is not None
    ]
