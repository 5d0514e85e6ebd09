#!/usr/bin/env python3
"""trace_to_svg.py - draw a weft trace (WEFT_TRACE=file.json) as an SVG timeline.

usage: trace_to_svg.py IN.json OUT.svg [--from-ms A] [--to-ms B] [--width PX]
                       [--title TEXT]

One lane per worker; a coloured box per slice (a green thread running on
that worker), labelled with the thread's name where it fits; small marks
for preemptions (above the lane), and for blocks, wake-ups and steals
(below it); a time axis in milliseconds since the start of the trace; a
legend of threads and marks.  --from-ms/--to-ms choose the window (default:
the whole trace, or, when the file holds only the last events of the run
(WEFT_TRACE_MAX_EVENTS), from where they start).  Slices of one thread closer together than half a pixel
are drawn as one box, and at most one mark of a kind per pixel, so a long
trace still gives a small file.  Python 3 standard library only.
"""
import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8cd17d",
           "#d37295", "#a0cbe8", "#ffbe7d", "#86bcb6"]
MARKS = {  # kind: (colour, where, words for the legend)
    "preempt": ("#d62728", "above", "preemption"),
    "block": ("#333333", "below", "thread blocks"),
    "wake": ("#2ca02c", "below", "wake-up (by this worker)"),
    "steal": ("#9467bd", "below", "steal (by this worker)"),
}
LEFT, RIGHT, TOP = 96, 24, 34
LANE_H, LANE_GAP, MARK = 30, 30, 5
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'
CHAR_W = 6.2  # average width of a character at 11 px, for fitting labels


def xml_text(s):
    """s escaped for XML, without the control characters XML 1.0 forbids."""
    return escape("".join(c if c >= " " or c in "\t\n" else "\ufffd" for c in s))


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    lanes, slices, marks = {}, {}, {}
    for ev in events:
        ph, tid = ev.get("ph"), ev.get("tid")
        if ph == "M" and ev.get("name") == "thread_name" and tid is not None:
            lanes[tid] = ev.get("args", {}).get("name", f"worker {tid}")
        elif ph == "X":
            slices.setdefault(tid, []).append(
                (float(ev["ts"]), float(ev["dur"]), ev.get("name", "?")))
        elif ph in ("i", "I") and ev.get("name") in MARKS:
            marks.setdefault(tid, []).append((float(ev["ts"]), ev["name"], ev.get("args", {})))
    for tid in list(slices) + list(marks):
        lanes.setdefault(tid, f"worker {tid}")
    return doc, lanes, slices, marks


def nice_step(span_ms, target=10):
    """A 1-2-5 step giving about `target` ticks over span_ms."""
    raw = span_ms / target
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_ms(v, step):
    decimals = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
    return f"{v:.{decimals}f}"


class Svg:
    def __init__(self):
        self.out = []

    def add(self, s):
        self.out.append(s)

    def text(self, x, y, s, size=11, anchor="start", fill="#222", weight="normal"):
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'fill="{fill}" font-weight="{weight}" {FONT}>{xml_text(s)}</text>')

    def mark(self, kind, x, y):
        colour = MARKS[kind][0]
        if kind == "preempt":  # a triangle pointing down at the lane
            self.add(f'<path d="M{x - MARK:.1f},{y - MARK:.1f}h{2 * MARK}l{-MARK},{MARK}z" '
                     f'fill="{colour}"/>')
        elif kind == "block":  # a bar
            self.add(f'<rect x="{x - 1:.1f}" y="{y:.1f}" width="2" height="{MARK + 2}" '
                     f'fill="{colour}"/>')
        elif kind == "wake":  # a dot
            self.add(f'<circle cx="{x:.1f}" cy="{y + MARK / 2 + 1:.1f}" r="{MARK / 2 + 0.5}" '
                     f'fill="{colour}"/>')
        else:  # steal: a diamond
            h = MARK / 2 + 1
            self.add(f'<path d="M{x:.1f},{y:.1f}l{h},{h}l{-h},{h}l{-h},{-h}z" fill="{colour}"/>')


def merge(ss, t0, t1, px_per_us):
    """Slices inside [t0, t1], clipped, with same-thread neighbours closer
    than half a pixel joined into one box."""
    out = []
    for ts, dur, name in sorted(ss):
        a, b = max(ts, t0), min(ts + dur, t1)
        if b < a or (b == a and dur > 0):
            continue
        if out and out[-1][2] == name and (a - out[-1][1]) * px_per_us < 0.5:
            out[-1][1] = max(out[-1][1], b)
            out[-1][3] += 1
        else:
            out.append([a, b, name, 1])
    return out


def colours_for(slices):
    names = sorted({s[2] for ss in slices.values() for s in ss},
                   key=lambda n: (n != "main", n))
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def draw_lane(svg, y, label, ss, ms, colour, t0, t1, x_of, px_per_us):
    svg.text(LEFT - 8, y + LANE_H / 2 + 4, label, anchor="end", weight="bold")
    svg.add(f'<rect x="{LEFT}" y="{y}" width="{x_of(t1) - LEFT:.1f}" height="{LANE_H}" '
            f'fill="#f4f4f4" stroke="#cccccc" stroke-width="0.5"/>')
    for a, b, name, n in merge(ss, t0, t1, px_per_us):
        x, w = x_of(a), max((b - a) * px_per_us, 0.6)
        tip = f"{name}: {a / 1000:.3f} ms + {(b - a) / 1000:.3f} ms" + (
            f" ({n} slices)" if n > 1 else "")
        svg.add(f'<rect x="{x:.2f}" y="{y + 1}" width="{w:.2f}" height="{LANE_H - 2}" '
                f'fill="{colour[name]}" stroke="#ffffff" stroke-width="0.4">'
                f'<title>{xml_text(tip)}</title></rect>')
        if w > len(name) * CHAR_W + 6:
            svg.text(x + w / 2, y + LANE_H / 2 + 4, name, anchor="middle", fill="#ffffff")
        elif w > 3 * CHAR_W + 6:
            short = name[: int((w - 6) / CHAR_W) - 1] + "…"
            svg.text(x + w / 2, y + LANE_H / 2 + 4, short, anchor="middle", fill="#ffffff")
    seen = set()
    for ts, kind, _args in sorted(ms, key=lambda m: m[0]):
        if not t0 <= ts <= t1:
            continue
        x = x_of(ts)
        if (kind, round(x)) in seen:
            continue
        seen.add((kind, round(x)))
        svg.mark(kind, x, y - 1 if MARKS[kind][1] == "above" else y + LANE_H + 2)


