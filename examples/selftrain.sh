#!/usr/bin/env bash
# Self-training on top of the ensemble recipe (docs/DIAGNOSE.md, "Pseudo-labels for unlabelled recordings"): for
# each seed, the N-per-class subset `diagnose gain` scores (`subset --rest` writes the other training windows, used
# unlabelled), then
#   ft:  one `train-classifier --init` per pretraining draw, fine-tuned on the subset (configs/gait/finetune.yaml);
#   rl:  as many random starts (seeds S + 100 j), the same config;
#   ftp / rlp: the same fine-tunes again with `--extra` the rest pseudo-labelled by that ensemble
#        (`classify -o --min-confidence T`: the windows whose mean class probability reaches T);
# each scored as an ensemble (`classify`) on the held-out part. OUT/selftrain.md: the four ensembles' accuracies
# per seed and the paired gains with 95 % t intervals over the seeds (diagnose gain's paired_gain).
#
#   bash examples/selftrain.sh TRAIN TEST OUT "DRAW0 DRAW1 ..." [SEEDS]
#   bash examples/selftrain.sh runs/gait/train.h5 runs/gait/test.h5 runs/selftrain "$(ls runs/draws/*.h5)" "16 17 18"
#
# N (default 20) per class, T (default 0.8) the threshold. Finished seeds are kept (rerunning continues); 1 torch
# thread per process.
set -euo pipefail
TRAIN=$1; TEST=$2; OUT=$3; read -r -a DRAWS <<< "$4"; SEEDS=${5:-"16 17 18 19 20"}
N=${N:-20}; T=${T:-0.8}
CFG=$(dirname "$0")/../configs/gait/finetune.yaml
M=${MDCLI:-mdcli}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ensemble() {  # classify $1 with the classifiers $3... ; extra options in $2
  local data=$1 opts=$2; shift 2
  local args=(); for c in "$@"; do args+=(--classifier "$c"); done
  # shellcheck disable=SC2086
  $M classify --data "$data" "${args[@]}" $opts > /dev/null
}
for S in $SEEDS; do
  D="$OUT/seed$S"; mkdir -p "$D"
  [ -f "$D/test_rlp.json" ] && continue
  $M subset "$TRAIN" --per-class "$N" --seed "$S" -o "$D/few.h5" --rest "$D/rest.h5" --force > /dev/null
  for pass in "" p; do
    extra_ft=(); extra_rl=()
    if [ "$pass" = p ]; then
      ensemble "$D/rest.h5" "-o $D/pseudo_ft.h5 --min-confidence $T --json-out $D/rest_ft.json --force" "${FT[@]}"
      ensemble "$D/rest.h5" "-o $D/pseudo_rl.h5 --min-confidence $T --json-out $D/rest_rl.json --force" "${RL[@]}"
      extra_ft=(--extra "$D/pseudo_ft.h5"); extra_rl=(--extra "$D/pseudo_rl.h5")
    fi
    FT=(); RL=()
    for j in "${!DRAWS[@]}"; do
      $M train-classifier --config "$CFG" --data "$D/few.h5" --init "${DRAWS[$j]}" "${extra_ft[@]}" --seed "$S" \
          -q -o "$D/ft$pass$j.h5" --force
      $M train-classifier --config "$CFG" --data "$D/few.h5" "${extra_rl[@]}" --seed $((S + 100 * j)) \
          -q -o "$D/rl$pass$j.h5" --force
      FT+=("$D/ft$pass$j.h5"); RL+=("$D/rl$pass$j.h5")
    done
    ensemble "$TEST" "--json-out $D/test_ft$pass.json --force" "${FT[@]}"
    ensemble "$TEST" "--json-out $D/test_rl$pass.json --force" "${RL[@]}"
  done
done
$PY - "$OUT" $SEEDS > "$OUT/selftrain.md" <<'PY'
import json, sys
from mdcli.diagnose.gain import paired_gain
out, seeds = sys.argv[1], sys.argv[2:]
acc = lambda s, a: json.load(open(f"{out}/seed{s}/test_{a}.json"))["scored"]["accuracy"]  # noqa: E731
kept = lambda s, a: json.load(open(f"{out}/seed{s}/rest_{a}.json"))  # noqa: E731
arms = {"rl": "real (ensemble)", "ft": "pretrained (ensemble)", "rlp": "real + self-training", "ftp": "pretrained + self-training"}
print("| seed | " + " | ".join(arms.values()) + " | pseudo-labels kept (accuracy): real / pretrained |")
print("|---" * (len(arms) + 2) + "|")
for s in seeds:
    k = {a: kept(s, a) for a in ("rl", "ft")}
    print(f"| {s} | " + " | ".join(f"{acc(s, a):.3f}" for a in arms) + " | "
          + " / ".join(f"{k[a]['kept']} ({k[a]['scored']['kept']['accuracy']:.3f})" for a in ("rl", "ft")) + " |")
print("\n| gain (points) | mean [95 % interval] | wins |\n|---|---|---|")
for a, b in (("ftp", "ft"), ("rlp", "rl"), ("ftp", "rlp"), ("ft", "rl"), ("ftp", "rl")):
    g = paired_gain([acc(s, a) - acc(s, b) for s in seeds])
    ci = f" [{100 * g['ci95'][0]:+.1f}, {100 * g['ci95'][1]:+.1f}]" if g["ci95"] else ""
    print(f"| {arms[a]} over {arms[b]} | {100 * g['mean']:+.1f}{ci} | {g['wins']}/{g['seeds']} |")
PY
cat "$OUT/selftrain.md"
