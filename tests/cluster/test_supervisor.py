"""The ``--workers`` supervisor's policy, with stand-in workers (tiny scripts told what to
do at each start) so every case is fast and deterministic; no Redis needed.

A supervisor runs in its own process (it installs signal handlers and blocks), started
by ``supervise()``; each start of a stand-in worker takes the next step of ``plan``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hero_fast.cluster.workers import describe_exit

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

T = 15.0  # bound on every wait

# What a stand-in worker does, chosen by the order of its start (the plan's n-th step):
#   serve    report ready, run until SIGTERM, exit 0
#   fail1    exit 1 before ready (e.g. Redis unreachable)
#   fail2    exit 2 before ready (a configuration or code error)
#   sigkill  kill itself with SIGKILL before ready
#   crash    report ready, then exit 1 at once
#   stubborn report ready, ignore the first SIGTERM, exit 0 on the second
#   immortal report ready, ignore SIGTERM
WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from hero_fast.cluster.workers import notify_ready

    state = Path(sys.argv[1])
    plan = os.environ["FAKE_PLAN"].split(",")
    n = 0
    while True:  # claim the next start number
        try:
            os.close(os.open(state / f"start-{n}", os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            n += 1
    mode = plan[n] if n < len(plan) else "serve"
    (state / f"tmp-{n}").write_text(f"{os.getpid()} {mode}")
    os.rename(state / f"tmp-{n}", state / f"pid-{n}")  # seen whole or not at all
    if mode == "fail1":
        sys.exit(1)
    if mode == "fail2":
        sys.exit(2)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    terms = []
    signal.signal(signal.SIGTERM, lambda s, f: terms.append(s))
    notify_ready()
    if mode == "crash":
        sys.exit(1)
    need = {"stubborn": 2, "immortal": 10**9}.get(mode, 1)
    deadline = time.monotonic() + 60
    while len(terms) < need and time.monotonic() < deadline:
        if terms:
            (state / f"term-{n}").write_text(str(len(terms)))
        time.sleep(0.02)
    sys.exit(0)
    """
)

DRIVER = textwrap.dedent(
    """
    import os, sys
    from hero_fast.cluster import workers
    from hero_fast.logs import configure_logging

    configure_logging("info")
    workers.RESTART_MIN = 0.05
    workers.RESTART_MAX = 0.4
    command = [sys.executable, sys.argv[1], sys.argv[2]]
    sys.exit(workers.Supervisor(command, os.environ, int(sys.argv[3]), float(sys.argv[4])).run())
    """
)


class Pool:
    def __init__(self, tmp: Path, plan: str, workers: int, stop_grace: float) -> None:
        self.state = tmp / "state"
        self.state.mkdir(parents=True)
        (tmp / "worker.py").write_text(WORKER)
        (tmp / "driver.py").write_text(DRIVER)
        self.log = tmp / "supervisor.log"
        self._out = open(self.log, "wb")
        env = {**os.environ, "FAKE_PLAN": plan}
        self.proc = subprocess.Popen(
            [sys.executable, str(tmp / "driver.py"), str(tmp / "worker.py"), str(self.state), str(workers),
             str(stop_grace)], env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def worker(self, n: int) -> int:
        """The pid of the n-th start (waits for it)."""
        wait(lambda: (self.state / f"pid-{n}").exists(), f"start {n}", self)
        return int((self.state / f"pid-{n}").read_text().split()[0])

    def starts(self) -> int:
        return len(list(self.state.glob("pid-*")))

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(T)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the supervisor did not exit:\n{self.output()}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # stand-in workers left behind by a failed test
        for pidfile in self.state.glob("pid-*"):
            pid = int(pidfile.read_text().split()[0])
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._out.close()


def wait(check: Callable[[], Any], what: str, pool: Pool | None = None) -> Any:
    deadline = time.monotonic() + T
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {T} s\n{pool.output() if pool else ''}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not yet reaped by its parent) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., Pool]]:
    pools: list[Pool] = []

    def start(plan: str, workers: int = 2, stop_grace: float = 10.0) -> Pool:
        pool = Pool(tmp_path / f"pool{len(pools)}", plan, workers, stop_grace)
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        pool.close()


def test_describe_exit() -> None:
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(2) == "exited with status 2"
    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(-250) == "killed by signal 250"


@pytest.mark.parametrize("failure, status", [("fail2", 2), ("fail1", 1)])
def test_a_worker_failing_before_the_pool_started_stops_it_with_its_status(supervise: Any, failure: str,
                                                                           status: int) -> None:
    pool = supervise(f"serve,{failure}")
    assert pool.wait_exit() == status, pool.output()
    out = pool.output()
    assert f"exited with status {status} before it was ready: the pool failed at startup" in out
    for n in (0, 1):
        assert not alive(pool.worker(n))
    assert pool.starts() == 2  # nothing was restarted


