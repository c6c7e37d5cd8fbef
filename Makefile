# hero-fast developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install system-deps test lint typecheck bench-micro bench bench-test autobahn clean wheel-check docs fuzz

$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/hero_fast/*.pyx src/hero_fast/*.pxd src/hero_fast/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# What the tests need from the OS: Debian's chromium (browser tests, driven by the
# playwright package, which never downloads a browser), zlib headers (permessage-deflate)
# and redis-server (cluster tests start their own next to the machine's one).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -f /usr/include/zlib.h || missing="$$missing zlib1g-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
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

autobahn: install
	bash conformance/autobahn/setup.sh
	bash conformance/autobahn/run.sh

# sdist -> wheel from the sdist -> auditwheel -> fresh venv without a compiler -> tests + serve
wheel-check:
	bash scripts/wheel_check.sh

# regenerate the configuration reference (tests/ops fails when it drifts)
docs: install
	$(PY) -m hero_fast.config --markdown > docs/configuration.md

clean:
	rm -rf build dist src/*.egg-info src/hero_fast/*.c src/hero_fast/*.so
