"""Inline SVG charts for the HTML report: no script, no external asset, prints as drawn.

``bar_chart`` draws one horizontal bar per label (the largest first), ``column_chart`` one
vertical bar per time bucket in order. Every text goes through ``html.escape``. No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 680
BAR_COLOR = "#2563eb"
MAX_BARS = 15
_LABEL_W = 230
_ROW_H = 22


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    """Horizontal bars, the ``MAX_BARS`` largest values, with their numbers."""
    pairs = sorted(zip(labels, values, strict=True), key=lambda p: (-p[1], p[0]))[:MAX_BARS]
    if not pairs:
        return ""
    top = max(v for _l, v in pairs) or 1.0
    plot_w = WIDTH - _LABEL_W - 60
    height = 28 + _ROW_H * len(pairs)
    parts = [_open(height, title)]
    for i, (label, value) in enumerate(pairs):
        y = 24 + i * _ROW_H
        width = max(1.0, plot_w * value / top)
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {_number(value)}</title>'
            f'<text x="{_LABEL_W - 8}" y="{y + 14}" text-anchor="end" class="label">'
            f"{escape(_shorten(label, 34))}</text>"
            f'<rect x="{_LABEL_W}" y="{y + 3}" width="{width:.1f}" height="{_ROW_H - 6}" '
            f'fill="{BAR_COLOR}" rx="2"/>'
            f'<text x="{_LABEL_W + width + 6:.1f}" y="{y + 14}" class="value">'
            f"{_number(value)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    """Vertical bars in the given order (time buckets), labelled at both ends."""
    if not labels:
        return ""
    height, left, bottom, top_pad = 210, 48, 36, 26
    plot_w, plot_h = WIDTH - left - 12, height - bottom - top_pad
    top = max(values) or 1.0
    step = plot_w / len(values)
    bar_w = min(max(1.0, step * 0.8), 48.0)  # a lone bucket stays a bar, not a wall
    parts = [
        _open(height, title),
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{WIDTH - 12}" y2="{top_pad + plot_h}" '
        'class="axis"/>',
        f'<text x="{left - 6}" y="{top_pad + 8}" text-anchor="end" class="value">'
        f"{_number(top)}</text>",
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" class="value">0</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = left + i * step + (step - bar_w) / 2
        parts.append(
            f'<rect class="column" x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" '
            f'width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" fill="{BAR_COLOR}">'
            f"<title>{escape(label)}: {_number(value)}</title></rect>"
        )
    base = top_pad + plot_h + 16
    parts.append(f'<text x="{left}" y="{base}" class="label">{escape(labels[0])}</text>')
    if len(labels) > 1:
        parts.append(
            f'<text x="{WIDTH - 12}" y="{base}" text-anchor="end" class="label">'
            f"{escape(labels[-1])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="0" y="14" class="chart-title">{escape(title)}</text>'
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


__all__ = ["bar_chart", "column_chart"]
