# mdcli: `make demo` runs the main job on the embedded default config; `make test` runs the suite.
# Both create .venv and install everything on a fresh machine (torch/torchvision pinned to the
# builds pip finds offline on the lab machines: torch 2.14.1 + torchvision 0.29.1 for lpips).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	mkdir -p runs/demo
	$(VENV)/bin/mdcli simulate --config configs/demo.yaml -o runs/demo/data.h5
	$(VENV)/bin/mdcli plot runs/demo/data.h5 -o runs/demo/preview.png
	$(VENV)/bin/mdcli info runs/demo/data.h5

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/bench_simulate.py --n 200

clean:
	rm -rf runs .pytest_cache
