#!/usr/bin/env bash
# The whole chain on the measured 77 GHz gait sample (3 people, ~150 jet JPEGs each):
#   bash configs/gait/chain.sh [GAIT_DIR] [OUT_DIR]
# ~15 minutes on 2 CPU cores. The data is never copied into the repository.
set -euo pipefail
GAIT=${1:-../shared/data/gait}
OUT=${2:-runs/gait}
CFG=$(dirname "$0")
mkdir -p "$OUT"
mdcli import "$GAIT" --colormap jet --image-size 64,64 -o "$OUT/gait.h5"
mdcli train-classifier --config "$CFG/train-classifier.yaml" --data "$OUT/gait.h5" -o "$OUT/clf.h5"
mdcli train-ae --config "$CFG/train-ae.yaml" --data "$OUT/gait.h5" --classifier "$OUT/clf.h5" -o "$OUT/ae.h5"
mdcli encode --ae "$OUT/ae.h5" --data "$OUT/gait.h5" -o "$OUT/latents.h5"
mdcli train-ldm --config "$CFG/train-ldm.yaml" --latents "$OUT/latents.h5" -o "$OUT/ldm.h5"
mdcli sample --config "$CFG/sample.yaml" --ldm "$OUT/ldm.h5" -o "$OUT/samples.h5" --preview "$OUT/samples.png"
mdcli plot "$OUT/gait.h5" -o "$OUT/real.png" --per-class 6
