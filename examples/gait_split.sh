# Sourced by examples/fewshot.sh, augment.sh and simprior.sh: the measured gait folder imported (64 x 64, the colour
# map COLORMAP, default matplotlib's jet; matlab-jet is the table the JPEGs were drawn with, docs/findings.md) and
# split blocked (30 % of each person's recording held out, a gap of 3 windows), once per OUT.
#   gait_split GAIT_DIR OUT   -> OUT/gait.h5, OUT/train.h5, OUT/test.h5 (kept when present)
gait_split() {
  mkdir -p "$2"
  [ -f "$2/gait.h5" ] || $M import "$1" --colormap "${COLORMAP:-jet}" --image-size 64,64 -o "$2/gait.h5" -q
  [ -f "$2/test.h5" ] || $M split "$2/gait.h5" --split blocked --test-fraction 0.3 --gap 3 \
      --train-out "$2/train.h5" --test-out "$2/test.h5"
}
