"""Simulator throughput: spectrograms per second, and the cost relative to the bare STFT.

Run with `make bench` (or `python bench/bench_simulate.py --n 200 --workers 2`).
Prints spectrograms/s for 1 and N workers on the default config (128x128 images),
per-target time per spectrogram, and the ratio of the full simulation time to the
time of the bare STFT -> dB -> image step on the same signals (how close to the limit).
Absolute times on shared machines are noise; read the ratios.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_dataset, simulate_signal, spectrogram_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="spectrograms per class")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    cfg = SimulateConfig(n_per_class=args.n, workers=1)
    h, w = cfg.processing.image_size
    print(f"simulate bench: {len(cfg.targets)} classes x {args.n}, {h}x{w} images, "
          f"PRF {cfg.radar.prf_hz:g} Hz, {cfg.radar.duration_s:g} s, cores={os.cpu_count()}")

    # Per-target cost and the bare STFT cost on the same signals.
    sig_time = stft_time = 0.0
    for target in cfg.targets:
        k = max(20, args.n // 5)
        t0 = time.perf_counter()
        sigs = [simulate_signal(cfg, target, i)[0] for i in range(k)]
        t1 = time.perf_counter()
        for s in sigs:
            spectrogram_image(s, cfg)
        t2 = time.perf_counter()
        sig_time += (t1 - t0) / k
        stft_time += (t2 - t1) / k
        print(f"  {target:<11} signal {1e3 * (t1 - t0) / k:6.2f} ms   spectrogram {1e3 * (t2 - t1) / k:5.2f} ms")
    per = (sig_time + stft_time) / len(cfg.targets)
    print(f"  mean per spectrogram: {1e3 * per:.2f} ms; total / bare-STFT time = {(sig_time + stft_time) / stft_time:.1f}x")

    for workers in sorted({1, args.workers}):
        cfg.workers = workers
        t0 = time.perf_counter()
        data, _ = simulate_dataset(cfg)
        dt = time.perf_counter() - t0
        print(f"  workers={workers}: {len(data)} spectrograms in {dt:.2f} s = {len(data) / dt:,.0f} spectrograms/s")
    assert np.isfinite(data.spectrograms).all()


if __name__ == "__main__":
    main()
