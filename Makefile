# hero-fast developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install system-deps test lint typecheck bench-micro bench bench-test autobahn autobahn-full clean wheel-check docs fuzz

$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/hero_fast/*.pyx src/hero_fast/*.pxd src/hero_fast/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# What the tests need from the OS: Debian's chromium (browser tests, driven by the
# playwright package, which never downloads a browser), zlib headers (permessage-deflate)
# and redis-server (cluster tests start their own next to the machine's one); without
# the packages' recommendations (chromium's would bring avahi-daemon, a desktop stack, ...).
# Not from apt: Python 2.7 for Autobahn's wstest (conformance/autobahn/setup.sh finds it)
# and node >= 20 (the generated client's test), which CI machines carry.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -f /usr/include/zlib.h || missing="$$missing zlib1g-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: system-deps install
	$(PY) -m pytest -q

lint: install
	$(PIP) install -q ruff mypy
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench-micro: install
	$(PIP) install -q websockets
	$(PY) -m pytest bench/micro --benchmark-only --benchmark-columns=median,ops -q

# macro bench suite against the limits and every peer (bounded: <= 15 min; BENCH_ARGS=--quick for
# ~3 min): writes bench/RESULTS.md, bench/chart.png, bench/profiles/ and the summary in
# docs/benchmarks.md. Needs node + redis-server for the actionhero peer, perf for syscall counts.
bench: install
	$(PIP) install -q websockets picows aiohttp python-socketio matplotlib py-spy
	$(PY) bench/run_all.py $(BENCH_ARGS)

# tests of the bench machinery itself (C servers, load clients, report); no timing
bench-test: install
	$(PIP) install -q websockets
	$(PY) -m pytest -q bench/tests

# a longer fuzzing run (`make test` runs a short one): HERO_FAST_FUZZ_EXAMPLES examples per harness
fuzz: install
	HERO_FAST_FUZZ_EXAMPLES=$${HERO_FAST_FUZZ_EXAMPLES:-5000} $(PY) -m pytest -q tests/fuzz tests/core/test_fuzz_parser.py

# Autobahn|Testsuite against the echo server (python -m hero_fast.echo). `make test` runs
# 1.*-10.* and a sample of the compression cases; autobahn-full adds all of 12.* and 13.*
# (216 cases: wstest ran 41 min on 2 busy cores, 2026-12-03; hence its 90 min limit here).
# Reports: conformance/autobahn/reports/ (AUTOBAHN_REPORTS).
AUTOBAHN_CORE := 1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*

autobahn: install
	PYTHON=$(abspath $(PY)) bash conformance/autobahn/against_echo.sh '$(AUTOBAHN_CORE)'

autobahn-full: install
	PYTHON=$(abspath $(PY)) AUTOBAHN_TIMEOUT=$${AUTOBAHN_TIMEOUT:-5400} \
		bash conformance/autobahn/against_echo.sh '$(AUTOBAHN_CORE),12.*,13.*'

# sdist -> wheel from the sdist -> auditwheel -> fresh venv without a compiler -> tests + serve
wheel-check:
	bash scripts/wheel_check.sh

# regenerate the configuration reference (tests/ops fails when it drifts)
docs: install
	$(PY) -m hero_fast.config --markdown > docs/configuration.md

clean:
	rm -rf build dist src/*.egg-info src/hero_fast/*.c src/hero_fast/*.so
