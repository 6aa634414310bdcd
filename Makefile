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

.PHONY: run scan-samples test lint typecheck bench model clean

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

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench

typecheck: $(BIN)/.installed
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/scan_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Rebuild the content model shipped in the package, reproducibly (deterministic sampling and
# fit: the same corpus gives the same version hash). See docs/model-card.md.
MODEL_CORPUS ?= ../shared/corpus
MODEL_ARGS ?= --cap 2000 --workers 2
.PHONY: model
model: $(BIN)/.installed
	$(BIN)/mailsift train --corpus $(MODEL_CORPUS) $(MODEL_ARGS) --name default \
		--out src/mailsift/ml/models/default.json
