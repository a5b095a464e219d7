"""Server-side SVG charts for the console (no JavaScript): time series, intervals, bars.

Pure functions from plain data to an SVG string. Every text is escaped; every chart carries a
``<title>`` and ``aria-label`` so a screen reader announces what it shows (the pages print the numbers
in a table beside it as well).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569")


@dataclass(frozen=True, slots=True)
class Point:
    """One observation of a series; ``marked`` draws an anomaly mark on it."""

    at: datetime
    value: float
    marked: bool = False
    low: float | None = None
    high: float | None = None


def _ts(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.1e}" if abs(value) < 0.01 else f"{value:,.0f}"
    return f"{value:.3g}"


def _time_label(ts: float, span_s: float) -> str:
    at = datetime.fromtimestamp(ts, UTC)
    if span_s <= 2 * 86400:
        return at.strftime("%H:%M")
    return at.strftime("%m-%d")


def _frame(title: str, width: int, height: int, body: str) -> str:
    t = escape(title)
    return (f'<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {width} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{t}</title>{body}</svg>")


def time_series(title: str, series: Mapping[str, Sequence[Point]], *, width: int = 760, height: int = 240,
                log_y: bool = False, hline: float | None = None, hline_label: str = "",
                y_label: str = "", lines: bool = True) -> str:
    """Lines (one per series) over time, with optional per-point bands (``low``/``high``), anomaly marks
    and a horizontal reference line (e.g. a significance level). ``lines=False`` draws the points only
    (observations that are not a continuous series). Empty data draws a "no data" note."""
    left, right, top, bottom = 64, 150, 14, 30
    pw, ph = width - left - right, height - top - bottom
    pts = [p for s in series.values() for p in s]
    if not pts:
        return _frame(title, width, 40, f'<text x="{left}" y="24" class="muted">no data in this period</text>')

    def yv(v: float) -> float:
        return math.log10(max(v, 1e-300)) if log_y else v

    values = [yv(p.value) for p in pts] + [yv(v) for p in pts for v in (p.low, p.high) if v is not None]
    if hline is not None:
        values.append(yv(hline))
    lo, hi = min(values), max(values)
    if not log_y:
        lo = min(lo, 0.0)
    if hi - lo < 1e-12:
        hi, lo = hi + 1.0, lo - (0.0 if not log_y else 1.0)
    t0, t1 = min(_ts(p.at) for p in pts), max(_ts(p.at) for p in pts)
    if t1 - t0 < 1:
        t0, t1 = t0 - 30, t1 + 30

    def x(at: datetime) -> float:
        return left + (_ts(at) - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return top + (1 - (yv(v) - lo) / (hi - lo)) * ph

    out = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>']
    for i in range(5):  # y grid and labels
        gv = lo + (hi - lo) * i / 4
        gy = top + (1 - i / 4) * ph
        label = _fmt(10 ** gv) if log_y else _fmt(gv)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{gy:.1f}" y2="{gy:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end" class="tick">{escape(label)}</text>')
    for i in range(5):  # x ticks
        tt = t0 + (t1 - t0) * i / 4
        gx = left + pw * i / 4
        out.append(f'<text x="{gx:.1f}" y="{height - 10}" text-anchor="middle" class="tick">'
                   f"{escape(_time_label(tt, t1 - t0))}</text>")
    if y_label:
        out.append(f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" '
                   f'text-anchor="middle" class="tick">{escape(y_label)}</text>')
    if hline is not None:
        hy = y(hline)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{hy:.1f}" y2="{hy:.1f}" class="ref"/>'
                   f'<text x="{left + pw - 4}" y="{hy - 4:.1f}" text-anchor="end" class="tick">'
                   f"{escape(hline_label)}</text>")
    for n, (name, pts_) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        ordered = sorted(pts_, key=lambda p: _ts(p.at))
        for p in ordered:
            if p.low is not None and p.high is not None:
                out.append(f'<line x1="{x(p.at):.1f}" x2="{x(p.at):.1f}" y1="{y(p.low):.1f}" y2="{y(p.high):.1f}" '
                           f'stroke="{color}" class="band"/>')
        if lines and len(ordered) > 1:
            path = " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in ordered)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" class="line"/>')
        for p in ordered:
            if p.marked:
                out.append(f'<circle cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="4.5" class="mark">'
                           f"<title>{escape(name)} {escape(_fmt(p.value))} at {p.at.isoformat()}</title></circle>")
            elif len(ordered) <= 60:
                out.append(f'<circle cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="2.2" fill="{color}"/>')
        ly = top + 12 + n * 16
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{left + pw + 24}" y="{ly + 1}" class="legend">{escape(name[:22])}</text>')
    return _frame(title, width, height, "".join(out))


def intervals(title: str, rows: Sequence[tuple[str, float, float, float]], *, width: int = 760,
              lo: float = 0.0, hi: float = 1.0) -> str:
    """One row per label: a point estimate with its interval (e.g. a cohort's rate and 95 % CI)."""
    row_h, left, right, top = 26, 180, 30, 10
    height = top + row_h * max(1, len(rows)) + 26
    pw = width - left - right
    if not rows:
        return _frame(title, width, 60, '<text x="10" y="30" class="muted">no data</text>')
    lo = min([lo] + [r[2] for r in rows])
    hi = max([hi] + [r[3] for r in rows])
    span = hi - lo or 1.0

    def x(v: float) -> float:
        return left + (v - lo) / span * pw

    out = []
    for i in range(5):
        v = lo + span * i / 4
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top}" y2="{height - 22}" class="grid"/>'
                   f'<text x="{x(v):.1f}" y="{height - 8}" text-anchor="middle" class="tick">{_fmt(v)}</text>')
    for n, (label, value, low, high) in enumerate(rows):
        cy = top + row_h * n + row_h / 2
        color = PALETTE[n % len(PALETTE)]
        out.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" class="legend">{escape(label[:28])}</text>'
                   f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{color}" '
                   f'class="ci"/><circle cx="{x(value):.1f}" cy="{cy:.1f}" r="4" fill="{color}">'
                   f"<title>{escape(label)}: {_fmt(value)} [{_fmt(low)}, {_fmt(high)}]</title></circle>")
    return _frame(title, width, height, "".join(out))


def bars(title: str, counts: Mapping[str, int], *, width: int = 360) -> str:
    """Horizontal bars, one per label."""
    row_h, left, right = 22, 110, 50
    height = row_h * max(1, len(counts)) + 8
    if not counts:
        return _frame(title, width, 40, '<text x="10" y="24" class="muted">none</text>')
    top = max(counts.values()) or 1
    pw = width - left - right
    out = []
    for n, (label, value) in enumerate(counts.items()):
        y = 4 + n * row_h
        w = pw * value / top
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" class="legend">{escape(label)}</text>'
                   f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" class="bar sev-{escape(label)}"/>'
                   f'<text x="{left + w + 4:.1f}" y="{y + 14}" class="tick">{value}</text>')
    return _frame(title, width, height, "".join(out))
