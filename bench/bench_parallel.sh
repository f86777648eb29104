#!/usr/bin/env bash
# CPU parallelism of the demo's training on this machine: one process with all the cores as torch
# threads, against RANKS data-parallel processes (torchrun, gloo) of one core each; and the fresh
# classifier fits of `diagnose generation` one at a time vs two concurrent 1-thread processes.
# Needs runs/demo (make demo). Usage: bash bench/bench_parallel.sh [RUN_DIR]   (docs/PERFORMANCE.md)
set -euo pipefail
RUN=${1:-runs/demo}
PY=${PY:-.venv/bin/python}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for f in train.h5 clf.h5 latents.h5; do
    [ -f "$RUN/$f" ] || { echo "bench_parallel: $RUN/$f missing (run make demo first)" >&2; exit 2; }
done
N=$(nproc)
AE=(train-ae --config configs/demo.yaml --data "$RUN/train.h5" --classifier "$RUN/clf.h5" --set train.steps=150
    --set disc.start=20 --set disc.pretrain_steps=10 -q)
LDM=(train-ldm --config configs/demo.yaml --latents "$RUN/latents.h5" --set train.steps=200 -q)
secs() { local s; s=$(date +%s.%N); "$@" > /dev/null; echo "$(date +%s.%N) $s" | awk '{printf "%.1f", $1 - $2}'; }
ddp() { OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$N" -m mdcli "$@"; }
a1=$(secs "$PY" -m mdcli "${AE[@]}" -o "$OUT/a1.h5"); a2=$(secs ddp "${AE[@]}" -o "$OUT/a2.h5")
echo "train-ae 150 steps (discriminator from 20): 1 process x $N threads $a1 s, $N ranks x 1 thread $a2 s"
l1=$(secs "$PY" -m mdcli "${LDM[@]}" -o "$OUT/l1.h5"); l2=$(secs ddp "${LDM[@]}" -o "$OUT/l2.h5")
echo "train-ldm 200 steps: 1 process x $N threads $l1 s, $N ranks x 1 thread $l2 s"
FIT="import sys,time,torch; from pathlib import Path; from mdcli.artifacts import Spectrograms; \
from mdcli.data.batches import model_images; from mdcli.train.classifier import FitConfig, fit_classifier; \
d=Spectrograms.load(Path('$RUN/train.h5')); x,y=model_images(d),torch.from_numpy(d.labels); \
fit_classifier(x,y,int(d.labels.max())+1,FitConfig(steps=150),0)"
f1=$(secs "$PY" -c "$FIT")
f2=$(secs bash -c "OMP_NUM_THREADS=1 $PY -c \"$FIT\" & OMP_NUM_THREADS=1 $PY -c \"$FIT\"; wait")
echo "fresh classifier fit, 150 steps: one at a time x $N threads $f1 s each; two concurrent 1-thread fits $f2 s for both"
