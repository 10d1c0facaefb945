# The README's two commands, `make demo` and `make test`, do all set-up on a fresh machine.
# The machine needs Python 3.11 (python3.11, or PYTHON=...), Node 20 with npm, and about 4 GB
# of disk for `make demo` (Python venv 3.3 GB, js/node_modules 0.8 GB); `make test` adds the
# test extras (torch CPU, ncnn: about 1 GB more) and Debian's chromium (apt-get, as root).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SRJS := $(VENV)/bin/srjs
PYTEST_ARGS ?=
# Two pytest-xdist workers, whole files per worker (--dist loadfile) so module fixtures are built
# once. On an idle 2-core machine the whole suite took 8.1 min with 2 workers and 14.2 min
# serial (2026-12-02); on a busy one 2 workers lose (161 s vs 144 s on 54 tests at load ~5):
# PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: setup demo-setup tools test-setup demo test test-fast clean-cache

# What the demo needs: srjs and its runtime dependencies, the Node harness (TF.js). No
# torch, no ncnn, no browser.
demo-setup: tools $(VENV)/.installed js/node_modules/.installed

# Everything `make test` needs on top: the test extras and Chromium for the browser checks.
setup: demo-setup test-setup chromium
test-setup: $(VENV)/.test-installed

tools:
	@command -v $(PYTHON) >/dev/null || test -x $(PY) || { echo "make: needs Python 3.11 ($(PYTHON) not found; set PYTHON=/path/to/python3.11)"; exit 1; }
	@command -v npm >/dev/null || { echo "make: needs Node 20 with npm (not found)"; exit 1; }

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	$(PY) -m pip install -q --no-deps -c constraints.txt spandrel  # test reference; see pyproject
	touch $@

js/node_modules/.installed: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's chromium drives the browser checks (playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null || { echo "[setup] installing Debian's chromium with apt-get (system-wide, for the browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: demo-setup
	$(PY) -m srjs.demo

test: setup
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# Development lane: everything but real npm models and TF.js runtimes (CI runs `make test`);
# 953 tests in 2.6 min on 2 idle cores (2026-12-02).
test-fast: setup
	$(PY) -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

clean-cache:
	rm -rf ~/.cache/srjs
