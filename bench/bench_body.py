"""Cost of the distributed walker body (`walker.points_per_segment`) per image, against the midpoint body (K = 1).

    python bench/bench_body.py [--n 50] [--k 1,4,8,16] [--like LIKE.h5]

Plain `simulate --targets walker` at its defaults (24 GHz, 4 kHz, 2 s, 128x128), and with --like a file written by
`simulate --like` (its stored config: the fitted radar and rendering, no refit). The same walkers for every K,
alternating, best of 3; ms per image and the ratio to K = 1.
"""

from __future__ import annotations

import argparse
import copy
import time

from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_dataset


def _like_config(path: str) -> SimulateConfig:
    import h5py
    import yaml

    from mdcli.config import from_dict

    with h5py.File(path) as f:
        text = f.attrs["config"]
    cfg = from_dict(SimulateConfig, yaml.safe_load(text.decode() if isinstance(text, bytes) else text))
    cfg.like.fit = []
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--k", default="1,4,8,16")
    ap.add_argument("--like", default="")
    args = ap.parse_args()
    base = _like_config(args.like) if args.like else SimulateConfig(targets=["walker"])
    base.n_per_class, base.workers, base.identities = args.n, 1, 0
    ks = [int(k) for k in args.k.split(",")]
    best = {k: float("inf") for k in ks}
    for _ in range(3):
        for k in ks:
            cfg = copy.deepcopy(base)
            cfg.walker.points_per_segment = k
            t = time.perf_counter()
            simulate_dataset(cfg)
            best[k] = min(best[k], (time.perf_counter() - t) / args.n)
    what = f"--like {args.like}" if args.like else "plain"
    print(f"{what}: prf {base.radar.prf_hz:.0f} Hz, {base.radar.duration_s} s, {base.processing.image_size}")
    for k in ks:
        print(f"  K = {k:3d}: {best[k] * 1e3:7.2f} ms/image  ({best[k] / best[ks[0]]:.2f}x K = {ks[0]})")


if __name__ == "__main__":
    main()
