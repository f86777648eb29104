#!/usr/bin/env bash
# The whole mdcli chain as plain commands (what `make demo` runs). Usage:
#   bash examples/pipeline.sh [RUN_DIR] [CONFIG]        (defaults: runs/demo configs/demo.yaml)
# Every step writes an HDF5 artifact that records its config, seed and the hashes of its inputs.
set -euo pipefail
RUN=${1:-runs/demo}
CFG=${2:-configs/demo.yaml}
MDCLI=${MDCLI:-mdcli}
mkdir -p "$RUN"

# 1. data: simulated spectrograms, split into training and held-out test parts
$MDCLI simulate --config "$CFG" -o "$RUN/data.h5"
$MDCLI split "$RUN/data.h5" --test-fraction 0.2 --train-out "$RUN/train.h5" --test-out "$RUN/test.h5"
$MDCLI plot "$RUN/train.h5" -o "$RUN/real.png"

# 2. two classifiers on the training part: features for the perceptual loss, and an independent judge
$MDCLI train-classifier --config "$CFG" --data "$RUN/train.h5" -o "$RUN/clf.h5"
$MDCLI train-classifier --config "$CFG" --data "$RUN/train.h5" --seed 1 -o "$RUN/judge.h5"

# 3. autoencoder (VQ-GAN), latents, latent diffusion, samples
$MDCLI train-ae --config "$CFG" --data "$RUN/train.h5" --classifier "$RUN/clf.h5" -o "$RUN/ae.h5"
$MDCLI encode --ae "$RUN/ae.h5" --data "$RUN/train.h5" -o "$RUN/latents.h5"
$MDCLI train-ldm --config "$CFG" --latents "$RUN/latents.h5" -o "$RUN/ldm.h5"
$MDCLI sample --config "$CFG" --ldm "$RUN/ldm.h5" -o "$RUN/samples.h5" --preview "$RUN/samples.png"

# 4. diagnostics on the held-out test part (JSON kept for the report)
$MDCLI diagnose recon --ae "$RUN/ae.h5" --data "$RUN/test.h5" --classifier "$RUN/judge.h5" --json > "$RUN/recon.json"
$MDCLI plot "$RUN/test.h5" --ae "$RUN/ae.h5" --per-class 2 -o "$RUN/reconstructions.png"
$MDCLI diagnose codebook --ae "$RUN/ae.h5" --data "$RUN/test.h5" --json --plot "$RUN" > "$RUN/codebook.json"
$MDCLI diagnose collapse --ae "$RUN/ae.h5" --data "$RUN/test.h5" --json > "$RUN/collapse.json"
$MDCLI diagnose generation --config "$CFG" --samples "$RUN/samples.h5" --real "$RUN/test.h5" \
    --classifier "$RUN/judge.h5" --json --plot "$RUN" > "$RUN/generation.json"

# 5. the report: Markdown + PNGs, headline figures printed
$MDCLI report "$RUN"
