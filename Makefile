# The two commands of the README:  `make run` (set up, start the app) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run test bench clean

$(VENV)/.app: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

$(VENV)/.dev: $(VENV)/.app requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.app  ## set up and start the app (Streamlit + one worker) on data/nfx.db
	$(PY) -m nfx app

test: $(VENV)/.dev  ## set up and run the whole test suite
	$(PY) -m pytest

bench: $(VENV)/.dev  ## engine and gallery benchmarks (minutes; see docs/benchmarks.md)
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_panel.py
	$(PY) bench/bench_gallery.py

clean:
	rm -rf $(VENV) .pytest_cache
