"""Sampling latency per image for each sampler on a trained LDM (plus decoding).

    python bench/bench_sample.py --ldm runs/small/ldm_vqgan.h5 --n 16

Prints seconds per generated spectrogram for ddpm (1000 steps), ddim (50) and dpmpp-2m (20).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mdcli.sample import SampleConfig, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ldm", type=Path, required=True)
    ap.add_argument("--n", type=int, default=16, help="samples per class")
    ap.add_argument("--classes", default="walker")
    args = ap.parse_args()
    for sampler, steps in (("ddpm", 1000), ("ddim", 50), ("dpmpp-2m", 20)):
        cfg = SampleConfig(n_per_class=args.n, classes=args.classes.split(","), sampler=sampler, steps=steps,
                           batch_size=args.n, cfg_scale=1.5)
        t0 = time.perf_counter()
        data, _, _ = generate(cfg, args.ldm)
        dt = time.perf_counter() - t0
        print(f"{sampler:>9} {steps:5d} steps: {dt / len(data) * 1e3:8.1f} ms per spectrogram ({len(data)} in {dt:.1f} s)")


if __name__ == "__main__":
    main()
