# hero-fast developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test lint typecheck bench-micro bench autobahn clean

$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/hero_fast/*.pyx src/hero_fast/*.pxd src/hero_fast/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

lint: install
	$(PIP) install -q ruff mypy
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench-micro: install
	$(PIP) install -q websockets
	$(PY) -m pytest bench/micro --benchmark-only --benchmark-columns=median,ops -q

autobahn: install
	bash conformance/autobahn/setup.sh
	bash conformance/autobahn/run.sh

clean:
	rm -rf build dist src/*.egg-info src/hero_fast/*.c src/hero_fast/*.so
