#!/usr/bin/env python3
"""Print README.md's shell blocks that carry a CI mark, ready to run: what CI checks is what
the README says.

A block is marked by an HTML comment (invisible on GitHub) on the line before its fence:

    <!-- ci: smoke -->
    ```sh
    curl ...
    ```

The README's placeholders, the key ``WKIA…:wks_…`` and the address ``http://127.0.0.1:8766``,
are replaced by ``--key`` and ``--url``. Exits 1 when no block has the mark, or a mark is not
followed by a shell block: CI must never pass by running nothing.

    .ci/readme_blocks.py smoke --key "$WATCHKEEP_ADMIN_KEY" > smoke.sh
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
KEY_PLACEHOLDER = "WKIA…:wks_…"
URL_PLACEHOLDER = "http://127.0.0.1:8766"
_MARK = re.compile(r"^<!--\s*ci:\s*([\w-]+)\s*-->\s*$")
_SHELL_FENCE = re.compile(r"^```(sh|bash|shell)\s*$")


def marked_blocks(text: str, name: str) -> list[str]:
    """The bodies of the shell blocks marked ``<!-- ci: name -->``, in README order."""
    lines = text.splitlines()
    found: list[str] = []
    for number, line in enumerate(lines):
        mark = _MARK.match(line)
        if not mark or mark.group(1) != name:
            continue
        following = number + 1
        if following >= len(lines) or not _SHELL_FENCE.match(lines[following]):
            raise ValueError(
                f"README.md line {number + 1}: {line.strip()} is not followed by a ```sh block"
            )
        body: list[str] = []
        for inner in lines[following + 1 :]:
            if inner.startswith("```"):
                break
            body.append(inner)
        else:
            raise ValueError(f"README.md line {following + 1}: the ```sh block never ends")
        found.append("\n".join(body) + "\n")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the mark's name, as in <!-- ci: NAME -->")
    parser.add_argument("--key", help=f"replaces {KEY_PLACEHOLDER}")
    parser.add_argument("--url", help=f"replaces {URL_PLACEHOLDER}")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    try:
        blocks = marked_blocks(args.readme.read_text(encoding="utf-8"), args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not blocks:
        print(
            f"error: no block of {args.readme} is marked <!-- ci: {args.name} -->", file=sys.stderr
        )
        return 1
    script = "".join(blocks)
    if args.key:
        script = script.replace(KEY_PLACEHOLDER, args.key)
    if args.url:
        script = script.replace(URL_PLACEHOLDER, args.url.rstrip("/"))
    sys.stdout.write(script)
    return 0


if __name__ == "__main__":
    sys.exit(main())
