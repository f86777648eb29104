#!/usr/bin/env bash
# Issue 36's measurement: the simulator as a prior for a few measured windows. Import, blocked split (30 % of each
# person's recording held out), 100 virtual people rendered like the measured training part (`simulate --like
# --identities`), then:
#   - a person classifier pretrained on the virtual people (`diagnose gain`'s pretrain arm: sim-like), and
#   - a generator pretrained on them (VAE + LDM, configs/gait/), fine-tuned for each N and seed on the N-per-class
#     subset `diagnose gain` scores, alone (never the test part, never the other training windows): its samples
#     (simgen) and its variations of the subset's windows (simvar, `augment` without filters).
# One `diagnose gain` call compares them with real and classic, paired 95 % intervals over the seeds
# (docs/findings.md).
#
#   bash examples/simprior.sh GAIT_DIR OUT [SEEDS] [CONFIG]
#   NS=20 bash examples/simprior.sh ../shared/data/gait runs/simprior 5   # the findings' table
#
# CONFIG (default configs/study/cpu.yaml) gives diagnose gain's fit budget, as in examples/fewshot.sh and
# examples/augment.sh, so the studies' `real` / `classic` rows are the same fits. Finished steps are kept (rerunning
# continues). 1 torch thread per process; JOBS: diagnose gain's parallel fits (default 2). NS: the N per class
# (default 20,50). COLORMAP: the import's colour map (examples/gait_split.sh). VIRTUAL: a virtual set rendered
# before (e.g. the treadmill people of docs/findings.md) instead of the plain `--like` one. GAIN_ARGS: more
# `diagnose gain` options, e.g. "--set fit.net.doppler_bins=8 --arm sim-tm=init:clf-tm-s0.h5". LDM_STEPS: the
# LDM's fine-tuning steps per subset (default 2000: at 600 its samples carry no person, docs/findings.md).
# Writes OUT/gain.json, OUT/gain.md, OUT/gain.txt (the table).
set -euo pipefail
GAIT=$1; OUT=$2; SEEDS=${3:-5}; CFG=${4:-configs/study/cpu.yaml}
G=$(dirname "$0")/../configs/gait
NS=${NS:-20,50}
M=${MDCLI:-mdcli}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source "$(dirname "$0")/gait_split.sh"
gait_split "$GAIT" "$OUT"
# the prior: 100 virtual people x 20 windows, rendered and fitted like the measured training part (never the test part)
V=${VIRTUAL:-$OUT/virtual-like.h5}
[ -f "$V" ] || $M simulate --targets walker --like "$OUT/train.h5" --identities 100 --per-identity 20 --seed 0 -o "$V" -q
[ -f "$OUT/sim_ae.h5" ] || $M train-ae --config "$G/train-ae.yaml" --data "$V" --perceptual none --seed 0 -o "$OUT/sim_ae.h5" -q --resume
[ -f "$OUT/sim_lat.h5" ] || $M encode --ae "$OUT/sim_ae.h5" --data "$V" -o "$OUT/sim_lat.h5" -q
[ -f "$OUT/sim_ldm.h5" ] || $M train-ldm --config "$G/train-ldm-few.yaml" --latents "$OUT/sim_lat.h5" --set train.steps=1000 \
    --seed 0 -o "$OUT/sim_ldm.h5" -q --resume
for N in ${NS//,/ }; do
  for S in $(seq 0 $((SEEDS - 1))); do
    D="$OUT/g_${N}_${S}"; mkdir -p "$D"
    [ -f "$D/few.h5" ] || $M subset "$OUT/train.h5" --per-class "$N" --seed "$S" -o "$D/few.h5"   # = diagnose gain's subset
    [ -f "$D/ae.h5" ] || $M train-ae --config "$G/train-ae.yaml" --data "$D/few.h5" --perceptual none --init "$OUT/sim_ae.h5" \
        --set train.steps=300 --seed "$S" -o "$D/ae.h5" -q --resume
    [ -f "$D/lat.h5" ] || $M encode --ae "$D/ae.h5" --data "$D/few.h5" -o "$D/lat.h5" -q
    [ -f "$D/ldm.h5" ] || $M train-ldm --config "$G/train-ldm-few.yaml" --latents "$D/lat.h5" --init "$OUT/sim_ldm.h5" \
        --set train.steps="${LDM_STEPS:-2000}" --seed "$S" -o "$D/ldm.h5" -q --resume
    [ -f "$D/samples.h5" ] || $M sample --config "$G/sample.yaml" --ldm "$D/ldm.h5" --seed "$S" -o "$D/samples.h5" -q
    [ -f "$D/var.h5" ] || $M augment --config "$G/augment.yaml" --ldm "$D/ldm.h5" --data "$D/few.h5" --seed "$S" \
        --set 'filters=[]' -o "$D/var.h5" -q
    echo "done N=$N seed=$S"
  done
done
E="$OUT/g_{n}_{seed}"
COLUMNS=${COLUMNS:-170} $M diagnose gain --config "$CFG" --train "$OUT/train.h5" --test "$OUT/test.h5" --per-class "$NS" \
    --seeds "$SEEDS" --jobs "${JOBS:-2}" --arm "sim-like=pretrain:$V" \
    --arm "simgen=append:$E/samples.h5" --arm "simgen-pretrain=pretrain:$E/samples.h5" --arm "simgen-only=only:$E/samples.h5" \
    --arm "simvar=append:$E/var.h5" --arm "simvar-pretrain=pretrain:$E/var.h5" \
    ${GAIN_ARGS:-} --json-out "$OUT/gain.json" --md-out "$OUT/gain.md" | tee "$OUT/gain.txt"
echo "wrote $OUT/gain.json, $OUT/gain.md, $OUT/gain.txt"
