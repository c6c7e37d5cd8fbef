"""Profiles of hero-fast where a target was missed: py-spy (`record --native`) on the server while
the load client runs the scenario, summarised into bench/profiles/<scenario>[-<row>].txt (top
frames and hottest stacks, a few dozen lines: committed with RESULTS.md, which shows the top
frames and links the file). The raw folded stacks stay in the run's work directory."""
from __future__ import annotations

import collections
import glob
import os
import subprocess
import time
from typing import Any

from serverproc import Server, stop

from .privateredis import PrivateRedis
from .runner import log, server_shown, shown
from .scenarios import HERE, client_argv
from .servers import BIN, HF, REPO

PROFILES = os.path.join(HERE, "profiles")


def clear() -> None:
    """Summaries of an earlier run would be linked to nothing (or to the wrong run)."""
    for path in glob.glob(os.path.join(PROFILES, "*.txt")):
        os.unlink(path)


def short(frame: str) -> str:
    """'func (path/file.py:123)' -> 'func (file.py)'."""
    name = frame.strip()
    if "(" in name and name.endswith(")"):
        fn, loc = name[:-1].rsplit(" (", 1)
        return f"{fn} ({os.path.basename(loc.rsplit(':', 1)[0])})"
    return name


def summarize(raw: str) -> dict[str, Any]:
    """Self and inclusive shares per frame, and the hottest stacks, from py-spy's raw output."""
    selfc: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    stacks: collections.Counter[str] = collections.Counter()
    total = 0
    with open(raw) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = [short(x) for x in stack.split(";") if x]
            frames = [x for x in frames if not x.startswith(("process ", "thread "))]
            if not frames:
                continue
            total += int(n)
            selfc[frames[-1]] += int(n)
            for fr in set(frames):
                incl[fr] += int(n)
            stacks[" <- ".join(reversed(frames[-6:]))] += int(n)

    def share(c: collections.Counter[str], k: int) -> list[tuple[str, float]]:
        return [(fr, 100.0 * n / total) for fr, n in c.most_common(k)] if total else []

    python_level = [(fr, p) for fr, p in share(incl, 60) if (".py)" in fr or ".pyx)" in fr) and p < 99.0][:12]
    return {"samples": total, "self": share(selfc, 12), "incl": python_level, "stacks": share(stacks, 8)}


def write_summary(path: str, title: str, command: str, p: dict[str, Any]) -> None:
    lines = [title, f"command: {command}", f"samples: {p['samples']}", "", "top self time (%):"]
    lines += [f"  {pct:5.1f}  {fr}" for fr, pct in p["self"]]
    lines += ["", "top inclusive, Python and Cython frames (%):"]
    lines += [f"  {pct:5.1f}  {fr}" for fr, pct in p["incl"]]
    lines += ["", "hottest stacks, innermost first (last 6 frames) (%):"]
    lines += [f"  {pct:5.1f}  {st}" for st, pct in p["stacks"]]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def profile(srv: Server, sc: str, quick: bool, workdir: str, redis: PrivateRedis | None,
            notes: list[str]) -> dict[str, Any] | None:
    """Start `srv`, load it with scenario `sc`, record it with py-spy; the summary, or None."""
    pyspy = os.path.join(BIN, "py-spy")
    if not os.path.exists(pyspy):
        notes.append("py-spy is not installed in the venv: no profiles")
        return None
    started = srv.start(os.path.join(workdir, "server-profile.log"))
    if not started:
        notes.append(f"profile {sc} on {srv.name}: {srv.broken}")
        return None
    proc, port = started
    secs = 3 if quick else 5
    tag = sc if srv.name == HF else f"{sc}-{srv.name}"
    raw = os.path.join(workdir, f"profile-{tag}.folded")
    cmd = [pyspy, "record", "--native", "-p", str(proc.pid), "-d", str(secs), "--format", "raw", "-o", raw]
    try:
        load = subprocess.Popen(client_argv(sc, srv, port, proc.pid, secs + 3, 0.5), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        log(f"profile {tag}: py-spy for {secs} s")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 30)
        try:
            load.wait(timeout=secs + 30)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()
        if r.returncode != 0 or not os.path.exists(raw):
            notes.append(f"py-spy failed on {tag}: {r.stderr.strip()[-300:]}")
            return None
        p = summarize(raw)
        p["command"] = shown(cmd, port, proc.pid, workdir)
        os.makedirs(PROFILES, exist_ok=True)
        path = os.path.join(PROFILES, f"{tag}.txt")
        title = f"py-spy profile of {srv.name} ({server_shown(srv, workdir, redis)}) in scenario {sc}"
        write_summary(path, title, p["command"], p)
        p["file"] = os.path.relpath(path, REPO)
        return p
    finally:
        stop(proc)

