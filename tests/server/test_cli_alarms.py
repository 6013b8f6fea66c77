"""``watchkeep alarms validate|test`` on real rule and test files."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.server.helpers import watchkeep_command

DATA = Path(__file__).resolve().parents[1] / "alarms" / "data"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*watchkeep_command(), "alarms", *args], capture_output=True, text=True, timeout=60
    )


def test_validate_accepts_the_spec_examples_and_places_errors(tmp_path: Path) -> None:
    ok = run("validate", str(DATA / "examples"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: ") and "in 3 files" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("alarms:\n  - name: x\n    metrik: {}\n")
    refused = run("validate", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {bad.name}:") or f"{bad}" in refused.stderr
    assert ":3:" in refused.stderr


def test_rule_unit_tests_report_passes_and_failures() -> None:
    result = run("test", str(DATA / "checkout_test.yaml"))
    assert result.returncode == 1  # the file holds one deliberately failing case
    assert result.stdout.count("ok   ") == 2
    assert "FAIL" in result.stdout and "expected OK" in result.stdout
    assert "1 test case(s) failed" in result.stderr