def test_deaths_after_the_start_are_restarted_with_growing_delays_and_siblings_untouched(supervise: Any) -> None:
    # start 2 is the first restart: it kills itself, the next exits 1 before ready (as during a
    # Redis outage), the next reports ready and exits at once, the next serves
    pool = supervise("serve,serve,sigkill,fail1,crash,serve")
    first, second = pool.worker(0), pool.worker(1)
    wait(lambda: "all 2 workers ready" in pool.output(), "pool started", pool)
    os.kill(first, signal.SIGKILL)
    replacement = pool.worker(5)
    wait(lambda: f"pid {replacement}) ready" in pool.output(), "the last replacement ready", pool)
    assert alive(second) and alive(replacement) and pool.proc.poll() is None
    out = pool.output()
    assert f"(pid {first}) killed by signal 9 (SIGKILL)" in out
    assert f"(pid {pool.worker(2)}) killed by signal 9 (SIGKILL)" in out
    assert f"(pid {pool.worker(3)}) exited with status 1" in out
    assert f"(pid {pool.worker(4)}) exited with status 1" in out
    # the delay doubles with each death in a row, up to the cap
    delays = [line.split("restarting in ")[1].split(" s")[0] for line in out.splitlines() if "restarting in" in line]
    assert delays == ["0.05", "0.1", "0.2", "0.4"], out
    assert "death 4 in a row" in out
    os.kill(pool.proc.pid, signal.SIGTERM)
    assert pool.wait_exit() == 0, pool.output()
    assert not alive(second) and not alive(replacement)
    assert "all workers stopped" in pool.output()


def test_a_boot_failure_after_the_start_gives_up_that_slot_only(supervise: Any) -> None:
    pool = supervise("serve,serve,fail2,fail2")
    a, b = pool.worker(0), pool.worker(1)
    wait(lambda: "all 2 workers ready" in pool.output(), "pool started", pool)
    os.kill(a, signal.SIGKILL)
    wait(lambda: "not restarting it, 1 workers remain" in pool.output(), "slot given up", pool)
    time.sleep(0.5)  # several restart delays: nothing else happens
    assert pool.starts() == 3 and alive(b) and pool.proc.poll() is None
    # the last worker meets the same fate: nothing is left, the supervisor exits 2
    os.kill(b, signal.SIGKILL)
    assert pool.wait_exit() == 2, pool.output()
    assert "not restarting it, 0 workers remain" in pool.output()


def test_a_ready_report_just_before_a_death_counts(supervise: Any) -> None:
    # "crash" reports ready and exits 1 at once: not a startup failure, so it is restarted
    pool = supervise("serve,crash")
    wait(lambda: pool.starts() >= 3, "a restart", pool)
    wait(lambda: "all 2 workers ready" in pool.output(), "pool started", pool)
    assert pool.proc.poll() is None and "failed at startup" not in pool.output()
    os.kill(pool.proc.pid, signal.SIGTERM)
    assert pool.wait_exit() == 0, pool.output()


def test_a_second_signal_is_forwarded(supervise: Any) -> None:
    pool = supervise("stubborn,stubborn")
    pids = [pool.worker(0), pool.worker(1)]
    wait(lambda: "all 2 workers ready" in pool.output(), "pool started", pool)
    os.kill(pool.proc.pid, signal.SIGTERM)
    wait(lambda: all((pool.state / f"term-{n}").exists() for n in (0, 1)), "first SIGTERM reached the workers",
         pool)
    time.sleep(0.3)
    assert all(alive(p) for p in pids) and pool.proc.poll() is None
    os.kill(pool.proc.pid, signal.SIGINT)
    assert pool.wait_exit() == 0, pool.output()
    assert "received SIGINT again: forwarding it to 2 workers" in pool.output()
    assert not any(alive(p) for p in pids)


def test_a_worker_that_does_not_stop_is_killed_after_the_grace(supervise: Any) -> None:
    pool = supervise("immortal,serve", stop_grace=0.5)
    stuck = pool.worker(0)
    wait(lambda: "all 2 workers ready" in pool.output(), "pool started", pool)
    os.kill(pool.proc.pid, signal.SIGTERM)
    assert pool.wait_exit() == 0, pool.output()
    assert f"(pid {stuck}) did not stop within 0.5 s; killing it" in pool.output()
    assert not alive(stuck)
