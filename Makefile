# The two quick-start commands are `make cluster` and `make test`; both set
# everything up first on a fresh machine (Debian packages need root or sudo).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed

.PHONY: setup cluster test lint typecheck sim bench clean

setup: $(STAMP) $(JS_STAMP)

$(STAMP): pyproject.toml setup.py src/redraft/_cresp.c src/redraft/_cbatch.c src/redraft/examples/clone/_zorder.c
	scripts/install-system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# ioredis for the cluster client tests (skipped where Node.js is missing).
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	scripts/install-js-deps

# The compiled twin of the hot modules, what a regular install runs: rebuilt
# when a source changed; without a C compiler the cluster runs the pure ones.
COMPILED_STAMP := build/compiled/.built
$(COMPILED_STAMP): $(STAMP) setup.py scripts/build_compiled.py $(shell find src/redraft -name '*.py')
	$(PY) scripts/build_compiled.py --out build/compiled && touch $@ \
		|| echo "could not compile the hot modules: the cluster runs the pure ones"

cluster: setup $(COMPILED_STAMP)
	$(PY) scripts/cluster.py

test: setup lint typecheck
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts fuzz setup.py
	$(VENV)/bin/ruff format --check src tests bench scripts fuzz setup.py

typecheck: setup
	$(VENV)/bin/mypy

sim: setup
	$(PY) -m tests.sim --seeds 2000

clean:
	rm -rf $(VENV) .cluster tests/js/node_modules
