"""`mdcli study` (`make study`): VAE vs VQ-VAE vs VQ-GAN (and induced failures) on one dataset, same budget, same LDM.

    mdcli study --profile configs/study/cpu.yaml --dataset sim --out runs/study/sim
    mdcli study --profile configs/study/cpu.yaml --dataset gait --gait-dir ../shared/data/gait --out runs/study/gait

(`python -m mdcli.study ARGS` is the same command.)

Every step is a plain `mdcli` command (run as a subprocess, so arms run in parallel with --jobs);
every number comes from the `diagnose` JSON of the held-out test part, judged by a classifier
trained independently of the generators; the augmentation table is one `mdcli diagnose gain` call over
every arm's samples (OUT/gain.json). Writes OUT/results.json and OUT/results.md.

A study resumes: run the same command again after a kill and it reuses the shared data and judge
(OUT/study.json), every finished arm-seed (OUT/ARM_sSEED/result.json) and every finished stage of an
unfinished one, and continues its training from the checkpoint. Each record carries a key of what it
was made from (profile sections, dataset, threads, arm settings, seed, mdcli version); an OUT made from
anything else is refused. At one thread a resumed study gives the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import yaml

from mdcli.choices import PERCEPTUAL_CHOICES
from mdcli.errors import MdcliError


class StageFailed(MdcliError):
    """A stage's `mdcli` subprocess failed: one line (the command and the end of its error output). An arm's
    failure is reported and the study goes on; the shared data or classifiers failing ends the study, exit 2."""


_children: set[subprocess.Popen] = set()  # the stages running now, in any thread
_stopping = threading.Event()  # set by a SIGTERM / Ctrl-C of the study: no new stage starts


def stops_its_stages(fn):
    """Run the study `fn` so that SIGTERM (a scheduler's limit, `timeout`, `docker stop`) or Ctrl-C stops it:
    no new stage starts, the running ones get SIGTERM (a trainer checkpoints at its step boundary; Ctrl-C from a
    terminal reaches them itself) and are waited for, then KeyboardInterrupt. Before, the thread pool went on
    with every queued arm-seed after the signal."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)

        def stop(signum, frame):
            _stopping.set()
            if signum == signal.SIGTERM:
                for proc in list(_children):
                    with contextlib.suppress(OSError):
                        proc.send_signal(signal.SIGTERM)
            raise KeyboardInterrupt

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return fn(*args, **kwargs)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            _stopping.clear()

    return wrapper


def mdcli(*args: str, stdout: Path | None = None, env: dict | None = None) -> None:
    """Run one `mdcli` command; `stdout` (a JSON report) is written atomically: a temp file, renamed on success."""
    if _stopping.is_set():
        raise StageFailed(f"mdcli {' '.join(args)}: not started, the study is stopping")
    cmd = [sys.executable, "-m", "mdcli", *args]
    tmp = stdout.with_name(f".{stdout.name}.tmp") if stdout else None
    with open(tmp, "w") if tmp else open(os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, env=env)
        _children.add(proc)
        try:
            if _stopping.is_set():  # the stop came between the check above and the start
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate()
        except KeyboardInterrupt:  # this thread is the study's main one: let the stage end as it was told to
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if tmp:
                tmp.unlink(missing_ok=True)
            raise
        finally:
            _children.discard(proc)
    if proc.returncode != 0:
        if tmp:
            tmp.unlink(missing_ok=True)
        tail = " | ".join(line.strip() for line in err.strip().splitlines()[-3:])
        raise StageFailed(f"mdcli {' '.join(args)} failed (exit {proc.returncode}): {tail}")
    if tmp:
        os.replace(tmp, stdout)


def write_json(path: Path, obj) -> None:
    """`obj` as strict JSON (NaN/inf -> null, as every --json output: mdcli.jsonio.strict_json), written atomically."""
    from mdcli.jsonio import strict_json

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(strict_json(obj), indent=1, allow_nan=False))
    os.replace(tmp, path)


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def study_key(profile_data: dict, dataset: str, data: Path | None, gait_dir: Path, threads: int) -> dict:
    """What the shared part of a study (data, split, classifier, judge) and every arm's budget are made of:
    the profile without its arm lists and scheduling, the dataset, the thread count and the code (a fix that
    changes what a stage computes must not reuse the results of the code before it) and, for a profile that
    trains in bf16-native precision, whether this CPU computes bf16 natively."""
    from mdcli import __version__, code_digest
    from mdcli.artifacts import tree_sha256

    body = {k: v for k, v in profile_data.items() if k != "study"}
    body["study"] = {k: v for k, v in profile_data.get("study", {}).items() if k not in ("arms", "extra_arms", "jobs", "seeds", "judges", "few")}
    src = {"data": str(data), "data_sha256": file_sha256(data)} if data is not None else (
        {"gait_dir": str(gait_dir.resolve()), "gait_sha256": tree_sha256(gait_dir)} if dataset == "gait" else {})
    key = {"profile": digest(body), "dataset": dataset, **src, "threads": threads, "mdcli": __version__,
           "code": code_digest()}
    if any(isinstance(sec, dict) and (sec.get("train") or {}).get("precision") == "bf16-native" for sec in profile_data.values()):
        import torch

        from mdcli.train.precision import native_bf16

        # bf16-native trains in bf16 on this CPU or in fp32 on another: a study resumed on the other kind would mix the two
        key["native_bf16"] = native_bf16(torch.device("cpu"))
    return key


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def made_from(output: Path, inputs: tuple[Path, ...]) -> bool:
    """Whether the artifact `output` records the current content of every one of `inputs` among its parents."""
    if not inputs:
        return True
    import h5py

    with h5py.File(output, "r") as h:
        recorded = {rec["sha256"] for rec in json.loads(h.attrs.get("parents", "[]"))}
    return all(file_sha256(i) in recorded for i in inputs)


