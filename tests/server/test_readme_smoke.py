"""README's quick start, as CI runs it (``.ci/readme_blocks.py``): the shell block marked
``<!-- ci: smoke -->`` runs against a real server and reads back the event it shipped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ADMIN_KEY
from tests.server.helpers import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
# CI's wrapper: a failed HTTP call fails the script, with the error body shown.
STRICT_CURL = 'curl() { command curl --fail-with-body "$@"; }\n'


def readme_block(name: str, **options: str) -> str:
    args = [f"--{k}={v}" for k, v in options.items()]
    result = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "readme_blocks.py"), name, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_readme_smoke_block_ships_and_reads_back_an_event(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "data").start()
    try:
        script = STRICT_CURL + readme_block("smoke", key=ADMIN_KEY, url=server.url)
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "WATCHKEEP_SERVER": server.url,  # the CLI's default server is README's port
        }
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        server.terminate()
    assert result.returncode == 0, result.stderr
    assert '{"accepted":1,"rejected":[]}' in result.stdout
    assert '\\"msg\\":\\"disk full\\"' in result.stdout  # FilterLogEvents' JSON
    # ``watchkeep tail app``'s line (curl's output ends without a newline, so not at a start).
    assert re.search(r"T\d\d:\d\d:\d\d\.\d{3}Z web-3 \{.*\"disk full\"", result.stdout)


def test_a_mark_without_a_block_fails(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- ci: smoke -->\ntext, not a block\n")
    script = ROOT / ".ci" / "readme_blocks.py"
    for name, text in (("smoke", readme), ("absent", ROOT / "README.md")):
        result = subprocess.run(
            [sys.executable, str(script), name, "--readme", str(text)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1 and result.stderr.startswith("error: "), result.stderr
