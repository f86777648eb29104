#!/usr/bin/env bash
# One prepared GPU session (device tool): bench vs diffusers, the study's GPU profile on both
# datasets at once, sampler efficiency, simulation throughput. Writes its logs and results to $OUT.
# Needs: diffusers wheel in .whl/, the imported gait data at runs/gait/gait.h5 (carried).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=$PWD:/tmp/site
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
timeout 110 python3 bench/bench_train.py > "$OUT/bench_train.txt" 2>&1
( timeout 320 python3 -m mdcli study --profile configs/study/gpu.yaml --dataset sim --out runs/study/gpu/sim > "$OUT/study_sim.log" 2>&1 ) &
( timeout 320 python3 -m mdcli study --profile configs/study/gpu.yaml --dataset gait --data runs/gait/gait.h5 --out runs/study/gpu/gait > "$OUT/study_gait.log" 2>&1 ) &
wait
S=runs/study/gpu/sim/vqgan_s0
[ -f $S/ldm.h5 ] && timeout 70 python3 bench/bench_samplers.py --ldm $S/ldm.h5 --judge runs/study/gpu/sim/judge.h5 \
    --real runs/study/gpu/sim/test.h5 --n 64 > "$OUT/bench_samplers.txt" 2>&1
timeout 20 python3 bench/bench_simulate.py --n 200 --workers 16 > "$OUT/bench_simulate.txt" 2>&1
tar czf "$OUT/study.tgz" --exclude='*.h5' runs/study/gpu
ls -la "$OUT"
