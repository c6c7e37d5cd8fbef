#!/usr/bin/env bash
# Create conformance/autobahn/.venv27: a Python 2.7 virtualenv holding the
# Autobahn|Testsuite (wstest), with the exact pins of requirements27.txt.
#
# Usage: conformance/autobahn/setup.sh [--force]
#   --force   delete and rebuild .venv27 even if it is up to date
#
# Needs a CPython 2.7 interpreter (wstest is Python 2 only). Looked up, in order:
#   $PY27, /root/.pyenv/versions/2.7.18/bin/python (part of this machine image),
#   $(pyenv root)/versions/2.7*/bin/python, python2.7 / python2 on PATH.
# `pyenv install 2.7.18` cannot work offline, so a missing 2.7 is a hard error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv27"
REQS="$HERE/requirements27.txt"
BOOT_REQS="$HERE/requirements27-bootstrap.txt"
STAMP="$VENV/.requirements27.sha256"

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 64 ;;
    esac
done

log() { echo "[autobahn/setup] $*" >&2; }

# Drop pip's per-package warnings about index folders from a machine-wide pip config
# that do not exist (harmless, but one line per package).
pip_filter() { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }

is_py27() {
    [ -n "$1" ] && [ -x "$1" ] &&
        "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' >/dev/null 2>&1
}

find_py27() {
    local c
    local candidates=()
    [ -n "${PY27:-}" ] && candidates+=("$PY27")
    candidates+=(/root/.pyenv/versions/2.7.18/bin/python)
    if command -v pyenv >/dev/null 2>&1; then
        for c in "$(pyenv root 2>/dev/null)"/versions/2.7*/bin/python; do candidates+=("$c"); done
    fi
    for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python; do candidates+=("$c"); done
    for c in python2.7 python2; do
        command -v "$c" >/dev/null 2>&1 && candidates+=("$(command -v "$c")")
    done
    for c in "${candidates[@]}"; do
        if is_py27 "$c"; then echo "$c"; return 0; fi
    done
    return 1
}

want_stamp() {
    # what the stamp must say for .venv27 to count as up to date
    sha256sum "$REQS" "$BOOT_REQS" | sha256sum | cut -d' ' -f1
}

if [ "$FORCE" = 0 ] && [ -x "$VENV/bin/wstest" ] && [ -f "$STAMP" ] &&
   [ "$(cat "$STAMP")" = "$(want_stamp)" ] &&
   "$VENV/bin/python" -c 'import autobahntestsuite.wstest' >/dev/null 2>&1; then
    log "up to date: $VENV"
    exit 0
fi

if ! PY="$(find_py27)"; then
    cat >&2 <<'EOF'
[autobahn/setup] ERROR: no Python 2.7 interpreter found.
  Autobahn|Testsuite (wstest) runs on Python 2.7 only. Looked for $PY27,
  /root/.pyenv/versions/2.7.18/bin/python, pyenv's versions/2.7*, python2.7, python2.
  `pyenv install 2.7.18` needs to download CPython sources, which this network
  does not allow; point PY27=/path/to/python2.7 at an existing interpreter.
EOF
    exit 2
fi
log "using $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

# pip's noise about Python 2 being end-of-life is expected here.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 PYTHONWARNINGS=ignore

BOOT="$(mktemp -d "${TMPDIR:-/tmp}/autobahn-venv-boot.XXXXXX")"
trap 'rm -rf "$BOOT"' EXIT

# 1. virtualenv into a temporary --target folder (the pyenv 2.7 stays untouched).
#    Use the interpreter's own pip; on a 2.7 without pip, try ensurepip's bundled one.
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    log "no pip in $PY; trying ensurepip into the bootstrap folder"
    "$PY" -m ensurepip --help >/dev/null 2>&1 || { log "ERROR: $PY has neither pip nor ensurepip"; exit 2; }
    ENSUREPIP_WHEELS="$("$PY" -c 'import ensurepip, os; print(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled"))')"
    PIPWHL="$(ls "$ENSUREPIP_WHEELS"/pip-*.whl | head -1)"
    PIP_RUN=("$PY" "$PIPWHL/pip")
else
    PIP_RUN=("$PY" -m pip)
fi
log "installing virtualenv (bootstrap, temporary)"
"${PIP_RUN[@]}" install --quiet --target "$BOOT/lib" -r "$BOOT_REQS" 2>&1 | pip_filter

# 2. The virtualenv itself (seed wheels come from inside the virtualenv package).
rm -rf "$VENV"
log "creating $VENV"
PYTHONPATH="$BOOT/lib" VIRTUALENV_OVERRIDE_APP_DATA="$BOOT/app-data" \
    "$PY" -m virtualenv --quiet --no-download --no-periodic-update "$VENV"

# 3. The testsuite with its exact pins.
log "installing autobahntestsuite and pins from requirements27.txt (about 30 s)"
"$VENV/bin/python" -m pip install --quiet --no-cache-dir -r "$REQS" 2>&1 | pip_filter

# 4. Smoke test: the CLI loads and reports its version.
if ! "$VENV/bin/wstest" --autobahnversion >/dev/null 2>&1; then
    log "ERROR: wstest does not start:"
    "$VENV/bin/wstest" --autobahnversion >&2 || true
    exit 1
fi
want_stamp > "$STAMP"
log "ok: $("$VENV/bin/wstest" --autobahnversion 2>/dev/null | tr '\n' ' ')"
