"""Cost of the distributed walker body (`walker.points_per_segment`) per image, against the midpoint body (K = 1).

    python bench/bench_body.py [--n 50] [--k 1,4,8,16] [--like LIKE.h5] [--foot-lock] [--beam W]

Plain `simulate --targets walker` at its defaults (24 GHz, 4 kHz, 2 s, 128x128), and with --like a file written by
`simulate --like` (its stored config: the fitted radar and rendering, no refit). The same walkers for every K,
alternating, best of 3; ms per image and the ratio to K = 1. --foot-lock / --beam W: each K also with
walker.foot_lock / radar.beam_elevation_deg = W, and the ratio to the same K without.
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
    ap.add_argument("--foot-lock", action="store_true")
    ap.add_argument("--beam", type=float, default=0.0)
    args = ap.parse_args()
    base = _like_config(args.like) if args.like else SimulateConfig(targets=["walker"])
    base.n_per_class, base.workers, base.identities = args.n, 1, 0
    ks = [int(k) for k in args.k.split(",")]
    variants = [False, True] if args.foot_lock or args.beam else [False]
    best = {(k, v): float("inf") for k in ks for v in variants}
    for _ in range(3):
        for k, v in best:
            cfg = copy.deepcopy(base)
            cfg.walker.points_per_segment = k
            if v:
                cfg.walker.foot_lock = cfg.walker.foot_lock or args.foot_lock
                cfg.radar.beam_elevation_deg = args.beam or cfg.radar.beam_elevation_deg
            t = time.perf_counter()
            simulate_dataset(cfg)
            best[k, v] = min(best[k, v], (time.perf_counter() - t) / args.n)
    what = f"--like {args.like}" if args.like else "plain"
    print(f"{what}: prf {base.radar.prf_hz:.0f} Hz, {base.radar.duration_s} s, {base.processing.image_size}, "
          f"foot_lock {base.walker.foot_lock}, beam {base.radar.beam_elevation_deg} deg")
    for k in ks:
        print(f"  K = {k:3d}: {best[k, False] * 1e3:7.2f} ms/image  ({best[k, False] / best[ks[0], False]:.2f}x K = {ks[0]})")
        if True in variants:
            extra = " ".join(x for x, on in (("--foot-lock", args.foot_lock), (f"--beam {args.beam:g}", args.beam)) if on)
            print(f"          {extra}: {best[k, True] * 1e3:7.2f} ms/image  ({best[k, True] / best[k, False]:.2f}x without)")

if __name__ == "__main__":
    main()
