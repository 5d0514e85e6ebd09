#!/usr/bin/env python3
"""check_trace.py - validate a weft trace (WEFT_TRACE=file.json).

usage: check_trace.py FILE [--quiet]

Checks that FILE is Chrome trace-event JSON in the object format, as weft
writes it:
  - the top level is an object whose "traceEvents" is a list;
  - every complete event ("ph": "X") has a name, a tid, ts >= 0 and dur >= 0;
  - on each tid (worker), the X slices sorted by start do not overlap (a
    tolerance of 0.001 us absorbs the formatting of times);
  - there is at least one X slice;
  - every instant event ("ph": "i") has a name, a tid and ts >= 0;
  - when the file holds only a window of the run (the last
    WEFT_TRACE_MAX_EVENTS records of each worker: otherData's
    window_start_ns is later than start_ns), no event lies before the
    window's start, and the "trace window starts" note is there.
Prints a summary (slices per worker, instant events per kind, busy time per
worker) and exits 0, or prints every violation found and exits 1 (2 when the
file cannot be read as JSON at all).  Python 3 standard library only.
"""
import argparse
import collections
import json
import sys

TOLERANCE_US = 1e-3
MAX_REPORTED = 20


def number(ev, key):
    v = ev.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def check_event(i, ev, errors):
    """Check one event's fields; return (tid, ts, dur, name) for a slice."""
    if not isinstance(ev, dict):
        errors.append(f"event {i}: not an object")
        return None
    ph = ev.get("ph")
    if ph not in ("X", "i", "I"):
        return None
    name, tid, ts = ev.get("name"), ev.get("tid"), number(ev, "ts")
    where = f"event {i} ({ph} {name!r} on tid {tid!r})"
    if not isinstance(name, str) or not name:
        errors.append(f"{where}: no name")
    if tid is None:
        errors.append(f"{where}: no tid")
    if ts is None or ts < 0:
        errors.append(f"{where}: ts {ev.get('ts')!r} is not a number >= 0")
    if ph != "X":
        return None
    dur = number(ev, "dur")
    if dur is None or dur < 0:
        errors.append(f"{where}: dur {ev.get('dur')!r} is not a number >= 0")
        return None
    return (tid, ts if ts is not None else 0.0, dur, name)


def check_overlaps(slices, errors):
    for tid, ss in sorted(slices.items(), key=lambda kv: str(kv[0])):
        ss.sort(key=lambda s: (s[0], s[1]))
        for (a_ts, a_dur, a_name), (b_ts, _, b_name) in zip(ss, ss[1:]):
            if a_ts + a_dur > b_ts + TOLERANCE_US:
                errors.append(
                    f"tid {tid}: slice {a_name!r} [{a_ts:.3f}, {a_ts + a_dur:.3f}] us "
                    f"overlaps {b_name!r} starting at {b_ts:.3f} us "
                    f"(by {a_ts + a_dur - b_ts:.3f} us)")


def window_us(doc):
    """Where the file's window starts, in us since the start of the trace:
    0 when it holds the whole run (or an older file without the field)."""
    other = doc.get("otherData") if isinstance(doc, dict) else None
    if not isinstance(other, dict):
        return 0.0
    start, window = other.get("start_ns"), other.get("window_start_ns")
    if not isinstance(start, int) or not isinstance(window, int) or window <= start:
        return 0.0
    return (window - start) / 1000.0


def check_window(doc, events, errors):
    w = window_us(doc)
    if w <= 0:
        return
    notes = 0
    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or ev.get("ph") not in ("X", "i", "I"):
            continue
        ts = number(ev, "ts")
        if ts is not None and ts < w - TOLERANCE_US:
            errors.append(f"event {i} ({ev.get('ph')} {ev.get('name')!r}) at {ts:.3f} us "
                          f"lies before the window, which starts at {w:.3f} us")
        notes += ev.get("name") == "trace window starts"
    if notes != 1:
        errors.append(f"{notes} 'trace window starts' notes for a window starting at {w:.3f} us")


def summary(doc, slices, instants):
    other = doc.get("otherData") or {}
    print(f"workers: {len(slices)} with slices"
          + (f" (of {other['workers']})" if "workers" in other else ""))
    w = window_us(doc)
    if w > 0 and isinstance(other.get("end_ns"), int):
        print(f"window: the last {(other['end_ns'] - other['window_start_ns']) / 1e6:.3f} ms "
              f"(older events dropped: the last {other.get('max_events_per_worker')} "
              f"records of each worker are kept)")
    if other.get("ended_by"):
        print(f"ended by: {other['ended_by']}")
    for tid, ss in sorted(slices.items(), key=lambda kv: str(kv[0])):
        busy = sum(s[1] for s in ss)
        span = (max(s[0] + s[1] for s in ss) - min(s[0] for s in ss)) if ss else 0.0
        threads = len({s[2] for s in ss})
        pct = 100.0 * busy / span if span > 0 else 0.0
        print(f"  tid {tid}: {len(ss)} slices of {threads} threads, busy {busy / 1000:.3f} ms "
              f"of {span / 1000:.3f} ms ({pct:.1f} %)")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(instants.items())) or "none"
    print(f"instant events: {kinds}")
    if other.get("dropped_events"):
        print(f"dropped events: {other['dropped_events']}")


def check(doc):
    errors = []
    if not isinstance(doc, dict):
        return ["the top level is not an object"], {}, {}
    events = doc.get("traceEvents")
    if not isinstance(events, list):
        return ["traceEvents is missing or not a list"], {}, {}
    slices = collections.defaultdict(list)
    instants = collections.Counter()
    for i, ev in enumerate(events):
        s = check_event(i, ev, errors)
        if s:
            tid, ts, dur, name = s
            slices[tid].append((ts, dur, name))
        elif isinstance(ev, dict) and ev.get("ph") in ("i", "I"):
            instants[ev.get("name")] += 1
    if not any(slices.values()):
        errors.append("no complete (X) slice at all")
    check_overlaps(slices, errors)
    check_window(doc, events, errors)
    return errors, slices, instants


def main(argv):
    ap = argparse.ArgumentParser(description="Validate a weft trace (WEFT_TRACE=file.json).")
    ap.add_argument("file")
    ap.add_argument("--quiet", action="store_true", help="print only problems and the verdict")
    opt = ap.parse_args(argv[1:])
    try:
        with open(opt.file, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_trace: {opt.file}: {e}", file=sys.stderr)
        return 2
    errors, slices, instants = check(doc)
    if not opt.quiet or errors:
        summary(doc if isinstance(doc, dict) else {}, slices, instants)
    for e in errors[:MAX_REPORTED]:
        print(f"check_trace: {e}", file=sys.stderr)
    if len(errors) > MAX_REPORTED:
        print(f"check_trace: ... and {len(errors) - MAX_REPORTED} more", file=sys.stderr)
    if errors:
        print(f"check_trace: {opt.file}: FAILED ({len(errors)} problems)", file=sys.stderr)
        return 1
    print(f"check_trace: {opt.file}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
