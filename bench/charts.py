"""Plain SVG charts of what bench/run-bench.py measured (no dependency: python3 only).

A chart is one or more panels stacked over a shared x axis; each panel has its own y axis
(linear or logarithmic), its series (lines with markers, or bars), optional horizontal
reference lines and shaded x ranges, and the legend under the title.
"""
import html
import math

WIDTH = 860
PANEL_H = 230
MARGIN_L, MARGIN_R, GAP, MARGIN_B = 78, 24, 46, 52
FONT = "font-family='DejaVu Sans, Arial, sans-serif'"
# Colour-blind-safe (Okabe-Ito); the same series keeps its colour in every panel.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
DASHES = {"solid": "", "dashed": "7,4", "dotted": "2,3"}


def esc(text):
    return html.escape(str(text), quote=True)


def wrap(text, width):
    """Lines of at most `width` characters, broken at spaces."""
    lines, line = [], ""
    for word in str(text).split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


def nice_step(span, ticks=5):
    """A 1-2-5 step giving about `ticks` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_num(v):
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:g}k"
    if abs(v) >= 1:
        return f"{v:,.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"
    return f"{v:g}"


class Scale:
    def __init__(self, lo, hi, a, b, log=False):
        self.log = log
        if log:
            lo = max(lo, 1e-3)
            hi = max(hi, lo * 10)
            self.lo, self.hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
        else:
            if hi <= lo:
                hi = lo + 1
            step = nice_step(hi - lo)
            self.lo, self.hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        self.a, self.b = a, b

    def __call__(self, v):
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.a + f * (self.b - self.a)

    def ticks(self):
        if self.log:
            return [10 ** e for e in range(int(round(math.log10(self.lo))), int(round(math.log10(self.hi))) + 1)]
        step = nice_step(self.hi - self.lo)
        n = int(round((self.hi - self.lo) / step))
        return [self.lo + i * step for i in range(n + 1)]


def chart(path, title, xlabel, panels, subtitle="", x_range=None, x_ticks=None):
    """Writes one SVG.

    panels: [{"ylabel": str, "log": bool, "series": [{"label", "points": [(x, y)], "colour": i,
              "dash": "solid"|"dashed"|"dotted", "bars": bool}], "hlines": [(y, label)],
              "shade": [(x0, x1, label)], "ymin": float}]
    """
    xs = [x for p in panels for s in p["series"] for x, _ in s["points"]]
    if x_range:
        xlo, xhi = x_range
    else:
        xlo, xhi = (min(xs), max(xs)) if xs else (0, 1)
    # Legend: every distinct series label once, in rows that fit the width.
    legend, seen = [], set()
    for p in panels:
        for s in p["series"]:
            if s["label"] not in seen:
                seen.add(s["label"])
                legend.append(s)
    rows, row, used = [], [], 0
    for s in legend:
        w = 40 + 7 * len(s["label"])
        if row and MARGIN_L + used + w > WIDTH - MARGIN_R:
            rows.append(row)
            row, used = [], 0
        row.append((used, s))
        used += w
    if row:
        rows.append(row)
    sub_lines = wrap(subtitle, (WIDTH - 40) // 6.6) if subtitle else []
    legend_top = 40 + 16 * len(sub_lines)
    top0 = legend_top + 18 * len(rows) + 12
    bar_slots = sorted({x for p in panels for s in p["series"] if s.get("bars") for x, _ in s["points"]})
    extra = 14 * (label_lines(panels, bar_slots) - 1) if bar_slots else 0
    height = top0 + len(panels) * PANEL_H + (len(panels) - 1) * GAP + MARGIN_B + extra
    x0, x1 = MARGIN_L, WIDTH - MARGIN_R
    if bar_slots:
        xs_scale = None
    else:
        xs_scale = Scale(xlo, xhi, x0, x1)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}' {FONT} font-size='12'>",
           f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
           f"<text x='{WIDTH / 2}' y='22' text-anchor='middle' font-size='16' font-weight='bold'>{esc(title)}</text>"]
    for i, line in enumerate(sub_lines):
        out.append(f"<text x='{WIDTH / 2}' y='{40 + 16 * i}' text-anchor='middle' fill='#444' font-size='11'>{esc(line)}</text>")
    for ri, row in enumerate(rows):
        y = legend_top + 18 * ri
        for dx, s in row:
            lx = MARGIN_L + dx
            colour = COLOURS[s.get("colour", 0) % len(COLOURS)]
            if s.get("bars"):
                out.append(f"<rect x='{lx}' y='{y - 5}' width='14' height='10' fill='{colour}'/>")
            else:
                out.append(f"<line x1='{lx}' y1='{y}' x2='{lx + 22}' y2='{y}' stroke='{colour}' stroke-width='2.5' stroke-dasharray='{DASHES[s.get('dash', 'solid')]}'/>")
            out.append(f"<text x='{lx + 28}' y='{y + 4}'>{esc(s['label'])}</text>")

    for i, p in enumerate(panels):
        top = top0 + i * (PANEL_H + GAP)
        bottom = top + PANEL_H
        ys = [y for s in p["series"] for _, y in s["points"] if y is not None and y == y] + [h for h, _ in p.get("hlines", [])]
        ylo = p.get("ymin", 0 if not p.get("log") else (min(ys) if ys else 1))
        yhi = max(ys) if ys else 1
        ysc = Scale(ylo, yhi * (1.0 if p.get("log") else 1.05), bottom, top, log=p.get("log", False))
        # Shaded x ranges (the overload phase).
        if xs_scale:
            for sx0, sx1, label in p.get("shade", []):
                a, b = xs_scale(max(sx0, xs_scale.lo)), xs_scale(min(sx1, xs_scale.hi))
                out.append(f"<rect x='{a:.1f}' y='{top}' width='{max(0, b - a):.1f}' height='{PANEL_H}' fill='#f3e3d3'/>")
                if i == 0 and label:
                    out.append(f"<text x='{(a + b) / 2:.1f}' y='{top + 14}' text-anchor='middle' fill='#8a4a10'>{esc(label)}</text>")
        # Grid and y ticks.
        for t in ysc.ticks():
            y = ysc(t)
            out.append(f"<line x1='{x0}' y1='{y:.1f}' x2='{x1}' y2='{y:.1f}' stroke='#e4e4e4'/>")
            out.append(f"<text x='{x0 - 6}' y='{y + 4:.1f}' text-anchor='end'>{fmt_num(t)}</text>")
        out.append(f"<text transform='translate({18},{(top + bottom) / 2}) rotate(-90)' text-anchor='middle'>{esc(p['ylabel'])}</text>")
        # x ticks (every panel; the label under the last).
        if xs_scale:
            ticks = x_ticks if x_ticks else xs_scale.ticks()
            for t in ticks:
                x = xs_scale(t)
                out.append(f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{bottom}' stroke='#f0f0f0'/>")
                out.append(f"<text x='{x:.1f}' y='{bottom + 16}' text-anchor='middle'>{fmt_num(t)}</text>")
        out.append(f"<rect x='{x0}' y='{top}' width='{x1 - x0}' height='{PANEL_H}' fill='none' stroke='#333'/>")
        if bar_slots:
            out += bars(p, bar_slots, x0, x1, ysc, bottom)
        out += hlines(p, ysc, x0, x1)
        if bar_slots:
            continue
        for s in p["series"]:
            colour = COLOURS[s.get("colour", 0) % len(COLOURS)]
            pts = [(xs_scale(x), ysc(y)) for x, y in s["points"] if y is not None and y == y]
            if not pts:
                continue
            d = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y) in enumerate(pts))
            out.append(f"<path d='{d}' fill='none' stroke='{colour}' stroke-width='2.2' stroke-dasharray='{DASHES[s.get('dash', 'solid')]}'/>")
            if len(pts) <= 40:
                for x, y in pts:
                    out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'/>")
    out.append(f"<text x='{(x0 + x1) / 2}' y='{height - 12}' text-anchor='middle'>{esc(xlabel)}</text>")
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def hlines(panel, ysc, x0, x1):
    """Reference lines (a bound, a target), labelled at the right on a white ground."""
    out = []
    for h, label in panel.get("hlines", []):
        y = ysc(h)
        out.append(f"<line x1='{x0}' y1='{y:.1f}' x2='{x1}' y2='{y:.1f}' stroke='#555' stroke-dasharray='5,4'/>")
        w = 6.6 * len(label) + 6
        out.append(f"<rect x='{x1 - 4 - w:.1f}' y='{y - 18:.1f}' width='{w:.1f}' height='14' fill='white' fill-opacity='0.85'/>")
        out.append(f"<text x='{x1 - 7}' y='{y - 7:.1f}' text-anchor='end' fill='#333'>{esc(label)}</text>")
    return out


def bars(panel, slots, x0, x1, ysc, bottom):
    """Grouped bars: one group per x slot (a category), one bar per series."""
    out = []
    series = [s for s in panel["series"] if s.get("bars")]
    group_w = (x1 - x0) / max(1, len(slots))
    bar_w = group_w * 0.8 / max(1, len(series))
    for gi, slot in enumerate(slots):
        gx = x0 + gi * group_w + group_w * 0.1
        for si, s in enumerate(series):
            colour = COLOURS[s.get("colour", 0) % len(COLOURS)]
            for x, y in s["points"]:
                if x != slot or y is None or y != y:
                    continue
                top = ysc(y)
                out.append(f"<rect x='{gx + si * bar_w:.1f}' y='{top:.1f}' width='{bar_w - 2:.1f}' height='{bottom - top:.1f}' fill='{colour}'/>")
                out.append(f"<text x='{gx + si * bar_w + bar_w / 2 - 1:.1f}' y='{top - 4:.1f}' text-anchor='middle' font-size='10'>{fmt_num(round(y))}</text>")
        name = panel.get("categories", {}).get(slot, str(slot))
        for li, line in enumerate(wrap(name, max(8, int(group_w / 6.8)))):
            out.append(f"<text x='{x0 + gi * group_w + group_w / 2:.1f}' y='{bottom + 16 + 14 * li}' text-anchor='middle'>{esc(line)}</text>")
    return out


def label_lines(panels, slots):
    """How many lines the longest category name takes under its group of bars."""
    group_w = (WIDTH - MARGIN_L - MARGIN_R) / max(1, len(slots))
    names = [p.get("categories", {}).get(slot, str(slot)) for p in panels for slot in slots]
    return max((len(wrap(n, max(8, int(group_w / 6.8)))) for n in names), default=1)
