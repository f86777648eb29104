"""`make study`: VAE vs VQ-VAE vs VQ-GAN (and induced failures) on one dataset, same budget, same LDM.

    python -m mdcli.study --profile configs/study/cpu.yaml --dataset sim --out runs/study/sim
    python -m mdcli.study --profile configs/study/cpu.yaml --dataset gait --gait-dir ../shared/data/gait --out runs/study/gait

Every step is a plain `mdcli` command (run as a subprocess, so arms run in parallel with --jobs);
every number comes from the `diagnose` JSON of the held-out test part, judged by a classifier
trained independently of the generators. Writes OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import yaml


def mdcli(*args: str, stdout: Path | None = None, env: dict | None = None) -> None:
    cmd = [sys.executable, "-m", "mdcli", *args]
    with open(stdout, "w") if stdout else open(os.devnull, "w") as out:
        res = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()[-2000:]}")


def parallelism(study: dict, jobs: int | None, threads: int | None = None) -> tuple[int, int]:
    """(parallel arm pipelines, torch threads per process). CPU results depend on the thread count (the
    float summation order changes, and GAN training amplifies it), so a profile pins study.threads to
    give the same numbers on any machine; without it each job gets its share of the cores."""
    n = study.get("jobs", 1) if jobs is None else jobs
    t = study.get("threads") if threads is None else threads
    return n, max(1, (os.cpu_count() or 1) // max(1, n)) if t is None else t


def prepare(profile: Path, study: dict, dataset: str, out: Path, data: Path | None, gait_dir: Path, env: dict) -> dict:
    """Data, split, perceptual classifier and judge (shared by every arm)."""
    out.mkdir(parents=True, exist_ok=True)
    p = {k: out / f"{k}.h5" for k in ("data", "train", "test", "clf", "judge")}
    p["baselines"] = out / "baseline-fits"  # the generator-free fits of `diagnose generation`, shared by every arm
    p["baselines"].mkdir(exist_ok=True)
    if data is not None:
        p["data"] = data
    elif dataset == "sim":
        mdcli("simulate", "--config", str(profile), "-o", str(p["data"]), "-q", env=env)
    else:
        size = ",".join(str(v) for v in study.get("image_size", [64, 64]))
        mdcli("import", str(gait_dir), "--colormap", "jet", "--image-size", size, "-o", str(p["data"]), env=env)
    split = study["split"][dataset]
    mdcli("split", str(p["data"]), "--split", split["mode"], "--test-fraction", str(split["test_fraction"]),
          "--gap", str(split.get("gap", 3)), "--train-out", str(p["train"]), "--test-out", str(p["test"]), env=env)
    for name, seed in (("clf", 0), ("judge", 1)):
        mdcli("train-classifier", "--config", str(profile), "--data", str(p["train"]), "--seed", str(seed),
              "--split", split["mode"], "-o", str(p[name]), "-q", env=env)
    return p


def run_arm(profile: Path, study: dict, arm: str, seed: int, p: dict, out: Path, perceptual: str, env: dict) -> dict:
    d = out / f"{arm}_s{seed}"
    d.mkdir(exist_ok=True)
    f = {k: d / f"{k}.h5" for k in ("ae", "latents", "ldm", "samples")}
    sets = [a for s in study["arms"][arm] for a in ("--set", s)]
    t0 = time.perf_counter()
    mdcli("train-ae", "--config", str(profile), "--data", str(p["train"]), "--classifier", str(p["clf"]),
          "--perceptual", perceptual, "--seed", str(seed), *sets, "-o", str(f["ae"]), "-q", env=env)
    mdcli("encode", "--ae", str(f["ae"]), "--data", str(p["train"]), "-o", str(f["latents"]), "-q", env=env)
    mdcli("train-ldm", "--config", str(profile), "--latents", str(f["latents"]), "--seed", str(seed),
          "-o", str(f["ldm"]), "-q", env=env)
    mdcli("sample", "--config", str(profile), "--ldm", str(f["ldm"]), "--seed", str(seed), "-o", str(f["samples"]),
          "-q", "--preview", str(d / "samples.png"), env=env)
    for name, args in (
        ("recon", ["recon", "--ae", str(f["ae"]), "--data", str(p["test"]), "--classifier", str(p["judge"])]),
        ("collapse", ["collapse", "--ae", str(f["ae"]), "--data", str(p["test"])]),
        ("generation", ["generation", "--config", str(profile), "--samples", str(f["samples"]), "--real", str(p["test"]),
                        "--classifier", str(p["judge"]), "--train", str(p["train"]), "--set", f"seeds=[{seed}]",
                        "--baseline-cache", str(p["baselines"])]),
    ):
        mdcli("diagnose", *args, "--json", stdout=d / f"{name}.json", env=env)
    res = {k: json.loads((d / f"{k}.json").read_text()) for k in ("recon", "collapse", "generation")}
    res["seconds"] = time.perf_counter() - t0
    return res


def row(res: dict) -> dict:
    """The study table's numbers for one trained arm and seed."""
    lat, gen = res["collapse"]["latent"], res["generation"]
    r = {"psnr": res["recon"]["overall"]["psnr"], "ssim": res["recon"]["overall"]["ssim"],
         "recon_fmd": res["recon"]["overall"].get("fmd"),
         "label": res["collapse"]["label"],
         "hf_share": lat["spectrum"]["latent_high_freq_share"], "eq_half_psnr": lat["equivariance"].get("half_psnr", np.nan),
         "fmd": gen["fmd"], "precision": gen["precision"], "recall": gen["recall"],
         "judge_acc_gen": gen["judge_accuracy_generated"], "tstr": gen["tstr"]["tstr"]["mean"], "trtr": gen["tstr"]["trtr"]["mean"]}
    if "vae" in lat:
        r.update(active_share=lat["vae"]["active_share"], variance_index=lat["vae"]["variance_collapse_index"])
    if "vq" in lat:
        r.update(usage=lat["vq"]["codebook_usage"], perplexity=lat["vq"]["perplexity"], nmi=lat["vq"]["neighbour_mi_ratio"],
                 damage=lat["vq"]["damage_ratio"])
    for n, arms in gen.get("augmentation", {}).items():
        r[f"few{n}_real"] = arms["real"]["mean"]
        r[f"few{n}_classic"] = arms["real+classic"]["mean"]
        r[f"few{n}_generated"] = arms["real+generated"]["mean"]
    return r


