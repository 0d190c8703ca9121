# cvray: `make demo` (install + end-to-end demo), `make test` (install + test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cvray-installed
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/cvray demo

test: install
	$(BIN)/python -m pytest -q

# Every benchmark with the project's interpreter. bench_track.py and bench_track_real.py compare
# against Roboflow `trackers` (the `.[bench]` extra, installed here); the others need nothing more.
bench: install
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) cvray-runs .pytest_cache
