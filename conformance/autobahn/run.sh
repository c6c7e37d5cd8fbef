#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzing client against a WebSocket echo server.
#
# Usage: conformance/autobahn/run.sh HOST PORT [CASES]
#   HOST, PORT  where the echo server under test listens (ws://HOST:PORT/)
#   CASES       comma-separated case ids or patterns, e.g. "1.*,2.*" or "5.19,9.1.*";
#               default: the "cases" of fuzzingclient.json (1.* .. 10.*, 301 cases)
#
# Environment:
#   AUTOBAHN_AGENT    agent name in the reports       (default: hero-fast)
#   AUTOBAHN_REPORTS  report folder, wiped first      (default: conformance/autobahn/reports)
#   AUTOBAHN_TIMEOUT  seconds before wstest is killed (default: 1800)
#   AUTOBAHN_WAIT     seconds to wait for HOST:PORT to accept TCP (default: 15)
#   STRICT_CLOSE=1    also fail on behaviorClose WRONG CODE / UNCLEAN
#
# Exit status: 0 when every case passed (see summarize.py), 1 on conformance
# failures or missing cases, 2 on usage/setup errors or an unreachable server.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
HOST="$1"
PORT="$2"
CASES="${3:-}"
AGENT="${AUTOBAHN_AGENT:-hero-fast}"
REPORTS="${AUTOBAHN_REPORTS:-$HERE/reports}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-1800}"
WAIT="${AUTOBAHN_WAIT:-15}"

log() { echo "[autobahn/run] $*" >&2; }

case "$PORT" in ''|*[!0-9]*) log "PORT must be a number, got '$PORT'"; exit 2 ;; esac
case "$HOST" in *:*) URL="ws://[$HOST]:$PORT" ;; *) URL="ws://$HOST:$PORT" ;; esac

# 1. The Python 2.7 venv with wstest (no-op when already up to date).
"$HERE/setup.sh" || { log "setup.sh failed"; exit 2; }
PY27="$HERE/.venv27/bin/python"

# 2. Wait until the server accepts TCP connections.
if ! python3 - "$HOST" "$PORT" "$WAIT" <<'EOF'
import socket, sys, time
host, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + wait
while True:
    try:
        socket.create_connection((host, port), timeout=2).close()
        sys.exit(0)
    except OSError as e:
        if time.monotonic() >= deadline:
            print(f"[autobahn/run] {host}:{port} does not accept connections: {e}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)
EOF
then
    exit 2
fi

# 3. Fresh report folder and a concrete spec made from the template.
if [ -d "$REPORTS" ] && [ -n "$(ls -A "$REPORTS")" ] && [ ! -f "$REPORTS/fuzzingclient.spec.json" ]; then
    log "refusing to wipe $REPORTS: not empty and not an earlier report folder of run.sh"
    exit 2
fi
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
SPEC="$REPORTS/fuzzingclient.spec.json"
python3 - "$HERE/fuzzingclient.json" "$SPEC" "$URL" "$AGENT" "$REPORTS" "$CASES" <<'EOF'
import json, sys
template, out, url, agent, outdir, cases = sys.argv[1:7]
with open(template) as f:
    spec = json.load(f)
spec["outdir"] = outdir
spec["servers"] = [dict(spec["servers"][0], url=url, agent=agent)]
if cases.strip():
    spec["cases"] = [c.strip() for c in cases.split(",") if c.strip()]
with open(out, "w") as f:
    json.dump(spec, f, indent=3)
EOF

# 4. The case ids the spec selects, to tell a finished run from one that stopped early.
EXPECTED="$REPORTS/expected-cases.json"
"$PY27" -W ignore - "$SPEC" "$EXPECTED" <<'EOF'
import json, sys
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseSetname, CaseBasename
from autobahntestsuite.caseset import CaseSet
spec = json.load(open(sys.argv[1]))
caseset = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
cases = caseset.parseSpecCases(spec)
unknown = [c for c in cases if c not in caseset.CasesIndices]
if unknown:
    sys.stderr.write("[autobahn/run] unknown case ids: %s\n" % ", ".join(unknown))
    sys.exit(2)
if not cases:
    sys.stderr.write("[autobahn/run] the case patterns select no case\n")
    sys.exit(2)
json.dump(cases, open(sys.argv[2], "w"))
EOF
NCASES="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$EXPECTED")"

# 5. Run wstest. Its console output goes to wstest.log (one line per case).
log "running $NCASES cases against $URL (agent '$AGENT'); log: $REPORTS/wstest.log"
START=$(date +%s)
set +e
(cd "$REPORTS" && PYTHONWARNINGS=ignore timeout --kill-after=10 "$TIMEOUT" \
    "$HERE/.venv27/bin/wstest" -m fuzzingclient -s "$SPEC") >"$REPORTS/wstest.log" 2>&1
WSTEST_RC=$?
set -e
ELAPSED=$(( $(date +%s) - START ))
log "wstest finished in ${ELAPSED}s (exit $WSTEST_RC)"
if [ "$WSTEST_RC" = 124 ] || [ "$WSTEST_RC" = 137 ]; then
    log "wstest was stopped after AUTOBAHN_TIMEOUT=${TIMEOUT}s"
fi

# 6. Summary and verdict.
STRICT=()
[ "${STRICT_CLOSE:-0}" = 1 ] && STRICT=(--strict-close)
set +e
python3 "$HERE/summarize.py" "$REPORTS/index.json" --agent "$AGENT" --expected "$EXPECTED" "${STRICT[@]}"
SUMMARY_RC=$?
set -e
log "HTML report: $REPORTS/index.html"
if [ "$SUMMARY_RC" != 0 ]; then
    exit "$SUMMARY_RC"
fi
if [ "$WSTEST_RC" != 0 ]; then
    log "wstest exited $WSTEST_RC; see $REPORTS/wstest.log"
    exit 1
fi
exit 0
