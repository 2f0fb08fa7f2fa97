# The two commands: `make demo` and `make test`. Both create/update .venv first (with the [ml] extra: the demo
# trains the filter model and the model tests run). `make docs` builds the
# documentation site into site/ (offline, warnings are errors).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint venv clean bench docs docs-serve

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/pip install --quiet -e ".[dev,ml]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/cxrlab demo --workspace demo-workspace --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/ruff check src tests bench docs docs_src
	$(BIN)/python -m pytest -q

# The fast tier (under 2 minutes on 2 cores): ruff, then every test not marked pg, e2e, ocr or slow.
check: $(STAMP)
	$(BIN)/ruff check src tests bench docs docs_src
	$(BIN)/python -m pytest -q -m "not pg and not e2e and not ocr and not slow"

# Material for MkDocs prints an end-of-life banner on every build; NO_MKDOCS_2_WARNING=1 silences it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

bench: $(STAMP)
	$(BIN)/python bench/render.py

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache site
