"""Shared settings of the fuzz harnesses.

A short run is part of the normal test suite (a few hundred examples each, well under a
minute in all); ``HERO_FAST_FUZZ_EXAMPLES=N`` (``make fuzz``) runs N examples each.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("HERO_FAST_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        derandomize=False,
    )
