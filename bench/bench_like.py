"""Rendering cost of `simulate --like` (after the fit) against plain `simulate`, per image.

    python bench/bench_like.py LIKE.h5 [--n 200]

LIKE.h5 is a file written by `simulate --like`: its stored config holds the fitted values. Both arms simulate the
same walkers with the same radar (carrier, PRF = the fitted Doppler span, duration, window, image size); the plain
arm without the --like processing (clutter removal, looks, Doppler placement, smear, fading, blur, colour map +
JPEG round trip), the --like arm with it (`like.fit: []`, no refit). In one process, alternating, best of 3.
Target: the ratio stays within 1.5.
"""

from __future__ import annotations

import argparse
import copy
import time

import h5py
import yaml

from mdcli.config import from_dict
from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("like")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    with h5py.File(args.like) as f:
        text = f.attrs["config"]
    cfg = from_dict(SimulateConfig, yaml.safe_load(text.decode() if isinstance(text, bytes) else text))
    cfg.n_per_class, cfg.workers, cfg.identities = args.n, 1, 0
    cfg.like.fit = []
    like = copy.deepcopy(cfg)
    plain = copy.deepcopy(cfg)
    plain.like.file = ""
    plain.processing.time_oversample = 1
    # the plain STFT with the window length --like uses, so both transform the same samples
    plain.processing.win_len = max(8, int(round(cfg.radar.prf_hz * cfg.like.window_s)))
    plain.processing.nfft = cfg.processing.image_size[0] * max(1, -(-plain.processing.win_len // cfg.processing.image_size[0]))
    best = {"plain": float("inf"), "like": float("inf")}
    for _ in range(3):
        for name, c in (("plain", plain), ("like", like)):
            t = time.perf_counter()
            simulate_dataset(c)
            best[name] = min(best[name], (time.perf_counter() - t) / args.n)
    print(f"plain {best['plain'] * 1e3:.2f} ms/image, --like {best['like'] * 1e3:.2f} ms/image, "
          f"ratio {best['like'] / best['plain']:.2f} (prf {cfg.radar.prf_hz:.0f} Hz, {cfg.radar.duration_s} s, "
          f"{cfg.processing.image_size}, colour map {cfg.like.colormap}, looks {cfg.like.looks})")


if __name__ == "__main__":
    main()