SHARED = ("data", "train", "test", "clf", "judge")  # OUT/<name>.h5, made once and shared by every arm


def check_resumable(out: Path, key: dict, arm_keys: dict[str, dict], data: Path | None = None) -> str | None:
    """Why OUT cannot be resumed by this study (None when it can, or when it is new). `data`: the user's
    spectrograms (--data), read where they are, so an OUT/data.h5 is not one the study would write."""
    rec = out / "study.json"
    if rec.exists():
        old = json.loads(rec.read_text()).get("key")
        if old != key:
            diff = ", ".join(k for k in sorted(set(old or {}) | set(key)) if (old or {}).get(k) != key.get(k))
            return f"--out {out}: holds a study made with a different {diff}; choose another --out or delete it"
    else:
        found = [f"{k}.h5" for k in SHARED if (out / f"{k}.h5").exists() and not (k == "data" and data is not None)]
        if found and not (out / "baseline-fits").is_dir():  # files a study would overwrite, no sign a study made them
            # (every mdcli study makes baseline-fits/ first: an older one killed before its study.json resumes)
            return (f"--out {out}: holds {', '.join(found)} but no study.json (not a study's folder); choose another "
                    "--out, or move them")
    for name, k in arm_keys.items():
        d = out / name
        if not d.exists() or not any(d.iterdir()):
            continue
        if not (d / "arm.json").exists():
            return f"--out {out}: {name}/ was not written by a resumable study (no arm.json); delete it to rerun that arm"
        if json.loads((d / "arm.json").read_text()).get("key") != k:
            return f"--out {out}: {name}/ was made with other arm settings; choose another --out or delete {name}/"
    return None


