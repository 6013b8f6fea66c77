"""The report templates of spec audit §5, Q1 to Q12, by name."""

from __future__ import annotations

from collections.abc import Mapping

from audit.reports.model import Template
from audit.reports.templates_access import (
    ACCESS_DENIED,
    ACCESS_KEY_ACTIVITY,
    AUTH_FAILURES_BY_SOURCE,
    CONSOLE_LOGINS,
    NEW_SOURCE_IPS,
    TOP_ERROR_PRINCIPALS,
)
from audit.reports.templates_changes import (
    AUDIT_TRAIL_ACCESS,
    CHANGES,
    CREDENTIAL_LIFECYCLE,
    POLICY_CHANGES,
    ROOT_AND_ADMIN,
    WHO_DELETED,
)

_ORDERED = (
    TOP_ERROR_PRINCIPALS,
    CONSOLE_LOGINS,
    WHO_DELETED,
    CHANGES,
    ACCESS_DENIED,
    AUTH_FAILURES_BY_SOURCE,
    CREDENTIAL_LIFECYCLE,
    POLICY_CHANGES,
    AUDIT_TRAIL_ACCESS,
    ACCESS_KEY_ACTIVITY,
    NEW_SOURCE_IPS,
    ROOT_AND_ADMIN,
)

TEMPLATES: Mapping[str, Template] = {t.name: t for t in _ORDERED}

__all__ = ["TEMPLATES"]
