"""Charts drawn on the server: SVG that needs no script and no file from elsewhere.

A chart is one ``<svg role="img">`` named by its ``<title>`` and summed up by its
``<desc>``; each bar has a ``<title>`` of its own (a tooltip) and says what it is in
``data-series``, ``data-hour`` and ``data-value``. Colours are CSS classes
(``hm-c0`` ... ``hm-c7``) that the dashboard's stylesheet maps to colours for the
admin's light and dark themes; text and grid lines use the admin's own variables.
The page puts a table with the same numbers next to each chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

#: Distinct colour classes (hm-c0 ... hm-c7); further series reuse the last one.
COLOURS = 8

WIDTH = 720
HEIGHT = 240
LEFT = 48  # room for the y axis' labels
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the x axis' labels


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: Sequence[int]
    colour: int

    @property
    def css_class(self) -> str:
        return f"hm-c{min(self.colour, COLOURS - 1)}"


@dataclass(frozen=True)
class Bar:
    """One x position: its key (``data-hour``), its axis label (or ""), its tooltip."""

    key: str
    label: str
    title: str


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (>= 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def stacked_bars(
    *, chart_id: str, title: str, description: str, bars: Sequence[Bar], series: Sequence[Series]
) -> SafeString:
    """A stacked bar chart: one bar per entry of ``bars``, ``series`` stacked in order."""
    count = len(bars)
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    # Whole numbers on the y axis, at most five of them past 0.
    highest = max(totals, default=0)
    step = nice_ceiling(math.ceil(highest / 4))
    top = step * max(1, math.ceil(highest / step))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(count, 1)
    bar_width = max(slot * 0.8, 1.0)

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / top)

    parts: list[str] = [
        format_html(
            '<svg class="hm-chart" id="{}" role="img" aria-labelledby="{}-title {}-desc" '
            'viewBox="0 0 {} {}" preserveAspectRatio="xMidYMid meet" focusable="false">',
            chart_id,
            chart_id,
            chart_id,
            WIDTH,
            HEIGHT,
        ),
        format_html('<title id="{}-title">{}</title>', chart_id, title),
        format_html('<desc id="{}-desc">{}</desc>', chart_id, description),
    ]
    # The y axis, with grid lines.
    parts.append('<g class="hm-axis" aria-hidden="true">')
    for value in range(0, top + 1, step):
        parts.append(
            format_html(
                '<line class="hm-grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                _n(y(value)),
                _n(y(value)),
                LEFT - 6,
                _n(y(value)),
                value,
            )
        )
    for index, bar in enumerate(bars):
        if bar.label:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle">{}</text>',
                    _n(LEFT + slot * (index + 0.5)),
                    HEIGHT - 8,
                    bar.label,
                )
            )
    parts.append("</g>")
    # The bars, one group per series, stacked from the bottom in the order given. Up to
    # 168 x 8 of them: written with f-strings, each text escaped once, not per bar.
    keys = [escape(bar.key) for bar in bars]
    titles = [escape(bar.title) for bar in bars]
    width = _n(bar_width)
    lefts = [_n(LEFT + slot * index + (slot - bar_width) / 2) for index in range(count)]
    base = [0] * count
    for s in series:
        label = escape(s.label)
        parts.append(f'<g class="{escape(s.css_class)}" data-series="{escape(s.key)}">')
        for index, value in enumerate(s.values):
            if not value:
                continue
            top_y, bottom_y = y(base[index] + value), y(base[index])
            parts.append(
                f'<rect x="{lefts[index]}" y="{_n(top_y)}" width="{width}" '
                f'height="{_n(bottom_y - top_y)}" data-hour="{keys[index]}" '
                f'data-value="{int(value)}"><title>{titles[index]}: {int(value)} {label}'
                "</title></rect>"
            )
            base[index] += value
        parts.append("</g>")
    parts.append("</svg>")
    return mark_safe("".join(str(part) for part in parts))  # noqa: S308 - each part escaped


def share_bar(
    *, chart_id: str, title: str, parts: Sequence[tuple[str, str, int, int]]
) -> SafeString:
    """One horizontal bar split by share: ``parts`` are (key, label, count, colour)."""
    total = sum(count for _key, _label, count, _colour in parts)
    summary = ", ".join(f"{label} {count}" for _key, label, count, _colour in parts)
    pieces: list[str] = [
        format_html(
            '<svg class="hm-share" id="{}" role="img" aria-labelledby="{}-title" '
            'viewBox="0 0 {} 24" preserveAspectRatio="none" focusable="false">'
            '<title id="{}-title">{}: {}</title>',
            chart_id,
            chart_id,
            WIDTH,
            chart_id,
            title,
            summary,
        )
    ]
    x = 0.0
    for key, label, count, colour in parts:
        if not count:
            continue
        width = WIDTH * count / total
        pieces.append(
            format_html(
                '<rect class="hm-c{}" x="{}" y="0" width="{}" height="24" data-series="{}" '
                'data-value="{}"><title>{}: {}</title></rect>',
                min(colour, COLOURS - 1),
                _n(x),
                _n(width),
                key,
                count,
                label,
                count,
            )
        )
        x += width
    pieces.append("</svg>")
    return mark_safe("".join(str(piece) for piece in pieces))  # noqa: S308 - each part escaped


def table_rows(rows: Sequence[tuple[str, Sequence[int]]]) -> SafeString:
    """``<tr>`` elements: a row header, then a number per column."""
    return mark_safe(  # noqa: S308 - the header escaped, the rest integers
        "".join(
            f'<tr><th scope="row">{escape(title)}</th>'
            + "".join(f'<td class="hm-num">{int(value)}</td>' for value in values)
            + "</tr>"
            for title, values in rows
        )
    )


def _n(value: float) -> str:
    """A coordinate: a tenth of a unit is finer than any screen shows the chart."""
    return f"{value:.1f}"


__all__ = ["COLOURS", "Bar", "Series", "nice_ceiling", "share_bar", "stacked_bars", "table_rows"]
