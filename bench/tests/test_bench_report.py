"""The targets are issue 14's, evaluated as ratios of one run; docs/benchmarks.md carries the
same summary as bench/RESULTS.md."""
from __future__ import annotations

import argparse
import os
import re
from typing import Any

import pytest
from suite import report
from suite.runner import Outcome
from suite.servers import AH, C_EPOLL, HF, HF_HISTORY, HF_REDIS, PICOWS, RAW, Plan
from suite.targets import TARGETS, evaluate

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)


def run(rate: float, **extra: Any) -> dict[str, Any]:
    return {"msg_per_s": rate, "seconds": 3.0, "errors": 0, **extra}


def results() -> dict[tuple[str, str], list[dict[str, Any]]]:
    r: dict[tuple[str, str], list[dict[str, Any]]] = {
        ("echo16k", HF): [run(90e3)], ("echo16k", PICOWS): [run(40e3)], ("echo16k", RAW): [run(110e3)],
        ("echo16k", C_EPOLL): [run(100e3)],
        ("echo64x16", HF): [run(1.0e6), run(1.1e6), run(0.2e6, errors=3)], ("echo64x16", PICOWS): [run(90e3)],
        ("echo64x16", RAW): [run(1.3e6)], ("echo64x16", C_EPOLL): [run(1.3e6)],
        ("echo64x1", HF): [run(70e3)], ("echo64x1", PICOWS): [run(74e3)],
        ("action-noid", HF): [run(30e3)], ("action-noid", AH): [run(9e3)], ("action-noid", HF_REDIS): [run(28e3)],
        ("action", HF): [run(35e3)], ("action", AH): [run(9e3)],
        ("fanout", HF): [run(3.0e6, sent=100)], ("fanout", C_EPOLL): [run(4.0e6, sent=100)],
        ("roomfanout", HF): [run(1.7e6, sent=100)],
        ("roomfanout", AH): [run(30e3, sent=100, sent_total=120, redis_calls={"publish": 240, "get": 7})],
        ("idle", HF): [{"kib_per_conn": 7.1, "warm": 100, "added": 9900, "rss_before_kib": 1, "rss_after_kib": 2,
                        "failed": 0}],
    }
    return r


def by_label(evald: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(e for e in evald if e["target"].label.startswith(start))


def test_targets_are_issue_14s() -> None:
    needs = {(t.num, t.den): t.need for t in TARGETS if t.issue == 14}
    assert needs[(("echo16k", HF), ("echo16k", PICOWS))] == 2.0
    assert needs[(("echo16k", HF), ("echo16k", RAW))] == 0.75
    assert needs[(("echo64x16", HF), ("echo64x16", PICOWS))] == 10.0
    assert needs[(("echo64x16", HF), ("echo64x16", RAW))] == 0.75
    assert needs[(("echo64x1", HF), ("echo64x1", PICOWS))] == 1.0
    assert needs[(("action-noid", HF), ("action-noid", AH))] == 3.0
    assert needs[(("action", HF), ("action", AH))] == 3.5
    assert needs[(("fanout", HF), ("fanout", C_EPOLL))] == 0.7
    assert needs[(("idle", HF), None)] == 8.0


def test_evaluation_uses_medians_of_runs_without_errors() -> None:
    ev = evaluate(results())
    e = by_label(ev, "echo 64 B x 16: >= 10x")
    assert e["value"] == pytest.approx(1.05e6 / 90e3) and e["met"] is True
    assert by_label(ev, "echo 64 B x 1:")["met"] is False
    assert by_label(ev, "echo 16 KiB: >= 0.75x raw")["met"] is True
    assert by_label(ev, "engine fan-out")["value"] == pytest.approx(0.75)
    assert by_label(ev, "idle memory")["met"] is True
    assert by_label(ev, "room fan-out with history")["met"] is None  # not run: not measured, not missed
    assert by_label(ev, "recovery")["met"] is None


def test_recovery_target_needs_every_client_and_nothing_lost() -> None:
    r = results()
    ok = {"clients": 1000, "recovered": 1000, "p99_s": 1.2, "errors": 0}
    r[("recovery", HF)] = [ok]
    assert by_label(evaluate(r), "recovery")["met"] is True
    r[("recovery", HF)] = [{**ok, "recovered": 999, "errors": 1}]
    assert by_label(evaluate(r), "recovery")["met"] is False
    r[("recovery", HF)] = [{**ok, "p99_s": 2.5}]
    assert by_label(evaluate(r), "recovery")["met"] is False
    r[("roomfanout", HF_HISTORY)] = [run(1.2e6)]
    assert by_label(evaluate(r), "room fan-out with history")["value"] == pytest.approx(1.2 / 1.7)


def test_summary_states_limits_redis_and_in_flight_and_syncs_into_docs(tmp_path: Any) -> None:
    out = Outcome()
    out.results.update(results())
    calls = {("echo64x16", HF): {"writes": 0.06, "reads": 0.06}, ("echo64x16", PICOWS): {"writes": 1.0, "reads": 0.06}}
    a = argparse.Namespace(quick=True, repeat=1, duration=1.5, warmup=0.5)
    path = tmp_path / "RESULTS.md"
    plan = Plan(via_redis={AH}, counted_redis={AH})
    block = report.write(str(path), a, out, {}, plan, calls, str(tmp_path))
    assert report.shared_block(path.read_text()) == block
    assert "0.90x C epoll, 0.82x raw uvloop" in block  # hero-fast as a fraction of each limit
    assert "picows 2.25x" in block                        # echo 16 KiB ratio to the peer
    assert "actionhero 2.00" in block                     # PUBLISH per say, measured
    assert "hero-fast 0.06, picows 1.00" in block         # writes per message at 16 in flight
    assert "```" not in block and not re.search(r"\]\(", block)  # reads the same from docs/ and bench/
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\nintro\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    assert report.sync_docs(block, str(docs))
    text = docs.read_text()
    assert report.shared_block(text) == block and text.startswith("# Benchmarks\n\nintro") and text.endswith("after\n")


def test_docs_benchmarks_carries_the_summary_of_bench_results() -> None:
    with open(os.path.join(BENCH, "RESULTS.md"), encoding="utf-8") as f:
        results_md = report.shared_block(f.read())
    with open(os.path.join(REPO, "docs", "benchmarks.md"), encoding="utf-8") as f:
        docs = report.shared_block(f.read())
    assert results_md is not None, "bench/RESULTS.md has no summary block: rerun `make bench`"
    assert docs == results_md, "docs/benchmarks.md and bench/RESULTS.md disagree: rerun `make bench`"
