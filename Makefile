# One command runs mailsift (`make run`), one runs the tests (`make test`).
# Both create .venv and install what they need on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The milter extra builds pymilter against Debian's libmilter-dev; include it only where the
# headers are installed (.ci/run installs them), so `make run` works on a fresh machine.
MILTER := $(shell test -f /usr/include/libmilter/mfapi.h && echo ,milter)
EXTRAS ?= server,postgres,redis,s3,ml,attachments,dev$(MILTER)
PYTEST_ARGS ?=
# Keep bytecode: with PYTHONDONTWRITEBYTECODE set (as in some CI images), every process the
# tests start (gateways, CLI runs, scan workers) compiled mailsift's sources again; caching them
# cut the suite's CPU time by about a fifth (docs/testing.md, *Timings*).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run scan-samples test test-fast lint typecheck bench bench-rspamd bench-memory model clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/mailsift serve

scan-samples: $(BIN)/.installed
	$(BIN)/mailsift scan samples/

test: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# The inner loop: no slow (load, corpus, crash) tests, no browser, no Postfix; pytest only.
# See docs/testing.md for the markers and the timings.
FAST_MARKERS := not slow and not browser and not postfix
test-fast: $(BIN)/.installed
	$(BIN)/pytest -n 2 -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench

typecheck: $(BIN)/.installed
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/scan_bench.py

# mailsift against Rspamd, side by side (skips with the reason where rspamd is not installed)
bench-rspamd: $(BIN)/.installed
	$(BIN)/python bench/versus_rspamd.py

# memory of all mailsift processes at 200 concurrent SMTP sessions
bench-memory: $(BIN)/.installed
	$(BIN)/python bench/gateway_memory.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Rebuild the content model shipped in the package, reproducibly (deterministic sampling and
# fit: the same corpus gives the same version hash). It learns from no source whose terms
# forbid commercial use (`train` leaves CC BY-NC sources such as phishing_pot out by default).
# See docs/model-card.md.
MODEL_CORPUS ?= ../shared/corpus
MODEL_ARGS ?= --cap 2000 --workers 2
.PHONY: model model-full
model: $(BIN)/.installed
	$(BIN)/mailsift train --corpus $(MODEL_CORPUS) $(MODEL_ARGS) --name default \
		--out src/mailsift/ml/models/default.json

# Opt-in: the full model, which also learns from phishing_pot (CC BY-NC 4.0). It inherits that
# licence (non-commercial use only), is never shipped, and is used with
# `[ml] model_path = "build/models/full.json"`.
model-full: $(BIN)/.installed
	$(BIN)/mailsift train --corpus $(MODEL_CORPUS) $(MODEL_ARGS) --include-noncommercial \
		--name full --out build/models/full.json
