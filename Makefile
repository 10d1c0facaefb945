# The README's two commands, `make demo` and `make test`, do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SRJS := $(VENV)/bin/srjs
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast clean-cache

setup: $(VENV)/.installed js/node_modules/.installed chromium

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	$(PY) -m pip install -q --no-deps -c constraints.txt spandrel  # test reference; see pyproject
	touch $@

js/node_modules/.installed: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's chromium drives the browser checks (playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(PY) -m srjs.demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Development lane: everything but real npm models and TF.js runtimes (CI runs `make test`).
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean-cache:
	rm -rf ~/.cache/srjs