def parallelism(study: dict, jobs: int | None, threads: int | None = None) -> tuple[int, int]:
    """(parallel arm pipelines, torch threads per process). CPU results depend on the thread count (the
    float summation order changes, and GAN training amplifies it), so a profile pins study.threads to
    give the same numbers on any machine; without it each job gets its share of the cores."""
    n = study.get("jobs", 1) if jobs is None else jobs
    t = study.get("threads") if threads is None else threads
    return n, max(1, (os.cpu_count() or 1) // max(1, n)) if t is None else t


def prepare(profile: Path, study: dict, dataset: str, out: Path, data: Path | None, gait_dir: Path, env: dict,
            key: dict, jobs: int = 1) -> dict:
    """Data, split, perceptual classifier and judge (shared by every arm); reused when OUT/study.json
    records that they were made with `key` (check_resumable refuses any other). With `jobs` > 1 the two
    classifiers train side by side (separate seeded processes: the same models as one after the other)."""
    out.mkdir(parents=True, exist_ok=True)
    p = {k: out / f"{k}.h5" for k in SHARED}
    p["baselines"] = out / "baseline-fits"  # the generator-free fits of `diagnose generation`, shared by every arm
    p["baselines"].mkdir(exist_ok=True)
    if data is not None:
        p["data"] = data
    record = json.loads((out / "study.json").read_text()) if (out / "study.json").exists() else {}
    if record.get("prepared", True) and record and all(p[k].exists() for k in SHARED):
        return p
    write_json(out / "study.json", {"key": key, "prepared": False})  # from here on the folder is this study's
    if data is not None:
        pass  # the user's spectrograms: read, never written
    elif dataset == "sim":
        mdcli("simulate", "--config", str(profile), "-o", str(p["data"]), "-q", env=env)
    else:
        size = ",".join(str(v) for v in study.get("image_size", [64, 64]))
        mdcli("import", str(gait_dir), "--colormap", "jet", "--image-size", size, "-o", str(p["data"]), env=env)
    split = study["split"][dataset]
    mdcli("split", str(p["data"]), "--split", split["mode"], "--test-fraction", str(split["test_fraction"]),
          "--gap", str(split.get("gap", 3)), "--train-out", str(p["train"]), "--test-out", str(p["test"]), env=env)
    def classifier(name: str, seed: int) -> None:
        mdcli("train-classifier", "--config", str(profile), "--data", str(p["train"]), "--seed", str(seed),
              "--split", split["mode"], "-o", str(p[name]), "-q", env=env)

    with ThreadPoolExecutor(min(2, max(1, jobs))) as pool:
        list(pool.map(classifier, ("clf", "judge"), (0, 1)))
    write_json(out / "study.json", {"key": key})
    return p


def arm_key(key: dict, study: dict, arm: str, seed: int, perceptual: str) -> dict:
    return {"study": digest(key), "arm": arm, "settings": study["arms"][arm], "seed": seed, "perceptual": perceptual}


def run_arm(profile: Path, study: dict, arm: str, seed: int, p: dict, out: Path, perceptual: str, env: dict,
            akey: dict) -> dict:
    """One arm-seed's pipeline. A finished one (result.json) is reused; in an unfinished one each stage whose
    output exists is skipped (outputs are written atomically) and training continues from its checkpoint.
    A stage's output counts only if its lineage holds the current content of the stage's inputs: one made
    from a file since replaced (a model retrained by hand in the arm folder) is made again, with every stage
    after it."""
    d = out / f"{arm}_s{seed}"
    d.mkdir(exist_ok=True)
    f = {k: d / f"{k}.h5" for k in ("ae", "latents", "ldm", "samples")}
    ae_inputs = (p["train"], p["clf"]) if perceptual == "domain" else (p["train"],)  # lpips-vgg: no classifier
    lineage = [(f["ae"], ae_inputs), (f["latents"], (f["ae"], p["train"])), (f["ldm"], (f["latents"],)),
               (f["samples"], (f["ldm"],))]
    if (d / "result.json").exists() and all(not o.exists() or made_from(o, inputs) for o, inputs in lineage):
        return json.loads((d / "result.json").read_text()) | {"reused": True}
    (d / "result.json").unlink(missing_ok=True)
    write_json(d / "arm.json", {"key": akey})
    for stale in (out / "judges").glob(f"{d.name}__*.json"):  # extra judges' scores of samples about to be remade
        stale.unlink()
    sets = [a for s in study["arms"][arm] for a in ("--set", s)]
    stages = [
        (f["ae"], ["train-ae", "--config", str(profile), "--data", str(p["train"]), "--classifier", str(p["clf"]),
                   "--perceptual", perceptual, "--seed", str(seed), *sets, "-o", str(f["ae"]), "-q", "--resume"], None),
        (f["latents"], ["encode", "--ae", str(f["ae"]), "--data", str(p["train"]), "-o", str(f["latents"]), "-q"], None),
        (f["ldm"], ["train-ldm", "--config", str(profile), "--latents", str(f["latents"]), "--seed", str(seed),
                    "-o", str(f["ldm"]), "-q", "--resume"], None),
        ((f["samples"], d / "samples.png"), ["sample", "--config", str(profile), "--ldm", str(f["ldm"]), "--seed", str(seed), "-o", str(f["samples"]),
                        "-q", "--preview", str(d / "samples.png")], None),
        (d / "recon.json", ["diagnose", "recon", "--ae", str(f["ae"]), "--data", str(p["test"]), "--classifier", str(p["judge"]),
                            "--json"], d / "recon.json"),
        (d / "collapse.json", ["diagnose", "collapse", "--ae", str(f["ae"]), "--data", str(p["test"]), "--json"], d / "collapse.json"),
        (d / "generation.json", ["diagnose", "generation", "--config", str(profile), "--samples", str(f["samples"]),
                                 "--real", str(p["test"]), "--classifier", str(p["judge"]), "--train", str(p["train"]),
                                 "--set", f"seeds=[{seed}]", "--set", "few=[]", "--baseline-cache", str(p["baselines"]),
                                 "--json"], d / "generation.json"),  # augmentation: one `diagnose gain` for all arms
    ]
    timing = d / "seconds.json"  # per stage, kept across resumes (the killed part of a stage is not counted)
    seconds = json.loads(timing.read_text()) if timing.exists() else {}
    inputs = dict(lineage)
    redo = False  # once a stage runs, every later one runs too (the diagnoses' JSON carries no lineage)
    for outputs, args, stdout in stages:
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        if not redo and all(o.exists() and made_from(o, inputs.get(o, ())) for o in outputs):
            continue
        if redo or any(o.exists() for o in outputs):  # made from other inputs, or after a stage made again
            for o in outputs:  # (a killed stage's checkpoint, with nothing remade before it, is resumed)
                o.unlink(missing_ok=True)
            Path(str(outputs[0]) + ".ckpt").unlink(missing_ok=True)
        redo = True
        t0 = time.perf_counter()
        mdcli(*args, stdout=stdout, env=env)
        seconds[outputs[0].name] = seconds.get(outputs[0].name, 0.0) + time.perf_counter() - t0
        write_json(timing, seconds)
    res = {k: json.loads((d / f"{k}.json").read_text()) for k in ("recon", "collapse", "generation")}
    res["seconds"] = sum(seconds.values())
    write_json(d / "result.json", res)
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
    return r


COLUMNS = [("psnr", "PSNR dB"), ("ssim", "SSIM"), ("label", "collapse label"), ("usage", "code usage"),
           ("perplexity", "perplexity"), ("active_share", "active units"), ("variance_index", "var.-collapse idx"),
           ("nmi", "nbr-code MI/H"), ("damage", "damage ratio"), ("hf_share", "latent HF share"),
           ("eq_half_psnr", "EQ 2x-down PSNR"), ("recon_fmd", "recon FMD"), ("fmd", "FMD"), ("precision", "precision"), ("recall", "recall"),
           ("judge_acc_gen", "judge acc (gen)"), ("tstr", "TSTR acc"), ("trtr", "TRTR acc")]


def fmt_spread(vals: list[float]) -> str:
    from mdcli.diagnose.stats import fmt_spread as fmt

    return fmt(vals)


def table(rows: dict[str, list[dict]]) -> str:
    """The study's Markdown table: per arm, each of COLUMNS as mean ± spread over its runs (strings: the set)."""
    out = ["| arm | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for arm, rs in rows.items():
        cells = []
        for key, _ in COLUMNS:
            vals = [r.get(key) for r in rs if r.get(key) is not None]
            if not vals:
                cells.append("–")
            elif isinstance(vals[0], str):
                cells.append(", ".join(sorted(set(vals))))
            else:
                cells.append(fmt_spread(vals))
        out.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def train_judge(profile: Path, p: dict, out: Path, seed: int, split_mode: str, env: dict) -> Path:
    """An extra judge: the study judge's recipe with another seed, on the same training part (so just as
    independent of the generators); reused when already on disk (written atomically)."""
    jd = out / "judges"
    jd.mkdir(exist_ok=True)
    judge = jd / f"judge_s{seed}.h5"
    if not judge.exists():
        mdcli("train-classifier", "--config", str(profile), "--data", str(p["train"]), "--seed", str(seed),
              "--split", split_mode, "-o", str(judge), "-q", env=env)
    return judge


def rejudge(profile: Path, p: dict, out: Path, names: list[str], seeds: list[int], split_mode: str, env: dict,
            jobs: int = 1) -> dict:
    """Every arm's samples scored by more judges (train_judge). FMD lives in a judge's feature space, whose
    scale and geometry change with the judge's seed, so a ranking of arms means something only when it holds
    under several. Feature metrics only (no TSTR/augmentation fits); reused when already on disk. The judges,
    then the scorings, run `jobs` at a time (each a separate process: the same numbers in any order)."""
    jd = out / "judges"
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        judges = dict(zip(seeds, pool.map(lambda s: train_judge(profile, p, out, s, split_mode, env), seeds)))

        def score(name: str, seed: int) -> tuple[str, str, dict]:
            f = jd / f"{name}__judge_s{seed}.json"
            if not f.exists():
                mdcli("diagnose", "generation", "--config", str(profile), "--samples", str(out / name / "samples.h5"),
                      "--real", str(p["test"]), "--classifier", str(judges[seed]), "--train", str(p["train"]), "--set", "tstr=false",
                      "--set", "few=[]", "--set", "seeds=[0]", "--json", stdout=f, env=env)
            return name, f"judge_s{seed}", json.loads(f.read_text())

        pairs = [(name, seed) for seed in seeds for name in names]
        scored = list(pool.map(lambda pair: score(*pair), pairs))
    res: dict[str, dict[str, dict]] = {}
    for name, judge, rep in scored:
        res.setdefault(name, {})[judge] = rep
    return res


def judges_table(raw: dict, extra: dict, seeds: list[int]) -> str:
    """FMD of each arm under the study's judge (seed 1) and the extra ones, mean ± std over the arm's seeds, and on how
    many (judge, seed) pairs the arm has the lowest FMD of all arms."""
    judges = ["judge"] + [f"judge_s{s}" for s in seeds]
    fmd: dict[str, dict[str, list[float]]] = {}
    for name, res in raw.items():
        arm, seed = name.rsplit("_s", 1)
        per = {"judge": res["generation"]["fmd"]} | {j: g["fmd"] for j, g in extra.get(name, {}).items()}
        for j, v in per.items():
            fmd.setdefault(arm, {}).setdefault(j, []).append((int(seed), v))
    wins = {arm: 0 for arm in fmd}
    pairs = {(j, s) for arm in fmd for j in judges for s, _ in fmd[arm].get(j, [])}
    for j, s in pairs:
        vals = {arm: v for arm in fmd for s_, v in fmd[arm].get(j, []) if s_ == s}
        if len(vals) == len(fmd):
            wins[min(vals, key=vals.get)] += 1
    full = sum(1 for j, s in pairs if all(any(s_ == s for s_, _ in fmd[a].get(j, [])) for a in fmd))
    out = ["| arm | " + " | ".join(f"FMD, {j.replace('_s', ' seed ') if j != 'judge' else 'study judge'}" for j in judges)
           + " | lowest FMD on |", "|---" * (len(judges) + 2) + "|"]
    for arm, per in fmd.items():
        cells = [fmt_spread([v for _, v in per[j]]) if per.get(j) else "–" for j in judges]
        out.append(f"| {arm} | " + " | ".join(cells) + f" | {wins[arm]} of {full} |")
    return "\n".join(out)


def augmentation(profile: Path, study: dict, p: dict, out: Path, arms: list[str], few: list[int], jobs: int,
                 env: dict) -> dict | None:
    """The augmentation table: one `mdcli diagnose gain` call over every trained arm (each arm's samples appended
    to N real windows per class; real and classic as the baselines; paired over the study's seeds, the arm
    generator of seed s scoring gain seed s). Every generator saw the whole training part, more than N real windows
    per class: the optimistic setting, which the report marks (examples/fewshot.sh trains one per subset).
    Reused when OUT/gain.json was made from the same study key, arms and samples (OUT/gain.key)."""
    seeds = list(study["seeds"])
    done = [a for a in arms if all((out / f"{a}_s{s}" / "samples.h5").exists() for s in seeds)]
    if not few or not done:
        return None
    # diagnose gain scores seeds 0..K-1: the arm's generator of study seed s serves gain seed s when the study's
    # seeds are 0..K-1, otherwise its first seed's generator serves every gain seed
    tmpl = "{seed}" if seeds == list(range(len(seeds))) else str(seeds[0])
    files = {a: out / f"{a}_s{tmpl}" / "samples.h5" for a in done}
    rec = {"study": json.loads((out / "study.json").read_text()).get("key"), "few": few, "seeds": len(seeds),
           "samples": {a: [file_sha256(out / f"{a}_s{s}" / "samples.h5") for s in seeds] for a in done},
           "gain": yaml.safe_load(profile.read_text()).get("diagnose-gain")}
    key = digest(rec)
    if (out / "gain.json").exists() and (out / "gain.key").exists() and (out / "gain.key").read_text() == key:
        return json.loads((out / "gain.json").read_text())
    (out / "gain.key").unlink(missing_ok=True)
    mdcli("diagnose", "gain", "--config", str(profile), "--train", str(p["train"]), "--test", str(p["test"]),
          "--per-class", ",".join(str(n) for n in few), "--seeds", str(len(seeds)), "--jobs", str(max(1, jobs)),
          *[x for a in done for x in ("--arm", f"{a}=append:{files[a]}")], "--json", stdout=out / "gain.json", env=env)
    (out / "gain.key").write_text(key)
    return json.loads((out / "gain.json").read_text())


def constructed_rows(out: Path, p: dict, seed: int, threads: int) -> dict:
    """Posterior collapse by construction: the trained VQ-VAE with its codes relabelled (see mdcli.diagnose.constructed)."""
    import torch

    torch.set_num_threads(threads)
    from mdcli.diagnose.constructed import PermutedVQ
    from mdcli.data.batches import load_images
    from mdcli.diagnose.latent import CollapseThresholds, LatentConfig, collapse_label, latent_report
    from mdcli.models.load import load_autoencoder

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


DATASETS = ("sim", "gait")
STUDY_PERCEPTUAL = tuple(c for c in PERCEPTUAL_CHOICES if c != "none")


@stops_its_stages
def run_study(profile: Path, dataset: str, out: Path, data: Path | None = None, gait_dir: Path = Path("../shared/data/gait"),
              perceptual: str = "domain", jobs: int | None = None, threads: int | None = None, arms: str | None = None,
              judges: str | None = None) -> None:
    """Run (or resume) the study of `profile` on `dataset` into `out` (`mdcli study`). Bad input raises MdcliError
    before any work; progress and the final table are printed."""
    from mdcli.errors import MdcliError

    if dataset not in DATASETS:
        raise MdcliError(f"--dataset: unknown '{dataset}'; valid: {', '.join(DATASETS)}")
    if perceptual not in STUDY_PERCEPTUAL:
        raise MdcliError(f"--perceptual: unknown '{perceptual}'; valid: {', '.join(STUDY_PERCEPTUAL)}")
    if not profile.is_file():
        raise MdcliError(f"--profile {profile}: file not found")
    try:
        profile_data = yaml.safe_load(profile.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise MdcliError(f"--profile {profile}: not a YAML file ({type(e).__name__})") from None
    if not isinstance(profile_data, dict) or not isinstance(profile_data.get("study"), dict):
        raise MdcliError(f"--profile {profile}: has no study section (see configs/study/)")
    study = profile_data["study"]
    if not isinstance(study.get("arms"), dict) or not isinstance(study.get("seeds"), list) or not study["seeds"]:
        raise MdcliError(f"--profile {profile}: its study section needs 'arms' (a mapping) and 'seeds' (a list); "
                         "see configs/study/")
    if out.exists() and not out.is_dir():
        raise MdcliError(f"--out {out}: is a file, expected a folder")
    # extra_arms: measured follow-ups (e.g. a fix tried on VQ-GAN) that run only when --arms names them
    known = study["arms"] | (study.get("extra_arms") or {})
    arm_names = arms.split(",") if arms else list(study["arms"])
    unknown = [arm for arm in arm_names if arm not in known]
    if unknown:
        raise MdcliError(f"--arms: unknown {', '.join(unknown)}; {profile} has {', '.join(known)}")
    study["arms"] = known
    t0 = time.perf_counter()
    n_jobs, threads = parallelism(study, jobs, threads)
    if n_jobs < 1 or threads < 1:
        raise MdcliError(f"--jobs/--threads (study.jobs/study.threads in {profile}) must be at least 1, got {n_jobs}/{threads}")
    try:
        judge_seeds = ([] if judges == "none" else [int(v) for v in judges.split(",")]) if judges else list(study.get("judges") or [])
    except ValueError:
        raise MdcliError(f"--judges: expected comma-separated integer seeds or 'none', got {judges!r}") from None
    if {0, 1} & set(judge_seeds):
        raise MdcliError("--judges (study.judges): seed 0 is the perceptual classifier's and seed 1 the study judge's; give other seeds")
    if perceptual.startswith("lpips-"):  # every arm's train-ae would fail on it: refuse before any work
        from mdcli.losses import check_lpips_trunk

        check_lpips_trunk(perceptual.removeprefix("lpips-"), None, weights_option=False)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if data is not None and not data.is_file():
        raise MdcliError(f"--data {data}: file not found")
    if data is not None:
        from mdcli.artifacts import open_artifact

        with open_artifact(data, "spectrograms", header_only=True):  # another kind: one line naming it
            pass
    elif dataset == "gait" and not Path(gait_dir).is_dir():
        raise MdcliError(f"--gait-dir {gait_dir}: not a folder (the measured gait images, one subfolder per person)")
    key = study_key(yaml.safe_load(profile.read_text()), dataset, data, gait_dir, threads)  # the profile as written
    runs = [(arm, seed) for arm in arm_names for seed in study["seeds"]]
    akeys = {f"{arm}_s{seed}": arm_key(key, study, arm, seed, perceptual) for arm, seed in runs}
    why = check_resumable(out, key, akeys, data)
    if why:
        raise MdcliError(why)
    # wall time of the earlier runs that built this OUT (a resumed or fully reused study would otherwise
    # report only its own minutes and lose the from-scratch figure)
    prev = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    prev_wall, prev_runs = prev.get("total_wall_s", prev.get("wall_s", 0.0)), prev.get("runs", 1 if prev else 0)
    p = prepare(profile, study, dataset, out, data, gait_dir, env, key, n_jobs)
    results: dict[str, list[dict]] = {arm: [] for arm in arm_names}
    raw: dict[str, dict] = {}
    judged: dict[str, dict] = {}
    # the augmentation table's N real windows per class (study.few; older profiles: diagnose-generation's few)
    few = study.get("few", profile_data.get("diagnose-generation", {}).get("few", [20, 50]))
    gained: dict = {}
    split = study["split"][dataset]

    def write(final: bool) -> str:
        """results.md / results.json, rewritten as arms finish (a killed study keeps what it measured)."""
        wall = time.perf_counter() - t0
        reused = sorted(k for k, r in raw.items() if r.get("reused"))
        resumed = f", {len(reused)} of {len(runs)} arm-seeds reused from an earlier run" if reused else ""
        header = (f"dataset {dataset}, {split['mode']} split (test fraction {split['test_fraction']}), "
                  f"seeds {study['seeds']}, perceptual {perceptual}, {n_jobs} job(s) x {threads} thread(s), "
                  f"wall time {wall / 60:.1f} min"
                  f"{f' ({(prev_wall + wall) / 60:.1f} min over the {prev_runs + 1} runs that built it)' if prev_runs else ''}"
                  f"{resumed}{'' if final else ' (incomplete)'}\n\n")
        md = header + table({k: v for k, v in results.items() if v}) + "\n"
        if gained:
            from mdcli.diagnose.gain import markdown_table

            md += (f"\nAugmentation (`mdcli diagnose gain`, {gained['split']} subsets, paired over {len(gained['seeds'])} seed(s): "
                   "each arm's samples appended to N real windows per class):\n\n" + markdown_table(gained) + "\n")
        if judged:
            md += (f"\nFMD under more judges (the study judge's recipe, seeds {judge_seeds}; mean ± std over the arm's seeds; "
                   "FMD scales differ between judges, compare within a column):\n\n" + judges_table(raw, judged, judge_seeds) + "\n")
        tmp = out / ".results.md.tmp"
        tmp.write_text(md)
        os.replace(tmp, out / "results.md")
        write_json(out / "results.json", {
            "rows": results, "raw": raw, "wall_s": wall, "total_wall_s": prev_wall + wall, "runs": prev_runs + 1,
            "arm_seconds": sum(r["seconds"] for r in raw.values()),
            "reused": reused, "profile": str(profile), "dataset": dataset, "split": split, "jobs": n_jobs,
            "threads": threads, "key": key, "judges": judged, "augmentation": gained or None, "complete": final})
        return md

    with ThreadPoolExecutor(n_jobs) as pool:
        futures = {pool.submit(run_arm, profile, study, *job, p, out, perceptual, env, akeys[f"{job[0]}_s{job[1]}"]): job
                   for job in runs}
        # the extra judges queue behind the arm-seeds: they train on a core the last arm-seeds leave free
        judge_futures = [pool.submit(train_judge, profile, p, out, s, split["mode"], env) for s in judge_seeds]
        for fut in as_completed(futures):
            arm, seed = futures[fut]
            try:
                res = fut.result()
            except StageFailed as e:
                print(f"{arm} seed {seed}: FAILED {e}", flush=True)
                continue
            raw[f"{arm}_s{seed}"] = res
            results[arm].append(row(res))
            write(False)
            print(f"{arm} seed {seed}: {res['collapse']['label']}, PSNR {res['recon']['overall']['psnr']:.2f}, "
                  f"FMD {res['generation']['fmd']:.3g} ({res['seconds']:.0f} s{', reused' if res.get('reused') else ''})", flush=True)
    if judge_seeds:
        try:
            for fut in judge_futures:
                fut.result()
            judged.update(rejudge(profile, p, out, sorted(raw), judge_seeds, split["mode"], env, n_jobs))
        except StageFailed as e:
            print(f"extra judges: FAILED {e}", flush=True)
    try:
        gained.update(augmentation(profile, study, p, out, arm_names, few, n_jobs, env) or {})
    except StageFailed as e:
        print(f"augmentation (diagnose gain): FAILED {e}", flush=True)
    results.update({name: [r] for name, r in constructed_rows(out, p, study["seeds"][0], threads).items()})
    print(write(True))



def main(argv: list[str] | None = None) -> None:
    """`python -m mdcli.study ARGS`: the same as `mdcli study ARGS` (bad input: one line on stderr, exit 2). Returns
    when the study finishes."""
    from mdcli.cli import run

    code = run(["study", *(sys.argv[1:] if argv is None else argv)])
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
