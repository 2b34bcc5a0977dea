# One command each: `make train` (the main job) and `make test` (the whole suite) create the
# environment in .venv when it is missing or older than pyproject.toml, then run.
# Pass Hydra overrides to train with ARGS, e.g. make train ARGS="model=vgg11 data=cifar10".

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup train test lint clean gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(PY) -m lightning_labs.train $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest $(ARGS)

# On a CUDA machine: the gpu-marked tests, then benchmarks/gpu_check.py (about 6-8 min on an H100),
# which writes benchmarks/results/gpu_<device>.{json,md}. It measures even when a test failed, and the
# target fails if either did. Rerun one part alone: $(PY) benchmarks/gpu_check.py --only latency
gpu-check: $(STAMP)
	$(PY) -m pytest -m gpu -q -p no:cacheprovider; tests=$$?; $(PY) benchmarks/gpu_check.py $(ARGS) && exit $$tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
