# melp — the two README commands (`make demo`, `make test`) do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is named in the same pip command as everything else: on CPU-only machines this takes
# the CPU wheel instead of resolving a multi-GB CUDA build through a dependency.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install demo test lint typecheck bench clean

# `make demo` needs only the package; `make test` adds the dev tools (pytest, ruff, mypy, playwright).
# tools/install.py installs with uv (seconds; pip takes minutes here) and falls back to pip. The demo
# runs in one process, so it skips compiling bytecode; the test suite starts many, so it compiles all.
$(STAMP): pyproject.toml
	$(PYTHON) tools/install.py $(VENV) "$(TORCH)" -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PYTHON) tools/install.py --compile $(VENV) "$(TORCH)" -e ".[dev]"
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/melp demo --out runs/demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
