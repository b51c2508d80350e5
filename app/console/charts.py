"""Server-rendered SVG charts: no JavaScript, readable by screen readers (a title, a description and a
text label on every bar), and the same figures are shown in a table beside each chart."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["bar_chart"]

_PALETTE = ("#1f5f8b", "#2e8b57", "#b8860b", "#8b3a62", "#4b6b2f", "#6a5acd", "#a0522d", "#2f4f4f")


def bar_chart(
    title: str, bars: Sequence[tuple[str, int]], *, unit: str = "", chart_id: str = "chart", width: int = 680
) -> Markup:
    """A horizontal bar chart of ``(label, value)``; values are non-negative integers."""
    row, label_w, gap = 28, 290, 6
    height = max(1, len(bars)) * row + 10
    top = max((v for _, v in bars), default=0) or 1
    bar_space = width - label_w - 110
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-labelledby="{escape(chart_id)}-t '
        f'{escape(chart_id)}-d" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">'
        + escape("; ".join(f"{label}: {_n(value)}{unit}" for label, value in bars))
        + "</desc>",
    ]
    for i, (label, value) in enumerate(bars):
        y = 5 + i * row
        w = round(bar_space * value / top) if value else 0
        color = _PALETTE[i % len(_PALETTE)]
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{value}">'
            f'<text x="{label_w - gap}" y="{y + row / 2 + 4:.0f}" text-anchor="end" font-size="13" '
            f'fill="#222">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1) if value else 0}" height="{row - 8}" '
            f'fill="{color}" rx="2"></rect>'
            f'<text x="{label_w + w + gap}" y="{y + row / 2 + 4:.0f}" font-size="13" fill="#222">'
            f"{_n(value)}{escape(unit)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _n(value: int) -> str:
    """Vietnamese digit grouping: 1.234.567."""
    return f"{value:,}".replace(",", ".")
