"""Small inline SVG charts for the HTML report (no scripts, no external files)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family='Inter, Segoe UI, Helvetica, Arial, sans-serif'"
AXIS = "#6b7280"
GRID = "#e5e7eb"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str
    colors: Sequence[str] | None = None  # a colour per bar, overriding ``color``


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt_tick(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 1080,
    height: int = 300,
    y_label: str = "",
    value_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    show_values: bool = True,
    label_every: int = 1,
    description: str = "",
    legend: Sequence[tuple[str, str]] | None = None,
) -> str:
    """Vertical bars, one group per category and one bar per series (with a legend)."""
    if legend is None:
        legend = [(s.name, s.color) for s in series] if len(series) > 1 else []
    left, right, top, bottom = 56, 12, 30 if legend else 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v or 0 for s in series for v in s.values), default=0)
    ticks = nice_ticks(peak)
    y_max = ticks[-1] or 1
    n = max(len(categories), 1)
    slot = plot_w / n
    bar_w = min(48.0, slot * 0.78 / max(len(series), 1))
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
        f"width='100%' role='img' aria-label='{escape(description)}' {FONT}>"
    ]
    for t in ticks:
        y = top + plot_h - plot_h * t / y_max
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{GRID}' stroke-width='1'/>"
            f"<text x='{left - 8}' y='{y + 4:.1f}' font-size='11' fill='{AXIS}' "
            f"text-anchor='end'>{_fmt_tick(t)}</text>"
        )
    if y_label:
        parts.append(
            f"<text x='14' y='{top + plot_h / 2:.1f}' font-size='11' fill='{AXIS}' "
            f"text-anchor='middle' transform='rotate(-90 14 {top + plot_h / 2:.1f})'>"
            f"{escape(y_label)}</text>"
        )
    group_w = bar_w * len(series)
    for i, cat in enumerate(categories):
        x0 = left + slot * i + (slot - group_w) / 2
        for j, s in enumerate(series):
            v = s.values[i]
            if v is None:
                continue
            h = plot_h * v / y_max
            x = x0 + j * bar_w
            y = top + plot_h - h
            parts.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(bar_w - 2, 1):.1f}' "
                f"height='{h:.1f}' rx='2' fill='{s.colors[i] if s.colors else s.color}'>"
                f"<title>{escape(cat)}: "
                f"{escape(s.name)} {escape(value_format(v))}</title></rect>"
            )
            if show_values and bar_w >= 14:
                parts.append(
                    f"<text x='{x + (bar_w - 2) / 2:.1f}' y='{y - 4:.1f}' font-size='10' "
                    f"fill='#374151' text-anchor='middle'>{escape(value_format(v))}</text>"
                )
        if i % label_every == 0:
            parts.append(
                f"<text x='{left + slot * i + slot / 2:.1f}' y='{top + plot_h + 18}' "
                f"font-size='11' fill='{AXIS}' text-anchor='middle'>{escape(cat)}</text>"
            )
    parts.append(
        f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' "
        f"stroke='{AXIS}' stroke-width='1'/>"
    )
    x = left
    for name, color in legend:
        parts.append(
            f"<rect x='{x}' y='6' width='12' height='12' rx='2' fill='{color}'/>"
            f"<text x='{x + 17}' y='16' font-size='12' fill='#374151'>{escape(name)}</text>"
        )
        x += 30 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    rows: Sequence[tuple[str, float | None, str, str]],
    *,
    width: int = 1080,
    max_value: float = 100.0,
    reference: float | None = None,
    reference_label: str = "",
    description: str = "",
) -> str:
    """Horizontal bars: (label, value or None, colour, text shown after the bar)."""
    left, right, top, row_h = 150, 260, 22 if reference is not None else 8, 34
    plot_w = width - left - right
    height = top + row_h * len(rows) + 24
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
        f"width='100%' role='img' aria-label='{escape(description)}' {FONT}>"
    ]
    for t in (0, 25, 50, 75, 100):
        x = left + plot_w * t / 100
        parts.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + row_h * len(rows)}' "
            f"stroke='{GRID}'/>"
            f"<text x='{x:.1f}' y='{top + row_h * len(rows) + 16}' font-size='11' "
            f"fill='{AXIS}' text-anchor='middle'>{t * max_value / 100:.0f}%</text>"
        )
    for i, (label, value, color, note) in enumerate(rows):
        y = top + i * row_h + 6
        parts.append(
            f"<text x='{left - 10}' y='{y + 15}' font-size='12' fill='#111827' "
            f"text-anchor='end'>{escape(label)}</text>"
        )
        parts.append(
            f"<rect x='{left}' y='{y}' width='{plot_w}' height='22' rx='3' fill='#f3f4f6'/>"
        )
        if value is not None:
            w = plot_w * min(value, max_value) / max_value
            parts.append(
                f"<rect x='{left}' y='{y}' width='{w:.1f}' height='22' rx='3' fill='{color}'>"
                f"<title>{escape(label)}: {value:.1f}%</title></rect>"
            )
        parts.append(
            f"<text x='{left + plot_w + 10}' y='{y + 15}' font-size='12' fill='#374151'>"
            f"{escape(note)}</text>"
        )
    if reference is not None:
        x = left + plot_w * reference / max_value
        parts.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top - 4}' y2='{top + row_h * len(rows)}' "
            f"stroke='#111827' stroke-dasharray='4 3'/>"
            f"<text x='{x:.1f}' y='{top - 8}' font-size='11' fill='#111827' "
            f"text-anchor='middle'>{escape(reference_label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
