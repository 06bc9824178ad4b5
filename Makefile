# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint bench-quick clean

# torch is pinned and installed first, so pip never resolves a newer (CUDA) build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0 'setuptools>=70.1'
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/lrpilot demo

test: $(VENV)/.installed
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-quick: $(VENV)/.installed
	$(BIN)/lrpilot bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache lrpilot-demo
