"""Peak resident memory of training against dataset size: 10k vs 100k spectrograms.

    python bench/bench_memory.py [--sizes 10000,100000] [--steps 30]

Writes synthetic `spectrograms` artifacts (chunked per sample, as `simulate` writes them) of each
size into a temp folder, trains the tiny autoencoder / classifier / LDM for a few steps on each in
a fresh process, and prints each run's peak RSS (ru_maxrss of the child). Training streams batches
from disk, so the peak should not grow with N (target: within 15%).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny"


def write_synthetic(path: Path, n: int, size: int = 32, classes: int = 5) -> None:
    from mdcli.artifacts import atomic_h5, write_header

    rng = np.random.default_rng(0)
    with atomic_h5(path) as f:
        write_header(f, "spectrograms", "synthetic: true\n", 0, [])
        f.attrs["class_names"] = np.array([f"c{i}" for i in range(classes)], dtype=h5py.string_dtype())
        for k, v in (("carrier_hz", 24e9), ("prf_hz", 4000.0), ("dynamic_range_db", 50.0)):
            f.attrs[k] = v
        f.attrs["source"] = "simulated"
        ds = f.create_dataset("spectrograms", (n, size, size), np.float32, chunks=(1, size, size))
        block = 5000
        for i in range(0, n, block):
            m = min(block, n - i)
            ds[i : i + m] = rng.random((m, size, size), dtype=np.float32)
        f.create_dataset("labels", data=np.arange(n) % classes)
        axes = f.create_group("axes")
        axes.create_dataset("doppler_hz", data=np.linspace(-2000, 2000, size))
        axes.create_dataset("time_s", data=np.linspace(0, 2, size))
        f.create_group("params")




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", type=int, default=64, help="image side (64: 1.6 GB of float32 at N = 100k)")
    ap.add_argument("--only", default="", help="comma-separated subset of train-ae,train-classifier,encode,train-ldm")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = {}
        for n in sizes:
            data = tmp / f"d{n}.h5"
            t0 = time.perf_counter()
            write_synthetic(data, n, a.size)
            print(f"wrote {n} synthetic {a.size}x{a.size} spectrograms ({data.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            # each command's own peak, measured in a fresh wrapper process (ru_maxrss of its child)
            r = {}
            for name, args in (
                ("train-ae", ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(data), "--arch", "vqvae",
                              "--set", "model.channel_mult=[1,2,2,2]",
                              "--perceptual", "none", "--steps", str(a.steps), "-o", str(tmp / f"ae{n}.h5"), "-q"]),
                ("train-classifier", ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(data),
                                      "--steps", str(a.steps), "-o", str(tmp / f"c{n}.h5"), "-q"]),
                ("encode", ["encode", "--ae", str(tmp / f"ae{n}.h5"), "--data", str(data), "-o", str(tmp / f"l{n}.h5"), "-q"]),
                ("train-ldm", ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(tmp / f"l{n}.h5"),
                               "--steps", str(a.steps), "-o", str(tmp / f"ldm{n}.h5"), "-q"]),
            ):
                if a.only and name not in a.only.split(","):
                    continue
                r[name] = child_peak(args)
                print(f"  N={n:>7}  {name:<17} peak RSS {r[name]:7.0f} MB", flush=True)
            rows[n] = r
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            for name in rows[lo]:
                print(f"{name:<17} peak RSS {rows[lo][name]:.0f} MB (N={lo}) vs {rows[hi][name]:.0f} MB (N={hi}): "
                      f"{rows[hi][name] / rows[lo][name] - 1:+.1%}")


def child_peak(args: list[str]) -> float:
    """Peak RSS of one mdcli command, measured inside a fresh wrapper process (its own ru_maxrss)."""
    code = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', 'mdcli'] + sys.argv[1:], "
            "capture_output=True, text=True); sys.stderr.write(r.stderr); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return int(res.stdout.strip().splitlines()[-1]) / 1024


if __name__ == "__main__":
    main()
