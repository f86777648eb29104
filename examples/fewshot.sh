#!/usr/bin/env bash
# The honest few-shot study on the measured gait folder (docs/DIAGNOSE.md, `diagnose gain`): import, blocked split
# (30 % of each person's recording held out), then for each N in 20 and 50 and each seed the whole generator chain
# (perceptual classifier, VQ-GAN + EMA autoencoder, LDM, samples) trained on that N-per-class subset alone, the
# subset `mdcli subset` writes being exactly the one `diagnose gain` scores for that N and seed. One `diagnose
# gain` call then compares, per N: real, classic, the generated windows appended (plain, weight 0.3, ratio 0.5,
# prob 0.3), pretrain on them, and only them (CAS), with paired 95 % intervals over the seeds.
#
#   bash examples/fewshot.sh GAIT_DIR OUT [CONFIG] [SEEDS] [--set k=v ...]
#   bash examples/fewshot.sh ../shared/data/gait runs/fewshot configs/study/cpu.yaml 5
#
# GENERATOR=shared trains one generator on the whole training part instead (the optimistic setting, one chain
# instead of 2 x SEEDS: `diagnose gain` marks it "generator saw K > N real windows").
#
# The trailing --set options go to train-ae (default arm: the study's vqgan-ema). Finished subsets are kept
# (rerunning continues where it stopped); 1 torch thread per process, as the study runs. JOBS: diagnose gain's
# parallel classifier fits (default 2). Writes OUT/gain.json, OUT/gain.txt (the table) and OUT/figs/gain.png.
set -euo pipefail
GAIT=$1; OUT=$2; CFG=${3:-configs/study/cpu.yaml}; SEEDS=${4:-5}
shift $(( $# < 4 ? $# : 4 ))
AE_SET=("$@")
[ ${#AE_SET[@]} -eq 0 ] && AE_SET=(--set arch=vqgan --set train.ema_decay=0.99)
M=${MDCLI:-mdcli}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source "$(dirname "$0")/gait_split.sh"
gait_split "$GAIT" "$OUT"
chain() {  # the generator chain on $1 (a spectrograms file) in folder $2 with seed $3
  $M train-classifier --config "$CFG" --data "$1" --seed "$3" --split blocked -o "$2/clf.h5" -q
  $M train-ae --config "$CFG" --data "$1" --classifier "$2/clf.h5" --perceptual domain --seed "$3" \
      "${AE_SET[@]}" -o "$2/ae.h5" -q --resume
  $M encode --ae "$2/ae.h5" --data "$1" -o "$2/latents.h5" -q
  $M train-ldm --config "$CFG" --latents "$2/latents.h5" --seed "$3" -o "$2/ldm.h5" -q --resume
  $M sample --config "$CFG" --ldm "$2/ldm.h5" --seed "$3" -o "$2/samples.h5" -q
}
if [ "${GENERATOR:-per-subset}" = shared ]; then
  D="$OUT/gen_all"
  mkdir -p "$D"
  [ -f "$D/samples.h5" ] || chain "$OUT/train.h5" "$D" 0
  G="$D/samples.h5"
else
  for N in 20 50; do
    for S in $(seq 0 $((SEEDS - 1))); do
      D="$OUT/gen_${N}_${S}"
      [ -f "$D/samples.h5" ] && continue
      mkdir -p "$D"
      $M subset "$OUT/train.h5" --per-class "$N" --seed "$S" -o "$D/few.h5"   # = diagnose gain's subset (N, seed)
      chain "$D/few.h5" "$D" "$S"
    done
  done
  G="$OUT/gen_{n}_{seed}/samples.h5"
fi
COLUMNS=${COLUMNS:-160} $M diagnose gain --config "$CFG" --train "$OUT/train.h5" --test "$OUT/test.h5" --per-class 20,50 \
    --seeds "$SEEDS" --jobs "${JOBS:-2}" --arm "gen=append:$G" --arm "gen-w0.3=append:$G,weight=0.3" \
    --arm "gen-r0.5=append:$G,ratio=0.5" --arm "gen-p0.3=append:$G,prob=0.3,ratio=0" --arm "gen-pretrain=pretrain:$G" \
    --arm "cas=only:$G" --json-out "$OUT/gain.json" --plot "$OUT/figs" | tee "$OUT/gain.txt"
echo "wrote $OUT/gain.json, $OUT/gain.txt, $OUT/figs/gain.png"
