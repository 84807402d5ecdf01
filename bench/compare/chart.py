"""A self-contained SVG chart of a comparison run: horizontal bars on log scales.

No plotting library: the run must work on a bare Debian install. Each panel is a list of
(label, value, colour key) bars; values span orders of magnitude (Postfix smtpd to
smtp-sink), hence the logarithmic axes.
"""

import math
from xml.sax.saxutils import escape

COLOURS = {
    "mailwing": "#1f77b4",
    "smtpd": "#d62728",
    "sink": "#7f7f7f",
    "dovecot": "#ff7f0e",
    "p50": "#2ca02c",
    "p99": "#9467bd",
}

WIDTH = 980
LABEL_WIDTH = 360
BAR_HEIGHT = 18
BAR_GAP = 6


def _ticks(low, high):
    ticks = []
    exponent = math.floor(math.log10(low))
    while 10 ** exponent <= high * 1.0001:
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if low <= value <= high:
                ticks.append(value)
        exponent += 1
    return ticks


def _format(value):
    if value >= 1e6:
        return "%.1fM" % (value / 1e6)
    if value >= 1e3:
        return "%.0fk" % (value / 1e3) if value >= 1e4 else "%.1fk" % (value / 1e3)
    if value >= 10:
        return "%.0f" % value
    if value >= 1:
        return "%.1f" % value
    return "%.2f" % value


def _panel(title, unit, bars, top):
    """SVG elements for one panel starting at y=top; returns (elements, height)."""
    out = []
    values = [value for _, value, _ in bars if value and value > 0]
    out.append('<text x="10" y="%d" class="title">%s <tspan class="note">(%s, log scale)</tspan></text>'
               % (top + 18, escape(title), escape(unit)))
    if not values:
        out.append('<text x="10" y="%d" class="note">no data</text>' % (top + 40))
        return out, 60
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    if high <= low:
        high = low * 10
    plot_left = LABEL_WIDTH
    plot_width = WIDTH - LABEL_WIDTH - 90
    y0 = top + 34

    def x_of(value):
        return plot_left + plot_width * (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))

    height = len(bars) * (BAR_HEIGHT + BAR_GAP)
    for tick in _ticks(low, high):
        x = x_of(tick)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>' % (x, y0 - 4, x, y0 + height))
        out.append('<text x="%.1f" y="%d" class="tick">%s</text>' % (x, y0 + height + 14, _format(tick)))
    for index, (label, value, colour) in enumerate(bars):
        y = y0 + index * (BAR_HEIGHT + BAR_GAP)
        out.append('<text x="%d" y="%d" class="label">%s</text>' % (plot_left - 8, y + BAR_HEIGHT - 5,
                                                                    escape(label)))
        if not value or value <= 0:
            out.append('<text x="%d" y="%d" class="note">n/a</text>' % (plot_left + 4, y + BAR_HEIGHT - 5))
            continue
        x = x_of(max(value, low))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                   % (plot_left, y, max(x - plot_left, 1), BAR_HEIGHT, COLOURS.get(colour, "#444")))
        out.append('<text x="%.1f" y="%d" class="value">%s</text>' % (x + 4, y + BAR_HEIGHT - 5, _format(value)))
    return out, 34 + height + 30


def render(title, subtitle, panels):
    """panels: [(title, unit, [(label, value, colour key), ...]), ...] -> SVG text."""
    body = []
    y = 50
    for panel_title, unit, bars in panels:
        elements, height = _panel(panel_title, unit, bars, y)
        body.extend(elements)
        y += height + 10
    head = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">' % (WIDTH, y, WIDTH, y),
        "<style>text{font-family:sans-serif;font-size:12px;fill:#222}"
        ".title{font-size:14px;font-weight:bold}.tick{font-size:10px;fill:#666;text-anchor:middle}"
        ".label{text-anchor:end}.value{font-size:11px}.note{fill:#888;font-style:italic}"
        ".grid{stroke:#ddd;stroke-width:1}.heading{font-size:16px;font-weight:bold}</style>",
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="22" class="heading">%s</text>' % escape(title),
        '<text x="10" y="40" class="note">%s</text>' % escape(subtitle),
    ]
    return "\n".join(head + body + ["</svg>"]) + "\n"
