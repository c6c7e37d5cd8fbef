#!/usr/bin/env bash
# Run the Autobahn fuzzing client (run.sh) against hero-fast's own echo server
# (python -m hero_fast.echo: permessage-deflate on), started here on a free loopback
# port and stopped by its PID when the run ends.
#
# Usage: conformance/autobahn/against_echo.sh [CASES]
#   CASES   as run.sh takes them (default: the cases of fuzzingclient.json, 1.* .. 10.*)
#
# Environment: PYTHON (default: python3) runs the echo server and must import hero_fast;
# run.sh's AUTOBAHN_* variables. Exit status: run.sh's (0 = every case passed).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
LOG="$(mktemp "${TMPDIR:-/tmp}/hero-fast-echo.XXXXXX")"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$PYTHON" -m hero_fast.echo --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
SERVER=$!
stop() {
    kill -TERM "$SERVER" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -f "$LOG"
}
trap stop EXIT

set +e
"$HERE/run.sh" 127.0.0.1 "$PORT" "$@"
rc=$?
set -e
if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "[autobahn/against_echo] the echo server is gone; its output:" >&2
    cat "$LOG" >&2
    [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
