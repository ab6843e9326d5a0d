"""Trend charts as inline SVG, drawn on the server: no JavaScript, nothing to download, readable without colour.

Each chart is an `img` with a title and a text description (count, range, latest value) for screen readers; the
page puts the same readings in a table beside it. Lines differ by dash pattern and marker shape as well as colour
(WCAG 1.4.1), and every marker carries a tooltip naming the value, date and source organisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime

from markupsafe import Markup, escape

from sharedcare.web import display as d
from sharedcare.web.record import Series

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 28, 44


def _day_number(value: str) -> float:
    moment = d.parse_moment(value)
    if isinstance(moment, datetime):
        return moment.timestamp() / 86400
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day).timestamp() / 86400
    return 0.0


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 0.5:
        ticks.append(round(value, 6))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def point_text(series: Series, values: tuple[float | None, ...]) -> str:
    shown = [_fmt(v) for v in values if v is not None]
    return ("/".join(shown) if len(values) > 1 else (shown[0] if shown else "")) + f" {series.definition.unit}"


def describe(series: Series) -> str:
    pts = series.points
    if not pts:
        return f"No {series.definition.title.lower()} readings."
    latest = pts[-1]
    return (
        f"{len(pts)} reading{'s' if len(pts) != 1 else ''} from {d.long_date(pts[0].date[:10])} to "
        f"{d.long_date(latest.date[:10])}. Latest {point_text(series, latest.values)} on "
        f"{d.long_date(latest.date[:10])}."
    )


def line_chart(series: Series, chart_id: str, source_name: dict[str, str] | None = None) -> Markup:
    """The SVG for one series; `source_name` maps ODS codes to organisation names for the tooltips."""
    names = source_name or {}
    pts = [p for p in series.points if any(v is not None for v in p.values)]
    if not pts:
        return Markup("")
    xs = [_day_number(p.date) for p in pts]
    values = [v for p in pts for v in p.values if v is not None]
    refs = [r for r, _ in series.definition.reference]
    low, high = min(values + refs), max(values + refs)
    pad = (high - low) * 0.1 or 1
    ticks = nice_ticks(low - pad, high + pad)
    y0, y1 = ticks[0], ticks[-1]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1:
        x0, x1 = x0 - 15, x1 + 15
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    out = [
        f'<svg class="sc-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" focusable="false" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(series.definition.title)} trend</title>',
        f'<desc id="{chart_id}-desc">{escape(describe(series))}</desc>',
    ]
    out += _y_axis(ticks, sy, series.definition.unit)
    out += _x_axis(x0, x1, sx)
    for value, label in series.definition.reference:
        y = sy(value)
        out.append(f'<line class="sc-chart__reference" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="sc-chart__reference-label" x="{LEFT + 6}" y="{y - 5:.1f}">{escape(label)}</text>')
    lines = series.definition.lines or ((series.definition.title, frozenset()),)
    for n, _ in enumerate(lines):
        coords = [
            (sx(x), sy(p.values[n]))
            for x, p in zip(xs, pts, strict=True)
            if n < len(p.values) and p.values[n] is not None
        ]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            out.append(f'<polyline class="sc-chart__line sc-chart__line--{n}" points="{path}"/>')
        out += [_marker(n, cx, cy) for cx, cy in coords]
    out += _tooltips(series, pts, xs, sx, sy, names)
    out.append("</svg>")
    return Markup("".join(out))


def _marker(n: int, cx: float, cy: float) -> str:
    if n == 0:
        return f'<circle class="sc-chart__point sc-chart__point--0" cx="{cx:.1f}" cy="{cy:.1f}" r="3.5"/>'
    s = 3.5
    return (
        f'<rect class="sc-chart__point sc-chart__point--{n}" x="{cx - s:.1f}" y="{cy - s:.1f}" '
        f'width="{2 * s}" height="{2 * s}"/>'
    )


Scale = Callable[[float], float]


def _tooltips(series: Series, pts: list, xs: list[float], sx: Scale, sy: Scale, names: dict[str, str]) -> list[str]:
    """An invisible hit area per reading whose <title> browsers show on hover."""
    out = []
    for x, p in zip(xs, pts, strict=True):
        top = min(sy(v) for v in p.values if v is not None)
        who = names.get(p.source, p.source) if p.source else "Added by the patient"
        label = f"{d.date_time(p.date)}: {point_text(series, p.values)}" + (f" ({p.label})" if p.label else "")
        out.append(
            f'<g class="sc-chart__hit"><title>{escape(label)}, {escape(who)}</title>'
            f'<circle cx="{sx(x):.1f}" cy="{top:.1f}" r="8"/></g>'
        )
    return out


def _y_axis(ticks: list[float], sy: Scale, unit: str) -> list[str]:
    out = []
    for t in ticks:
        y = sy(t)
        out.append(f'<line class="sc-chart__grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="sc-chart__tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    out.append(f'<text class="sc-chart__unit" x="4" y="{TOP - 12}">{escape(unit)}</text>')
    return out


def _x_axis(x0: float, x1: float, sx: Scale) -> list[str]:
    start = datetime.fromtimestamp(x0 * 86400)
    end = datetime.fromtimestamp(x1 * 86400)
    span_days = x1 - x0
    out = [
        f'<line class="sc-chart__axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>'
    ]
    for label, day in _x_ticks(start, end, span_days):
        x = sx(day)
        if LEFT - 1 <= x <= WIDTH - RIGHT + 1:
            out.append(
                f'<text class="sc-chart__tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return out


def _x_ticks(start: datetime, end: datetime, span_days: float) -> list[tuple[str, float]]:
    """Years for long spans, months for short ones, at most about seven labels."""
    out: list[tuple[str, float]] = []
    if span_days > 540:
        step = max(1, math.ceil((end.year - start.year + 1) / 7))
        for year in range(start.year, end.year + 2, step):
            out.append((str(year), datetime(year, 1, 1).timestamp() / 86400))
        return out
    months = int(span_days // 30) + 2
    step = max(1, math.ceil(months / 6))
    year, month = start.year, start.month
    for _ in range(0, months + 1, step):
        moment = datetime(year, month, 1)
        out.append((f"{d.MONTHS[month - 1][:3]} {year}", moment.timestamp() / 86400))
        month += step
        while month > 12:
            month, year = month - 12, year + 1
    if span_days < 45:  # a week or two of home readings: label days instead
        out = []
        day = datetime(start.year, start.month, start.day)
        step_days = max(1, math.ceil(span_days / 6))
        while day <= end:
            out.append((f"{day.day} {d.MONTHS[day.month - 1][:3]}", day.timestamp() / 86400))
            day = datetime.fromtimestamp(day.timestamp() + step_days * 86400)
    return out
