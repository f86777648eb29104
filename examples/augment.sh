#!/usr/bin/env bash
# Issue 35's measurement: does `mdcli augment` (variations of the few real windows, filtered) raise held-out
# accuracy on the measured gait data? Import, blocked split (30 % of each person's recording held out), one
# person classifier + autoencoder on the whole training part (allowed: no test window), then for each N in
# 20 and 50 and each seed: the N-per-class subset `diagnose gain` scores, its latents, an LDM on them alone
# (configs/gait/train-ldm-few.yaml), a filter classifier on them alone, and the variations (configs/gait/augment.yaml
# + confidence / novelty / kinematic filters: var-f.h5; unfiltered: var.h5). One `diagnose gain` call compares
# real, classic and the variations with and without the filters (and GEN's samples when given), with paired 95 %
# intervals over the seeds (docs/findings.md).
#
#   bash examples/augment.sh GAIT_DIR OUT [SEEDS] [CONFIG]
#   bash examples/augment.sh ../shared/data/gait runs/augment 5
#   GEN=runs/gain-gait/gen_all/samples.h5 NS=20 bash examples/augment.sh ../shared/data/gait runs/augment 5   # the findings' table
#
# CONFIG (default configs/study/cpu.yaml) gives the autoencoder, the classifiers and diagnose gain's fit budget,
# as in examples/fewshot.sh, so the two studies' `real` / `classic` rows are the same fits. Finished steps are
# kept (rerunning continues). 1 torch thread per process; JOBS: diagnose gain's parallel fits (default 2).
# NS: the N per class (default 20,50). AE=subset: each subset gets its own autoencoder too (trained on its N windows
# alone, its perceptual classifier the subset's filter classifier; folders OUT/fae_N_S), so nothing of the generator
# saw more than the N windows it is scored with (no star); AE=shared (default): the one above, the decoder saw the
# whole training part (starred rows). SAMPLES (default 100 per class): pure samples of each subset's LDM, and the
# pretraining arms (var-pre, sam-pre, both-pre = variations + samples as one set; both-pre-600 the same set with 600
# pretraining steps, the recipe that met issue 35's targets) beside the appended variations.
# Writes OUT/gain.json, OUT/gain.md, OUT/gain.txt (the table), OUT/figs/gain.png.
set -euo pipefail
GAIT=$1; OUT=$2; SEEDS=${3:-5}; CFG=${4:-configs/study/cpu.yaml}
GCFG=$(dirname "$0")/../configs/gait
NS=${NS:-20,50}
M=${MDCLI:-mdcli}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source "$(dirname "$0")/gait_split.sh"
gait_split "$GAIT" "$OUT"
# the shared autoencoder (VQ-GAN + EMA, the study's recommendation) and its perceptual classifier: the training part only
AE=${AE:-shared}; SAMPLES=${SAMPLES:-100}
[ "$AE" = shared ] || [ "$AE" = subset ] || { echo "AE=$AE: expected shared or subset" >&2; exit 2; }
if [ "$AE" = shared ]; then
  [ -f "$OUT/clf.h5" ] || $M train-classifier --config "$CFG" --data "$OUT/train.h5" --split blocked -o "$OUT/clf.h5" -q
  [ -f "$OUT/ae.h5" ] || $M train-ae --config "$CFG" --data "$OUT/train.h5" --classifier "$OUT/clf.h5" --perceptual domain \
      --set arch=vqgan --set train.ema_decay=0.99 -o "$OUT/ae.h5" -q --resume
fi
PREFIX=$([ "$AE" = subset ] && echo fae || echo aug)
for N in ${NS//,/ }; do
  for S in $(seq 0 $((SEEDS - 1))); do
    D="$OUT/${PREFIX}_${N}_${S}"
    [ -f "$D/samples.h5" ] && continue
    mkdir -p "$D"
    [ -f "$D/few.h5" ] || $M subset "$OUT/train.h5" --per-class "$N" --seed "$S" -o "$D/few.h5"   # = diagnose gain's subset (N, seed)
    [ -f "$D/clf.h5" ] || $M train-classifier --config "$CFG" --data "$D/few.h5" --seed "$S" --split blocked -o "$D/clf.h5" -q
    A="$OUT/ae.h5"
    if [ "$AE" = subset ]; then  # the subset's own autoencoder: the shared one's recipe on the N windows alone
      A="$D/ae.h5"
      [ -f "$A" ] || $M train-ae --config "$CFG" --data "$D/few.h5" --classifier "$D/clf.h5" --perceptual domain \
          --set arch=vqgan --set train.ema_decay=0.99 --seed "$S" -o "$A" -q --resume
    fi
    [ -f "$D/latents.h5" ] || $M encode --ae "$A" --data "$D/few.h5" -o "$D/latents.h5" -q
    [ -f "$D/ldm.h5" ] || $M train-ldm --config "$GCFG/train-ldm-few.yaml" --latents "$D/latents.h5" --seed "$S" -o "$D/ldm.h5" -q --resume
    [ -f "$D/var-f.h5" ] || $M augment --config "$GCFG/augment.yaml" --ldm "$D/ldm.h5" --data "$D/few.h5" --seed "$S" -o "$D/var-f.h5" \
        --filter "confidence:$D/clf.h5,min=0.5" --filter "novelty:$D/clf.h5" --filter kinematic:margin=0.25 \
        --preview "$D/var-f.png" -q
    [ -f "$D/var.h5" ] || $M augment --config "$GCFG/augment.yaml" --ldm "$D/ldm.h5" --data "$D/few.h5" --seed "$S" \
        -o "$D/var.h5" --set 'filters=[]' -q   # the same variations, unfiltered
    $M sample --ldm "$D/ldm.h5" -n "$SAMPLES" --sampler dpmpp-2m-sde --steps 25 --cfg-scale 1.5 --seed "$S" -o "$D/samples.h5" -q
  done
done
V="$OUT/${PREFIX}_{n}_{seed}"
GEN_ARMS=()  # GEN=samples.h5 (e.g. examples/fewshot.sh GENERATOR=shared's) adds its samples in three modes
[ -n "${GEN:-}" ] && GEN_ARMS=(--arm "gen=append:$GEN" --arm "gen-r0.5=append:$GEN,ratio=0.5" --arm "gen-pretrain=pretrain:$GEN")
COLUMNS=${COLUMNS:-160} $M diagnose gain --config "$CFG" --train "$OUT/train.h5" --test "$OUT/test.h5" --per-class "$NS" \
    --seeds "$SEEDS" --jobs "${JOBS:-2}" "${GEN_ARMS[@]}" --arm "var=append:$V/var.h5" --arm "var-f=append:$V/var-f.h5" \
    --arm "var-pre=pretrain:$V/var.h5" --arm "sam-pre=pretrain:$V/samples.h5" --arm "both-pre=pretrain:$V/var.h5+$V/samples.h5" \
    --arm "both-pre-600=pretrain:$V/var.h5+$V/samples.h5,steps=600" \
    --json-out "$OUT/gain.json" --md-out "$OUT/gain.md" --plot "$OUT/figs" | tee "$OUT/gain.txt"
echo "wrote $OUT/gain.json, $OUT/gain.md, $OUT/gain.txt, $OUT/figs/gain.png"
