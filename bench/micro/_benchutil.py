"""Shared by the micro-benchmarks: normalised results for the end-of-run summary."""

from __future__ import annotations

RESULTS: dict[str, float] = {}


def record(benchmark, key: str, per_round_units: float, unit: str) -> None:
    """Store the median time per unit (``ns/frame``) or throughput (``GB/s``)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: nothing measured
        return
    median = stats.stats.median
    if unit == "GB/s":
        value = per_round_units / median / 1e9
    else:
        value = median / per_round_units * 1e9
    RESULTS[key] = value
    benchmark.extra_info[unit] = round(value, 3)
