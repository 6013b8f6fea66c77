"""The server's scheduled self-check of its audit trail (spec audit §4.2.8, PCI DSS 10.3.4).

``SelfVerifier.run`` is the plain function the scheduler calls (``audit.self_verify_interval_s``,
default hourly). It runs ``verify`` incrementally: from the end of the newest digest the last
clean run covered, with the server's own live head, so that deleted WAL rows and a stalled
digest chain count too; every ``full_every``-th run checks the whole trail. A run with an
error finding records an ``AuditIntegrityFailure`` service event carrying the finding codes,
logs an error and counts ``integrity_failures_total`` (exposed by ``GetTrailStatus``); the
result of the last run is ``last`` for the trail status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.digests import Digester
from audit.trail import AuditTrail
from audit.verify import LiveHead, verify
from audit.verify_format import format_time, parse_time
from audit.verify_report import ERROR, VerifyConfigError, VerifyReport

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 3600.0
MAX_REPORTED_FINDINGS = 20


class SelfVerifier:
    def __init__(
        self,
        trail: AuditTrail,
        digester: Digester,
        *,
        trusted_keys: Sequence[Ed25519PublicKey] = (),
        full_every: int = 24,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._trail = trail
        self._digester = digester
        self._trusted = list(trusted_keys)
        self._full_every = max(1, full_every)
        self._clock = clock
        self._runs = 0
        self._since: datetime | None = None  # end of the newest digest a clean run covered
        self.integrity_failures_total = 0
        self.last: dict[str, Any] | None = None

    def run(self) -> dict[str, Any]:
        """Verify the newest part of the trail; record and log a failure; return the result."""
        full = self._since is None or self._runs % self._full_every == 0
        since = None if full else self._since
        self._runs += 1
        now = self._clock()
        with self._digester.maintenance_lock:
            try:
                report = verify(
                    self._trail.config.root,
                    public_keys=[*self._digester.public_keys, *self._trusted],
                    start=since,
                    now=now,
                    interval_s=self._digester.interval_s,
                    expect_running=True,
                    live_head=self._live_head,
                )
            except VerifyConfigError as exc:
                return self._finish(now, since, None, str(exc))
        return self._finish(now, since, report, None)

    def _live_head(self) -> LiveHead:
        latest = self._digester.latest
        return LiveHead(self._trail.head()[0], latest.seq if latest else None, "self-verify")

    def _finish(
        self,
        now: datetime,
        since: datetime | None,
        report: VerifyReport | None,
        problem: str | None,
    ) -> dict[str, Any]:
        errors = [f for f in report.findings if f.severity == ERROR] if report else []
        codes = sorted({f.code for f in errors})
        result = "error" if problem else "invalid" if errors else "valid"
        self.last = {
            "checkedAt": format_time(now),
            "result": result,
            "mode": "incremental" if since else "full",
            "since": format_time(since) if since else None,
            "through": report.found.get("end") if report else None,
            "codes": codes,
            "summary": report.summary if report else None,
            "integrityFailuresTotal": self.integrity_failures_total + (result != "valid"),
        }
        if result == "valid":
            assert report is not None
            if report.found.get("end"):
                self._since = parse_time(str(report.found["end"]))
            return self.last
        self.integrity_failures_total += 1
        messages = [f"{f.code} {f.line_subject()}: {f.message}" for f in errors]
        if problem:
            messages = [problem]
        log.error("audit self-verify failed: %s", "; ".join(messages[:MAX_REPORTED_FINDINGS]))
        details = {
            "source": "self-verify",
            "codes": codes,
            "findings": messages[:MAX_REPORTED_FINDINGS],
            "findingCount": len(messages),
            "since": self.last["since"],
        }
        try:
            self._trail.append_service_event("AuditIntegrityFailure", details)
        except Exception as exc:  # the trail itself is failing: the log line has to do
            log.error("could not record AuditIntegrityFailure: %s", exc)
        return self.last


__all__ = ["DEFAULT_INTERVAL_S", "SelfVerifier"]