def draw_axis(svg, y, t0, t1, x_of):
    span_ms = (t1 - t0) / 1000
    step = nice_step(span_ms)
    svg.add(f'<line x1="{LEFT}" y1="{y}" x2="{x_of(t1):.1f}" y2="{y}" stroke="#444"/>')
    v = math.ceil(t0 / 1000 / step) * step
    while v <= t1 / 1000 + 1e-9:
        x = x_of(v * 1000)
        svg.add(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 5}" stroke="#444"/>')
        svg.text(x, y + 17, fmt_ms(v, step), anchor="middle")
        v += step
    svg.text(x_of(t1), y + 33, "ms since the start of the trace", anchor="end", fill="#555")


def draw_legend(svg, y, colour, counts, width):
    x = LEFT
    for name, c in colour.items():
        w = 18 + len(name) * CHAR_W + 14
        if x + w > width - RIGHT:
            x, y = LEFT, y + 18
        svg.add(f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{c}"/>')
        svg.text(x + 17, y + 1, name)
        x += w
    x, y = LEFT, y + 22
    for kind, (c, where, desc) in MARKS.items():
        label = f"{desc}: {counts.get(kind, 0)}"
        svg.mark(kind, x + 5, y - 4 if where == "above" else y - 10)
        svg.text(x + 15, y + 1, label)
        x += 24 + len(label) * CHAR_W
        if x > width - RIGHT - 200:
            x, y = LEFT, y + 18
    return y


def render(doc, lanes, slices, marks, t0, t1, width, title):
    px_per_us = (width - LEFT - RIGHT) / (t1 - t0)

    def x_of(t):
        return LEFT + (t - t0) * px_per_us

    colour = colours_for({k: [s for s in v if s[0] <= t1 and s[0] + s[1] >= t0]
                          for k, v in slices.items()})
    tids = sorted(lanes, key=lambda t: (not isinstance(t, int), t))
    svg = Svg()
    svg.text(LEFT, 20, title, size=14, weight="bold")
    y = TOP + 10
    for tid in tids:
        draw_lane(svg, y, lanes[tid], slices.get(tid, []), marks.get(tid, []), colour,
                  t0, t1, x_of, px_per_us)
        y += LANE_H + LANE_GAP
    draw_axis(svg, y - LANE_GAP + 14, t0, t1, x_of)
    counts = {}
    for ms in marks.values():
        for ts, kind, _ in ms:
            if t0 <= ts <= t1:
                counts[kind] = counts.get(kind, 0) + 1
    y = draw_legend(svg, y + 40, colour, counts, width)
    height = y + 16
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}">\n'
            f'<rect width="100%" height="100%" fill="#ffffff"/>')
    return head + "\n" + "\n".join(svg.out) + "\n</svg>\n"


def main(argv):
    ap = argparse.ArgumentParser(description="Draw a weft trace as an SVG timeline.")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--from-ms", type=float, help="start of the window (ms since trace start)")
    ap.add_argument("--to-ms", type=float, help="end of the window (ms since trace start)")
    ap.add_argument("--width", type=int, default=1200, help="width in pixels (default 1200)")
    ap.add_argument("--title", help="title line (default: the input's name and window)")
    opt = ap.parse_args(argv[1:])
    try:
        doc, lanes, slices, marks = load(opt.input)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"trace_to_svg: {opt.input}: {e}", file=sys.stderr)
        return 2
    ends = [ts + dur for ss in slices.values() for ts, dur, _ in ss]
    if not ends:
        print(f"trace_to_svg: {opt.input}: no slices to draw", file=sys.stderr)
        return 1
    other = doc.get("otherData") if isinstance(doc, dict) else None
    kept_from = 0.0   # us: where a file that kept only the last events starts
    if isinstance(other, dict) and isinstance(other.get("window_start_ns"), int) \
            and isinstance(other.get("start_ns"), int):
        kept_from = max(0.0, (other["window_start_ns"] - other["start_ns"]) / 1000.0)
    t0 = opt.from_ms * 1000 if opt.from_ms is not None else kept_from
    t1 = opt.to_ms * 1000 if opt.to_ms is not None else max(ends)
    if t1 <= t0 or opt.width < LEFT + RIGHT + 100:
        print("trace_to_svg: empty window or too narrow", file=sys.stderr)
        return 2
    title = opt.title or (f"{opt.input}: {len(lanes)} worker{'s' if len(lanes) != 1 else ''}, "
                          f"{t0 / 1000:.3f} to {t1 / 1000:.3f} ms"
                          + (" (older events were dropped)" if kept_from > 0 else ""))
    svg = render(doc, lanes, slices, marks, t0, t1, opt.width, title)
    with open(opt.output, "w", encoding="utf-8") as f:
        f.write(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