COLUMNS = [("psnr", "PSNR dB"), ("ssim", "SSIM"), ("label", "collapse label"), ("usage", "code usage"),
           ("perplexity", "perplexity"), ("active_share", "active units"), ("variance_index", "var.-collapse idx"),
           ("nmi", "nbr-code MI/H"), ("damage", "damage ratio"), ("hf_share", "latent HF share"),
           ("eq_half_psnr", "EQ 2x-down PSNR"), ("recon_fmd", "recon FMD"), ("fmd", "FMD"), ("precision", "precision"), ("recall", "recall"),
           ("judge_acc_gen", "judge acc (gen)"), ("tstr", "TSTR acc"), ("trtr", "TRTR acc")]


def table(rows: dict[str, list[dict]], few: list[int]) -> str:
    cols = COLUMNS + [(f"few{n}_{a}", f"{n}/cls {a}") for n in few for a in ("real", "classic", "generated")]
    out = ["| arm | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for arm, rs in rows.items():
        cells = []
        for key, _ in cols:
            vals = [r.get(key) for r in rs if r.get(key) is not None]
            if not vals:
                cells.append("–")
            elif isinstance(vals[0], str):
                cells.append(", ".join(sorted(set(vals))))
            else:
                cells.append(f"{np.mean(vals):.3g} ± {np.std(vals):.2g}")
        out.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def constructed_rows(out: Path, p: dict, seed: int, threads: int) -> dict:
    """Posterior collapse by construction: the trained VQ-VAE with its codes relabelled (see mdcli.constructed)."""
    import torch

    torch.set_num_threads(threads)
    from mdcli.constructed import PermutedVQ
    from mdcli.data import load_images
    from mdcli.latent import CollapseThresholds, LatentConfig, collapse_label, latent_report
    from mdcli.train.ae import load_autoencoder

    path = out / f"vqvae_s{seed}" / "ae.h5"
    if not path.exists():
        return {}
    vq, attrs, _ = load_autoencoder(path)
    x, y, data = load_images(p["test"])
    hw = tuple(attrs["latent_shape"][1:])
    res = {}
    for name, model in (("vqvae, codes relabelled (global)", PermutedVQ(vq, hw, seed=seed)),
                        ("vqvae, codes relabelled (per position)", PermutedVQ(vq, hw, per_position=True, seed=seed))):
        lat = latent_report(model, x, y, LatentConfig(), data.sequence, "vqvae")
        label, _ = collapse_label(lat, CollapseThresholds())
        res[name] = {"label": label, "psnr": lat["equivariance"]["recon_psnr"], "usage": lat["vq"]["codebook_usage"],
                     "perplexity": lat["vq"]["perplexity"], "nmi": lat["vq"]["neighbour_mi_ratio"],
                     "damage": lat["vq"]["damage_ratio"], "hf_share": lat["spectrum"]["latent_high_freq_share"],
                     "eq_half_psnr": lat["equivariance"].get("half_psnr")}
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", type=Path, required=True)
    ap.add_argument("--dataset", choices=["sim", "gait"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="Use these spectrograms instead of simulating/importing.")
    ap.add_argument("--gait-dir", type=Path, default=Path("../shared/data/gait"))
    ap.add_argument("--perceptual", default="domain", help="domain | lpips-vgg (needs the ImageNet VGG weights)")
    ap.add_argument("--jobs", type=int, help="arm pipelines run in parallel (default: the profile's study.jobs, else 1)")
    ap.add_argument("--threads", type=int, help="torch threads per process (default: the profile's study.threads, "
                    "else the cores shared out over the jobs)")
    ap.add_argument("--arms", help="comma-separated subset of the profile's arms and extra_arms (default: its arms)")
    a = ap.parse_args(argv)
    study = yaml.safe_load(a.profile.read_text())["study"]
    # extra_arms: measured follow-ups (e.g. a fix tried on VQ-GAN) that run only when --arms names them
    known = study["arms"] | (study.get("extra_arms") or {})
    arms = a.arms.split(",") if a.arms else list(study["arms"])
    unknown = [arm for arm in arms if arm not in known]
    if unknown:
        ap.error(f"--arms: unknown {', '.join(unknown)}; {a.profile} has {', '.join(known)}")
    study["arms"] = known
    t0 = time.perf_counter()
    n_jobs, threads = parallelism(study, a.jobs, a.threads)
    if n_jobs < 1 or threads < 1:
        ap.error(f"--jobs/--threads (study.jobs/study.threads in {a.profile}) must be at least 1, got {n_jobs}/{threads}")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = prepare(a.profile, study, a.dataset, a.out, a.data, a.gait_dir, env)
    jobs = [(arm, seed) for arm in arms for seed in study["seeds"]]
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    raw: dict[str, dict] = {}
    few = yaml.safe_load(a.profile.read_text()).get("diagnose-generation", {}).get("few", [20, 50])
    split = study["split"][a.dataset]

    def write(final: bool) -> str:
        """results.md / results.json, rewritten as arms finish (a killed study keeps what it measured)."""
        wall = time.perf_counter() - t0
        header = (f"dataset {a.dataset}, {split['mode']} split (test fraction {split['test_fraction']}), "
                  f"seeds {study['seeds']}, perceptual {a.perceptual}, {n_jobs} job(s) x {threads} thread(s), wall time {wall / 60:.1f} min"
                  f"{'' if final else ' (incomplete)'}\n\n")
        md = header + table({k: v for k, v in results.items() if v}, few) + "\n"
        (a.out / "results.md").write_text(md)
        (a.out / "results.json").write_text(json.dumps(
            {"rows": results, "raw": raw, "wall_s": wall, "profile": str(a.profile), "dataset": a.dataset,
             "split": split, "jobs": n_jobs, "threads": threads, "complete": final}, indent=1, default=float))
        return md

    with ThreadPoolExecutor(n_jobs) as pool:
        futures = {pool.submit(run_arm, a.profile, study, *job, p, a.out, a.perceptual, env): job for job in jobs}
        for fut in as_completed(futures):
            arm, seed = futures[fut]
            try:
                res = fut.result()
            except RuntimeError as e:
                print(f"{arm} seed {seed}: FAILED {e}", flush=True)
                continue
            raw[f"{arm}_s{seed}"] = res
            results[arm].append(row(res))
            write(False)
            print(f"{arm} seed {seed}: {res['collapse']['label']}, PSNR {res['recon']['overall']['psnr']:.2f}, "
                  f"FMD {res['generation']['fmd']:.3g} ({res['seconds']:.0f} s)", flush=True)
    results.update({name: [r] for name, r in constructed_rows(a.out, p, study["seeds"][0], threads).items()})
    print(write(True))


if __name__ == "__main__":
    main()
