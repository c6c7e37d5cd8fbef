#!/usr/bin/env python3
"""Summarize an Autobahn|Testsuite fuzzingclient report (reports/index.json).

Usage: summarize.py INDEX_JSON [--agent NAME] [--expected EXPECTED_JSON] [--strict-close]

Prints the count of cases per behavior (OK, NON-STRICT, INFORMATIONAL, FAILED,
UNIMPLEMENTED), every case whose behavior is not OK/NON-STRICT/INFORMATIONAL,
every case whose close behavior is not OK/INFORMATIONAL, expected cases that
did not run, the time spent per top-level case group, and in how many of the
permessage-deflate cases (12.*, 13.*) the server's handshake response (in the
case's own report file) accepted permessage-deflate.

Exit status 1 when any case has behavior FAILED or UNIMPLEMENTED (wstest says
UNIMPLEMENTED for a compression case when the extension was not negotiated),
behaviorClose FAILED (with --strict-close also WRONG CODE / UNCLEAN), a
compression case ran without permessage-deflate, or an expected case is missing
from the report; 2 when the report is unusable.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict

BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED")
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
CLOSE_PASSING = {"OK", "INFORMATIONAL"}
STRICT_CLOSE_FAILING = {"FAILED", "WRONG CODE", "UNCLEAN"}
COMPRESSION_GROUPS = {12, 13}
DEFLATE_ACCEPTED = re.compile(r"^sec-websocket-extensions:[ \t]*permessage-deflate\b", re.I | re.M)


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in case_id.split("."))


def deflate_negotiated(report_dir: str, entry: dict) -> bool:
    """Whether the case's handshake response accepted permessage-deflate."""
    name = entry.get("reportfile")
    if not name:
        return False
    try:
        with open(os.path.join(report_dir, name), encoding="utf-8") as f:
            response = json.load(f).get("httpResponse") or ""
    except (OSError, ValueError):
        return False
    return bool(DEFLATE_ACCEPTED.search(response))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index")
    ap.add_argument("--agent", help="agent name in index.json (default: the only one)")
    ap.add_argument("--expected", help="JSON list of case ids that should have run")
    ap.add_argument("--strict-close", action="store_true",
                    help="also fail on behaviorClose WRONG CODE or UNCLEAN")
    args = ap.parse_args()

    try:
        with open(args.index, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print(f"autobahn summary: cannot read {args.index}: {e}", file=sys.stderr)
        return 2
    if not index:
        print(f"autobahn summary: {args.index} holds no agent (no case ran?)", file=sys.stderr)
        return 2
    agent = args.agent
    if agent is None:
        if len(index) != 1:
            print(f"autobahn summary: several agents {sorted(index)}; pass --agent", file=sys.stderr)
            return 2
        agent = next(iter(index))
    if agent not in index:
        print(f"autobahn summary: agent {agent!r} not in report (agents: {sorted(index)})", file=sys.stderr)
        return 2
    results: dict = index[agent]

    expected: list[str] = []
    if args.expected:
        with open(args.expected, encoding="utf-8") as f:
            expected = json.load(f)

    counts = Counter(r.get("behavior", "?") for r in results.values())
    close_counts = Counter(r.get("behaviorClose", "?") for r in results.values())
    group_time = defaultdict(int)   # ms per top-level group
    group_n = Counter()
    for cid, r in results.items():
        g = cid.split(".")[0]
        group_time[g] += int(r.get("duration") or 0)
        group_n[g] += 1

    failing: list[str] = []
    notes: list[str] = []
    for cid in sorted(results, key=case_key):
        r = results[cid]
        b, bc = r.get("behavior", "?"), r.get("behaviorClose", "?")
        bad = (b in ("FAILED", "UNIMPLEMENTED") or b not in BEHAVIORS
               or bc == "FAILED" or (args.strict_close and bc in STRICT_CLOSE_FAILING))
        line = (f"  {cid:<10} behavior={b:<14} close={bc:<16} "
                f"remoteCloseCode={r.get('remoteCloseCode')} ({r.get('duration', '?')} ms)")
        if bad:
            failing.append(line)
        elif b not in PASSING or bc not in CLOSE_PASSING:
            notes.append(line)

    missing = [c for c in expected if c not in results]
    compression = [c for c in results if case_key(c)[0] in COMPRESSION_GROUPS]
    report_dir = os.path.dirname(os.path.abspath(args.index))
    undeflated = sorted((c for c in compression if not deflate_negotiated(report_dir, results[c])), key=case_key)

    print(f"Autobahn|Testsuite summary for agent {agent!r}: {len(results)} cases"
          + (f" ({len(expected)} expected)" if expected else ""))
    print("  behavior:      " + ", ".join(f"{b}={counts.get(b, 0)}" for b in BEHAVIORS)
          + "".join(f", {b}={n}" for b, n in counts.items() if b not in BEHAVIORS))
    print("  behaviorClose: " + ", ".join(f"{b}={n}" for b, n in sorted(close_counts.items())))
    print("  time per group (s): " + ", ".join(
        f"{g}:{group_time[g] / 1000:.1f}" for g in sorted(group_time, key=int)))
    if failing:
        print(f"Failing cases ({len(failing)}):")
        print("\n".join(failing))
    if notes:
        print(f"Other cases not plain OK ({len(notes)}, not counted as failures):")
        print("\n".join(notes))
    if compression:
        print(f"permessage-deflate negotiated in {len(compression) - len(undeflated)} of "
              f"{len(compression)} compression cases (12.*, 13.*)")
    if undeflated:
        print(f"Compression cases run without permessage-deflate ({len(undeflated)}): "
              + ", ".join(undeflated[:20]) + (" ..." if len(undeflated) > 20 else ""))
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        print(f"Missing cases ({len(missing)} expected but not in the report; server unreachable or "
              f"wstest stopped early?): {shown}")

    ok = not failing and not missing and not undeflated
    print("RESULT: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
