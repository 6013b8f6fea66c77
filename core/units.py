"""Human-readable sizes for messages."""

from __future__ import annotations


def format_size(size_bytes: int) -> str:
    """``16 MiB``, ``256 KiB`` or ``1000 bytes``: the largest unit that divides evenly."""
    if size_bytes >= 1 << 20 and size_bytes % (1 << 20) == 0:
        return f"{size_bytes >> 20} MiB"
    if size_bytes >= 1 << 10 and size_bytes % (1 << 10) == 0:
        return f"{size_bytes >> 10} KiB"
    return f"{size_bytes} bytes"
