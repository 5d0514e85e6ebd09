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
  - every instant event ("ph": "i") has a name, a tid and ts >= 0.
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


def summary(doc, slices, instants):
    other = doc.get("otherData") or {}
    print(f"workers: {len(slices)} with slices"
          + (f" (of {other['workers']})" if "workers" in other else ""))
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
