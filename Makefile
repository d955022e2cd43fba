# Set-up on a fresh machine: every target makes or reuses .venv, installs the
# CPU build of torch 2.13.0 first (any other torch pulls GBs of CUDA packages),
# then this package with its test extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint data data-all bench clean

$(STAMP): pyproject.toml
	@echo "setting up $(VENV): torch 2.13.0 (CPU), then qdsketch and its test tools; a few minutes the first time"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)
	@echo "set up: $(VENV)"

demo: $(STAMP)
	$(BIN)/qdsketch animate house -o house.gif --best-of 4
	@echo "open it: $(CURDIR)/house.gif"

# test files run in parallel processes, one a core (pytest-xdist; a file's tests stay together,
# so a module's costly fixture is made once); `pytest` alone runs them one by one
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile -m "not slow"

# ruff (lint and format) and mypy, as configured in pyproject.toml
lint: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,lint]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# every real drawing of the five reference classes in ../shared (bulk/ included) -> data-shared/dataset.npz
data: $(STAMP)
	bash scripts/shared_data.sh ../shared/data/quickdraw data-shared
	$(BIN)/qdsketch preprocess --data-dir data-shared --classes cat,clock,tent,house,nail -o data-shared/dataset.npz

# every real drawing of all 345 classes in ../shared (about 1.17 million) -> the sharded
# dataset data-all/dataset/ (docs/scale.md): 90% to train, 5% to validate, 5% to test
data-all: $(STAMP)
	bash scripts/shared_data_all.sh ../shared/data/quickdraw data-all
	$(BIN)/qdsketch preprocess --data-dir data-all --classes all --split 90,5,5 -o data-all/dataset

bench: $(STAMP)
	$(BIN)/python benchmarks/preprocess_speed.py
	$(BIN)/python benchmarks/download_bytes.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/sample_speed.py

clean:
	rm -rf $(VENV) house.gif
