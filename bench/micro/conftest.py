"""Micro-benchmarks (pytest-benchmark, no sockets).

Run: ``.venv/bin/pytest bench/micro --benchmark-only``. Each benchmark records
a normalised figure (ns per frame, GB/s) in ``RESULTS``; a summary with the
hero-fast / websockets ratios is printed at the end of the run.
"""

from __future__ import annotations

from _benchutil import RESULTS


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("hero-fast micro-benchmark summary")
    for key in sorted(RESULTS):
        unit = "GB/s" if key.startswith("unmask") else "ns/frame"
        tr.write_line(f"{key:<40} {RESULTS[key]:>12.2f} {unit}")
    for size in ("64B", "1KiB", "64KiB"):
        hf = RESULTS.get(f"parse {size} hero-fast")
        for other in ("websockets Protocol", "websockets Frame.parse"):
            ws = RESULTS.get(f"parse {size} {other}")
            if hf and ws:
                tr.write_line(f"parse {size}: {other} / hero-fast = {ws / hf:.1f}x per frame")
    hf, ws = RESULTS.get("unmask 64KiB hero-fast"), RESULTS.get("unmask 64KiB websockets")
    if hf and ws:
        tr.write_line(f"unmask 64KiB: hero-fast {hf:.1f} GB/s, websockets {ws:.1f} GB/s")
