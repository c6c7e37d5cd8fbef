"""The bench's own redis-server: actionhero needs one, and the hero-fast+redis rows use the same
one, so both go through an identical Redis. Started on a free port without persistence, stopped
by PID; flushed before each actionhero start (it is private, so nothing else lives there).
A Redis given with --redis-url is never flushed: only the run's own key prefix is deleted."""
from __future__ import annotations

import shutil
import subprocess

from serverproc import free_port, stop, wait_port


class PrivateRedis:
    def __init__(self, workdir: str) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.workdir = workdir

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("redis-server") and shutil.which("redis-cli"))

    def start(self) -> bool:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return wait_port(self.proc, self.port, 10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return r.stdout

    def flush(self) -> None:
        self.cli("flushall")

    def calls(self) -> dict[str, int]:
        """Calls per command this Redis has processed so far (INFO commandstats)."""
        out = {}
        for line in self.cli("info", "commandstats").splitlines():
            if line.startswith("cmdstat_") and ":calls=" in line:
                name, rest = line[8:].split(":", 1)
                out[name] = int(rest.split(",", 1)[0].removeprefix("calls="))
        return out

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def forget_keys(url: str, prefix: str) -> int:
    """Delete the keys under `prefix` that the hero-fast+redis rows left in a Redis given with
    --redis-url (one that others may use too: only our own prefix is touched). How many."""
    r = subprocess.run(["redis-cli", "-u", url, "--scan", "--pattern", prefix + "*"], capture_output=True, text=True,
                       timeout=30)
    keys = [k for k in r.stdout.split() if k.startswith(prefix)]
    for i in range(0, len(keys), 500):
        subprocess.run(["redis-cli", "-u", url, "del", *keys[i:i + 500]], capture_output=True, timeout=30)
    return len(keys)
