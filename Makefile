# skiplab: every task a developer or CI runs. `make serve` and `make test` work from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint layers bench fuzz system-deps clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/skiplab serve --host $(HOST) --port $(PORT)

# Debian's chromium drives the browser tests (a Playwright browser download is not possible here).
system-deps:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

layers: $(STAMP)
	$(BIN)/python tests/check_layers.py

test: $(STAMP) system-deps lint layers
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.summary

fuzz: $(STAMP)
	$(BIN)/python -m pytest -q tests/web/test_fuzz.py --hypothesis-profile=fuzz

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
