"""Small inline-SVG charts: a scatter map, overlaid histograms, grouped bars.

Drawn as plain SVG strings so the report is one self-contained file that renders offline, with no
chart library and no script. Every chart carries ``data-chart`` (what it shows) and ``<title>``
elements, which browsers show as tooltips.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

COLORS = {"dataset": "#d9480f", "real": "#1c7ed6"}
FALLBACK = ["#2b8a3e", "#862e9c", "#e67700", "#495057"]
WIDTH, HEIGHT, PAD = 520, 300, 36


def color(name: str, index: int) -> str:
    return COLORS.get(name, FALLBACK[index % len(FALLBACK)])


def _frame(kind: str, label: str, body: str, legend: Sequence[str]) -> str:
    items = "".join(
        f'<g transform="translate({PAD + 110 * i},14)"><rect width="12" height="12" '
        f'fill="{color(name, i)}"/><text x="17" y="11">{escape(name)}</text></g>'
        for i, name in enumerate(legend)
    )
    return (
        f'<svg class="chart" data-chart="{kind}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<rect class="bg" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>{items}{body}</svg>'
    )


def _axis(x_label: str, y_label: str) -> str:
    bottom, right = HEIGHT - PAD, WIDTH - 10
    return (
        f'<line class="axis" x1="{PAD}" y1="{bottom}" x2="{right}" y2="{bottom}"/>'
        f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{bottom}"/>'
        f'<text class="axis-label" x="{(PAD + right) / 2}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="axis-label" x="12" y="{(PAD + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(PAD + bottom) / 2})">{escape(y_label)}</text>'
    )


def scatter(series: dict[str, list[tuple[float, float]]], label: str) -> str:
    points = [p for values in series.values() for p in values]
    if not points:
        return _frame("scatter", label, "", [])
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (WIDTH - PAD - 20) / ((x1 - x0) or 1)
    sy = (HEIGHT - 2 * PAD - 10) / ((y1 - y0) or 1)
    body = []
    for i, (name, values) in enumerate(series.items()):
        dots = "".join(
            f'<circle cx="{PAD + 5 + (x - x0) * sx:.1f}" '
            f'cy="{HEIGHT - PAD - 5 - (y - y0) * sy:.1f}" r="2.6"/>'
            for x, y in values
        )
        body.append(
            f'<g class="series" fill="{color(name, i)}" fill-opacity="0.55">'
            f"<title>{escape(name)}: {len(values)} records</title>{dots}</g>"
        )
    return _frame("scatter", label, _axis("PC 1", "PC 2") + "".join(body), list(series))


def histogram(series: dict[str, list[float]], label: str, x_label: str, bins: int = 24) -> str:
    values = [v for vs in series.values() for v in vs]
    if not values:
        return _frame("histogram", label, "", [])
    high = float(np.percentile(values, 99)) if len(values) > 20 else max(values)
    edges = np.linspace(min(values), max(high, min(values) + 1), bins + 1)
    shares = {}
    for name, vs in series.items():
        counts, _ = np.histogram(np.clip(vs, edges[0], edges[-1]), bins=edges)
        shares[name] = counts / max(1, len(vs))
    top = max(float(s.max()) for s in shares.values()) or 1.0
    width = (WIDTH - PAD - 14) / bins
    body = [_axis(x_label, "share of records")]
    for i, (name, share) in enumerate(shares.items()):
        bars = "".join(
            f'<rect x="{PAD + 2 + b * width:.1f}" y="{HEIGHT - PAD - h:.1f}" '
            f'width="{max(width - 1, 1):.1f}" height="{h:.1f}"><title>{escape(name)} '
            f"{edges[b]:.0f}–{edges[b + 1]:.0f}: {share[b]:.1%}</title></rect>"
            for b in range(bins)
            if (h := share[b] / top * (HEIGHT - 2 * PAD - 14)) > 0
        )
        body.append(f'<g fill="{color(name, i)}" fill-opacity="0.5">{bars}</g>')
    ticks = "".join(
        f'<text class="tick" x="{PAD + 2 + b * width:.1f}" y="{HEIGHT - PAD + 12}">'
        f"{edges[b]:.0f}</text>"
        for b in range(0, bins + 1, max(1, bins // 6))
    )
    return _frame("histogram", label, "".join(body) + ticks, list(series))


def bars(series: dict[str, dict[str, float]], label: str, y_label: str = "records") -> str:
    categories = list(dict.fromkeys(c for counts in series.values() for c in counts))
    if not categories:
        return _frame("bars", label, "", [])
    top = max(v for counts in series.values() for v in counts.values()) or 1
    group = (WIDTH - PAD - 20) / len(categories)
    width = group * 0.8 / max(1, len(series))
    body = [_axis("", y_label)]
    for c, category in enumerate(categories):
        for i, (name, counts) in enumerate(series.items()):
            value = counts.get(category, 0)
            h = value / top * (HEIGHT - 2 * PAD - 14)
            x = PAD + 4 + c * group + i * width
            body.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{max(width - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{color(name, i)}"><title>{escape(name)} '
                f"{escape(category)}: {value:g}</title></rect>"
            )
        body.append(
            f'<text class="tick" x="{PAD + 4 + c * group + group * 0.4:.1f}" '
            f'y="{HEIGHT - PAD + 13}" text-anchor="middle">{escape(category[:14])}</text>'
        )
    return _frame("bars", label, "".join(body), list(series))
