"""Sampler efficiency: sample quality (FMD in an independent judge's features) against sampling cost.

    python bench/bench_samplers.py --ldm runs/demo/ldm.h5 --judge runs/demo/judge.h5 --real runs/demo/test.h5 --n 40

Same model, same initial noise seeds; ddpm 1000 steps vs ddim 50 vs dpmpp-2m 20 (and 10) vs its
stochastic form dpmpp-2m-sde at 20 and 50. Target:
dpmpp-2m at 20 steps within 5% of ddpm at 1000 steps in FMD.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mdcli.diagnose.generation import GenerationConfig, generation_report
from mdcli.sample import SampleConfig, write_samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ldm", type=Path, required=True)
    ap.add_argument("--judge", type=Path, required=True)
    ap.add_argument("--real", type=Path, required=True, help="held-out real spectrograms")
    ap.add_argument("--n", type=int, default=40, help="samples per class")
    ap.add_argument("--cfg-scale", type=float, default=1.5)
    ap.add_argument("--plan", default="ddpm:1000,ddim:50,dpmpp-2m:20,dpmpp-2m:10,dpmpp-2m-sde:20,dpmpp-2m-sde:50")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in a.plan.split(","):
            sampler, steps = item.split(":")
            out = Path(tmp) / f"{sampler}_{steps}.h5"
            cfg = SampleConfig(n_per_class=a.n, sampler=sampler, steps=int(steps), cfg_scale=a.cfg_scale, batch_size=256)
            t0 = time.perf_counter()
            data = write_samples(cfg, a.ldm, out)
            dt = time.perf_counter() - t0
            r = generation_report(out, a.real, a.judge, None, GenerationConfig(tstr=False))
            rows.append((sampler, int(steps), dt / len(data), r["fmd"], r["precision"], r["recall"], r["judge_accuracy_generated"]))
            print(f"{sampler:>9} {int(steps):5d} steps: {dt / len(data) * 1e3:8.1f} ms/sample  FMD {r['fmd']:.4f}  "
                  f"precision {r['precision']:.3f}  recall {r['recall']:.3f}  judge acc {r['judge_accuracy_generated']:.3f}", flush=True)
    ref = next((r for r in rows if r[0] == "ddpm"), None)
    if ref:
        for r in rows[1:]:
            print(f"{r[0]} {r[1]} vs ddpm {ref[1]}: FMD ratio {r[3] / ref[3]:.3f}, {ref[2] / r[2]:.0f}x faster")


if __name__ == "__main__":
    main()
