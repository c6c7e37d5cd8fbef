"""bench/chart.png: hero-fast's ratio for every ratio target of the run (log scale), with the
target as a dashed line; green met, red missed."""
from __future__ import annotations

from typing import Any

from .runner import log


def draw(path: str, evald: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no chart")
        return
    items = [e for e in evald if e["value"] is not None and e["target"].den is not None]
    if not items:
        return
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(items)), 5.5))
    for i, e in enumerate(items):
        t, v = e["target"], e["value"]
        ax.bar(i, v, color="tab:green" if e["met"] else "tab:red")
        ax.text(i, v, f"{v:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.plot([i - 0.4, i + 0.4], [t.need, t.need], color="black", linestyle="--", linewidth=1)
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([e["target"].label.replace(": ", ":\n", 1) for e in items], fontsize=6, rotation=30,
                       ha="right")
    ax.set_ylabel("hero-fast / reference (log)")
    ax.set_title("hero-fast against its targets (dashed: the target; green met, red missed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
