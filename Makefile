# mdcli: `make demo` runs the main job on the embedded default config; `make test` runs the suite.
# Both create .venv and install everything on a fresh machine (torch/torchvision pinned to the
# builds pip finds offline on the lab machines: torch 2.14.1 + torchvision 0.29.1 for lpips).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test bench study study-gpu clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	MDCLI=$(VENV)/bin/mdcli TORCHRUN=$(VENV)/bin/torchrun bash examples/pipeline.sh runs/demo configs/demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q

# Side-by-side ratios (docs/PERFORMANCE.md): simulation vs bare STFT, training steps and samplers vs
# diffusers (a bench-only extra), memory vs dataset size, sampler quality vs cost on the demo's model,
# 1 process x N threads vs N ranks x 1 thread for the demo's training, and fp32 vs bf16 autocast on this CPU.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) bench/bench_simulate.py --n 200
	$(PY) bench/bench_train.py
	$(PY) bench/bench_memory.py
	test -f runs/demo/ldm.h5 || $(MAKE) demo
	$(PY) bench/bench_samplers.py --ldm runs/demo/ldm.h5 --judge runs/demo/judge.h5 --real runs/demo/test.h5 --n 20
	PY=$(PY) bash bench/bench_parallel.sh runs/demo
	$(PY) bench/bench_precision.py

# The comparison behind mdcli (docs/findings.md): hours on 2 CPU cores; run it again to resume after a kill. study-gpu: one GPU, minutes.
study: $(STAMP)
	$(PY) -m mdcli study --profile configs/study/cpu.yaml --dataset sim --out runs/study/cpu/sim
	$(PY) -m mdcli study --profile configs/study/cpu.yaml --dataset gait --gait-dir ../shared/data/gait --out runs/study/cpu/gait

study-gpu: $(STAMP)
	$(PY) -m mdcli study --profile configs/study/gpu.yaml --dataset sim --out runs/study/gpu/sim
	$(PY) -m mdcli study --profile configs/study/gpu.yaml --dataset gait --gait-dir ../shared/data/gait --out runs/study/gpu/gait

clean:
	rm -rf runs .pytest_cache
