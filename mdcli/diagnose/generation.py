"""`diagnose generation`: are generated spectrograms like held-out real ones, and do they help?

Distribution metrics live in an independent judge's penultimate feature space (no downloaded
network): FMD (Fréchet distance, the offline analogue of FID), KID, precision / recall /
density / coverage (k-NN, k = 5). Then the judge's accuracy on the samples, a memorisation
check in pixel space, TSTR (train on synthetic, test on real) against training on real, and
the augmentation gain with few real images per class, next to classic augmentation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mdcli import __version__, code_digest
from mdcli.artifacts import Spectrograms, atomic_path, open_artifact, locate_parent, parent_of, read_header, sha256_file
from mdcli.data.batches import align_labels, model_images
from mdcli.diagnose import stats
from mdcli.errors import ConfigError, MdcliError
from mdcli.models.load import load_classifier
from mdcli.train.classifier import FitConfig, fit_classifier


@dataclass
class GenerationConfig:
    """`mdcli diagnose generation`: metrics, and the fresh classifiers of TSTR / augmentation gain."""

    seeds: list[int] = field(default_factory=lambda: [0, 1])  # spread of TSTR and augmentation runs
    k: int = 5  # PRDC neighbourhood
    kid_subsets: int = 20
    kid_subset_size: int = 100
    tstr: bool = True
    few: list[int] = field(default_factory=lambda: [20, 50])  # real images per class in the augmentation runs
    fit: FitConfig = field(default_factory=FitConfig)
    batch_size: int = 128
    # the fresh classifiers are independent: on a CPU, run them in this many processes, each with an equal
    # share of the torch threads (two 1-thread fits beat one 2-thread fit on small nets). CPU results
    # depend on the thread count, so the report records it; ignored on a GPU
    jobs: int = 1

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if self.jobs < 1:
            raise ConfigError(f"jobs: must be >= 1, got {self.jobs}")
        if self.k < 1 or any(n < 1 for n in self.few):
            raise ConfigError("k and few: must be >= 1")
        self.fit.validate("fit")


def ancestors(path: Path, depth: int = 8) -> dict[str, str]:
    """sha256 -> path of every artifact in the lineage of `path` that is still on disk (and of those that are not)."""
    seen: dict[str, str] = {}
    todo = [(Path(path), depth)]
    while todo:
        p, d = todo.pop()
        if d == 0 or not p.exists():
            continue
        try:
            with open_artifact(p, header_only=True) as f:
                parents = read_header(f)["parents"]
        except MdcliError:
            continue
        for rec in parents:
            if rec["sha256"] not in seen:
                found = locate_parent(rec, p)
                seen[rec["sha256"]] = str(found)
                todo.append((found, d - 1))
    return seen


def check_judge(judge: Path, samples: Path, allow_same: bool, override: str | None = "--allow-same-judge") -> None:
    """Refuse a judge that was used to train the generator (e.g. the domain perceptual loss's classifier); the
    error names the command's `override` option where it has one."""
    lineage = ancestors(samples)
    digest = sha256_file(judge)
    if digest in lineage and not allow_same:
        raise MdcliError(f"--classifier {judge}: this classifier is in the lineage of {samples} ({lineage[digest]}: it shaped "
                         "the generator, e.g. as the perceptual loss), so it cannot judge them; train an independent "
                         "judge (mdcli train-classifier --seed 1)" + (f" or pass {override}" if override else ""))


@torch.no_grad()
def embed(model, x: torch.Tensor, bs: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (penultimate features, predicted class) for images in [-1, 1]."""
    feats, preds = [], []
    device = next(model.parameters()).device
    for i in range(0, len(x), bs):
        f = model.embed(x[i : i + bs].to(device)).float()
        feats.append(f.double().cpu().numpy())
        preds.append(model.head(f).argmax(1).cpu().numpy())
    return np.concatenate(feats), np.concatenate(preds)


def find_training_data(samples: Path) -> Path | None:
    """The spectrograms the diffusion model was trained on: samples -> ldm -> latents -> spectrograms.

    Followed by kind, not by the first spectrograms file anywhere in the lineage: the autoencoder (and its
    perceptual classifier) may have been trained on other data, e.g. simulated before measured."""
    p: Path | None = Path(samples)
    for kind in ("ldm", "latents", "spectrograms"):
        p = parent_of(p, kind)
        if p is None:
            return None
    return p


def find_autoencoder_data(samples: Path) -> Path | None:
    """The spectrograms the autoencoder behind `samples` was trained on: samples -> autoencoder (a parent of
    `sample` and `augment` output, the only model of `augment --strength 0 --ae`) or samples -> ldm -> latents ->
    autoencoder, then -> spectrograms (None where a link is missing or changed)."""
    p: Path | None = parent_of(Path(samples), "autoencoder")
    chain = ("spectrograms",) if p is not None else ("ldm", "latents", "autoencoder", "spectrograms")
    p = p if p is not None else Path(samples)
    for kind in chain:
        p = parent_of(p, kind)
        if p is None:
            return None
    return p


def shared_per_class(a: np.ndarray, b: np.ndarray, labels_b: np.ndarray) -> dict[int, int]:
    """Per class of `b`: how many of its images occur, byte for byte, in `a`."""
    seen = set(_image_digests(a))
    out: dict[int, int] = {}
    for d, c in zip(_image_digests(b), labels_b):
        out[int(c)] = out.get(int(c), 0) + (d in seen)
    return out


def _image_digests(x: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest() for row in x]


def shared_images(a: np.ndarray, b: np.ndarray) -> int:
    """How many images of `b` occur, byte for byte, in `a`."""
    seen = set(_image_digests(a))
    return sum(d in seen for d in _image_digests(b))


def check_held_out(real: Spectrograms, real_path: Path, other: Spectrograms, what: str, option: str = "--real") -> None:
    """Refuse data that shares images with the held-out set (given as `option`): every number here assumes
    nothing saw it."""
    n = shared_images(other.spectrograms, real.spectrograms)
    if n:
        raise MdcliError(f"{what}: holds {n} of the {len(real.spectrograms)} held-out images of {option} {real_path}; "
                         "the held-out set must be disjoint from everything the generator, the judge and the fresh "
                         "classifiers train on (make it with `mdcli split`)")


def lineage_spectrograms(path: Path) -> list[Path]:
    """The spectrograms files that models in the lineage of `path` were trained on, still on disk unchanged:
    the data of the diffusion model, the autoencoder and its perceptual classifier (for samples or latents),
    or of a classifier. The walk stops at each spectrograms file: what it was made from (the unsplit file
    behind a `split`) is its source, not training data."""
    out: list[Path] = []
    seen: set[str] = set()
    todo = [Path(path)]
    while todo:
        child = todo.pop()
        try:
            with open_artifact(child, header_only=True) as f:
                parents = read_header(f)["parents"]
        except MdcliError:
            continue
        for rec in parents:
            p = locate_parent(rec, child)
            if rec["sha256"] in seen or not p.exists() or sha256_file(p) != rec["sha256"]:
                continue
            seen.add(rec["sha256"])
            try:
                with open_artifact(p, header_only=True) as f:
                    kind = read_header(f)["kind"]
            except MdcliError:
                continue
            (out.append if kind == "spectrograms" else todo.append)(p)
    return out


def check_lineage_held_out(real: Spectrograms, real_path: Path, path: Path, what: str) -> None:
    """check_held_out against every spectrograms file `path` was made from (see lineage_spectrograms)."""
    for data in lineage_spectrograms(path):
        check_held_out(real, real_path, Spectrograms.load(data), f"{what}: its training data {data}")


def check_judge_for(judge_path: Path, real: Spectrograms, real_path: Path, generated: Path,
                    allow_same_judge: bool = False, override: str | None = "--allow-same-judge") -> tuple:
    """Everything a judge and a held-out set must satisfy before they score what `generated` (samples or
    latents) came from: the judge is not in its lineage, knows the real data's classes in the same order, and
    neither the judge's nor the generator's training data (autoencoder, its perceptual classifier, diffusion
    model) holds a held-out image. -> the loaded judge and its attributes (load_classifier's pair)."""
    check_judge(judge_path, generated, allow_same_judge, override)
    judge, jattrs = load_classifier(judge_path)
    names = list(real.class_names)
    if list(jattrs["class_names"]) != names:
        raise MdcliError(f"--classifier {judge_path}: knows classes {list(jattrs['class_names'])}, the real data has {names}")
    check_lineage_held_out(real, real_path, judge_path, f"--classifier {judge_path}")
    check_lineage_held_out(real, real_path, generated, f"the generator behind {generated}")
    return judge, jattrs


def few_per_class(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23, n]))
    out = [rng.permutation(np.flatnonzero(labels == c))[:n] for c in np.unique(labels)]
    return np.sort(np.concatenate(out))


class BaselineCache:
    """Accuracies of the classifier fits that do not involve the generator (train on all real, on few real,
    on few real + classic augmentation), kept in a folder so that comparing many generators against the
    same data fits each baseline once. A fit is seeded and self-contained, so a reused accuracy is the
    one a fresh fit would give; the key holds everything it depends on (data hashes, fit config, seed,
    device, torch threads, torch and mdcli versions). Without a folder every fit runs."""

    def __init__(self, folder: Path | None, common: dict):
        self.folder, self.common, self.reused = folder, common, 0
        if folder is not None and not folder.is_dir():
            raise MdcliError(f"--baseline-cache {folder}: not a folder")

    def _path(self, key: dict) -> Path:
        assert self.folder is not None
        return self.folder / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32] + ".json")

    def lookup(self, what: dict) -> float | None:
        if self.folder is None:
            return None
        key = {**self.common, **what}
        try:
            entry = json.loads(self._path(key).read_text())
            if entry["key"] == key:
                self.reused += 1
                return float(entry["accuracy"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or unreadable: fit (and rewrite it)
        return None

    def store(self, what: dict, value: float) -> None:
        if self.folder is None:
            return
        key = {**self.common, **what}
        with atomic_path(self._path(key)) as tmp:
            tmp.write_text(json.dumps({"key": key, "accuracy": value}, sort_keys=True))



def _mean_std(values: list[float]) -> dict:
    """Mean and sample std (ddof = 1; None for one seed) over the seeds, and the per-seed values."""
    mean, sd = stats.seed_spread(values)
    return {"mean": mean, "std": sd, "values": [float(v) for v in values]}


def fit_tasks(cfg: GenerationConfig) -> list[dict]:
    """Every fresh-classifier fit of TSTR and the augmentation runs, in report order; a baseline (one not
    involving the generator) carries its cache key."""
    tasks: list[dict] = []
    for seed in cfg.seeds:
        tasks.append({"name": "trtr", "on": "real", "seed": seed, "cache": {"fit_on": "all real", "seed": seed}})
        tasks.append({"name": "tstr", "on": "generated", "seed": seed})
        for n in cfg.few:
            tasks.append({"name": f"few{n}/real", "on": "few", "n": n, "seed": seed,
                          "cache": {"fit_on": "few real", "n": n, "seed": seed}})
            tasks.append({"name": f"few{n}/real+classic", "on": "few", "n": n, "seed": seed, "augment": True,
                          "cache": {"fit_on": "few real + classic augmentation", "n": n, "seed": seed}})
            tasks.append({"name": f"few{n}/real+generated", "on": "few+generated", "n": n, "seed": seed})
    return tasks


@dataclass
class FitData:
    """The tensors the fits train and test on: real training images, generated ones, held-out real ones."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_gen: torch.Tensor
    y_gen: torch.Tensor
    x_real: torch.Tensor
    y_real: np.ndarray
    n_classes: int

    @classmethod
    def build(cls, train: Spectrograms, gen: Spectrograms, real: Spectrograms, names: list[str], samples_path: Path):
        return cls(model_images(train), torch.from_numpy(train.labels), model_images(gen),
                   torch.from_numpy(align_labels(gen, names, samples_path)), model_images(real), real.labels, len(names))


def fit_accuracy(task: dict, data: FitData, fit: FitConfig, batch_size: int, device: torch.device) -> float:
    """Train the task's fresh classifier (seeded, self-contained) and return its held-out real accuracy."""
    seed = task["seed"]
    if task["on"] == "real":
        x, y = data.x_train, data.y_train
    elif task["on"] == "generated":
        x, y = data.x_gen, data.y_gen
    else:
        sel = torch.from_numpy(few_per_class(data.y_train.numpy(), task["n"], seed))
        x, y = data.x_train[sel], data.y_train[sel]
        if task["on"] == "few+generated":
            x, y = torch.cat([x, data.x_gen]), torch.cat([y, data.y_gen])
    model = fit_classifier(x, y, data.n_classes, fit, seed, augment=task.get("augment", False), device=device)
    return float((embed(model, data.x_real, batch_size)[1] == data.y_real).mean())


def fit_in_processes(spec: dict, tasks: list[dict], jobs: int, threads: int,
                     on_result: Callable[[int, object], None] | None = None, what: str = "diagnose generation",
                     chunks: list[list[int]] | None = None) -> list:
    """Run `tasks` in `jobs` worker processes (`python -m mdcli.diagnose.fitworker`, JSON over stdin, one JSON result a
    line on stdout as each fit ends, each with `threads` torch threads), round-robin unless `chunks` gives each
    worker's task indices; -> results in task order. `on_result(task index, result)` is called as each arrives."""
    import os
    import subprocess
    import sys
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    chunks = chunks or [list(range(len(tasks)))[j::jobs] for j in range(min(jobs, len(tasks)))]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))

    def work(idx: list[int]) -> list:
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen([sys.executable, "-m", "mdcli.diagnose.fitworker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=env)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({**spec, "tasks": [tasks[i] for i in idx]}))
            proc.stdin.close()
            values = []
            for line in proc.stdout:
                values.append(json.loads(line))
                if on_result is not None:
                    on_result(idx[len(values) - 1], values[-1])
            if proc.wait() != 0 or len(values) != len(idx):
                err.seek(0)
                last = (err.read().strip().splitlines() or ["no message"])[-1]
                raise MdcliError(f"{what}: a classifier-fit worker failed: {last}")
        return values

    out: list = [None] * len(tasks)
    with ThreadPoolExecutor(len(chunks)) as pool:
        for idx, values in zip(chunks, pool.map(work, chunks)):
            for i, v in zip(idx, values):
                out[i] = v
    return out


def generation_report(samples_path: Path, real_path: Path, judge_path: Path, train_path: Path | None,
                      cfg: GenerationConfig, allow_same_judge: bool = False,
                      progress: Callable[[str], None] = lambda s: None, baseline_cache: Path | None = None) -> dict:
    cfg.validate()
    gen, real = Spectrograms.load(samples_path), Spectrograms.load(real_path)
    judge, jattrs = check_judge_for(judge_path, real, real_path, samples_path, allow_same_judge)
    names = list(real.class_names)
    if gen.spectrograms.shape[1:] != real.spectrograms.shape[1:]:
        raise MdcliError(f"{samples_path}: images are {gen.spectrograms.shape[1:]}, the real data's {real.spectrograms.shape[1:]}")
    for path, n in ((samples_path, len(gen.spectrograms)), (real_path, len(real.spectrograms))):
        if n <= cfg.k:
            raise MdcliError(f"{path}: {n} images; precision / recall need more than k = {cfg.k} (--set k=...)")
    y_gen = align_labels(gen, names, samples_path)
    y_real = real.labels
    x_gen, x_real = model_images(gen), model_images(real)
    f_gen, p_gen = embed(judge, x_gen, cfg.batch_size)
    f_real, p_real = embed(judge, x_real, cfg.batch_size)
    kid_m, kid_s = stats.kid(f_real, f_gen, cfg.kid_subsets, cfg.kid_subset_size, cfg.seeds[0])
    report: dict = {
        "n_generated": int(len(x_gen)), "n_real": int(len(x_real)), "judge": str(judge_path),
        "judge_split": str(jattrs.get("split", "random")),
        "fmd": stats.feature_frechet(f_real, f_gen), "kid": kid_m, "kid_std": kid_s,
        **stats.prdc(f_real, f_gen, cfg.k),
        "judge_accuracy_generated": float((p_gen == y_gen).mean()),
        "judge_accuracy_real": float((p_real == y_real).mean()),
        "per_class": {},
    }
    for c, name in enumerate(names):
        mg, mr = y_gen == c, y_real == c
        if mg.sum() > 2 and mr.sum() > 2:
            report["per_class"][name] = {"n_generated": int(mg.sum()), "fmd": stats.feature_frechet(f_real[mr], f_gen[mg]),
                                         "judge_accuracy": float((p_gen[mg] == c).mean())}
    found = train_path is None
    train_path = train_path or find_training_data(samples_path)
    report["train_data"] = str(train_path) if train_path else None
    train = None if train_path is None else Spectrograms.load(train_path)
    if train is not None:
        if list(train.class_names) != names:
            raise MdcliError(f"--train {train_path}: classes {list(train.class_names)} differ from the real data's {names}")
        check_held_out(real, real_path, train, f"the generator's training data {train_path} (found through the samples' "
                       "lineage; pass --train)" if found else f"--train {train_path}")

    # limb envelopes and periods, generated (and the training part, the reference) vs real, on the real data's axes
    from mdcli import kinematics as kf
    from mdcli.diagnose import kinematics as kin

    kin_axes = {"doppler": real.doppler_hz, "time": real.time_s, "calibrated": real.axes_calibrated,
                "dynamic_range_db": float(real.dynamic_range_db)}
    reference = () if train is None else (kf.features(train.spectrograms, **kin_axes), train.labels)
    report["kinematics"] = kin.generation_kinematics(
        kf.features(real.spectrograms, **kin_axes), y_real, kf.features(gen.spectrograms, **kin_axes), y_gen, names, *reference,
        seed=cfg.seeds[0])
    if train is None:
        report["memorisation"] = None
        return report

    # memorisation: nearest training image of each sample vs of each held-out real image (pixel L2)
    flat = lambda d: d.spectrograms.reshape(len(d.spectrograms), -1).astype(np.float64)  # noqa: E731
    d_gen = stats.nearest_distances(flat(gen), flat(train))
    d_real = stats.nearest_distances(flat(real), flat(train))
    report["memorisation"] = {
        "median_nn_generated": float(np.median(d_gen)), "median_nn_real": float(np.median(d_real)),
        "ratio": float(np.median(d_gen) / max(np.median(d_real), 1e-12)),
        "near_copies": float((d_gen < np.percentile(d_real, 5)).mean()),  # share closer than 95% of real-to-train
    }
    if not cfg.tstr:
        return report

    # TSTR and augmentation gain: fresh classifiers, same budget, accuracy on the held-out real data
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    jobs = cfg.jobs if device.type == "cpu" else 1
    threads = max(1, torch.get_num_threads() // jobs)
    tasks = fit_tasks(cfg)
    cache = BaselineCache(baseline_cache, {  # the data files are hashed only when there is a cache to key
        "train_sha256": sha256_file(train_path), "real_sha256": sha256_file(real_path), "fit": asdict(cfg.fit),
        "batch_size": cfg.batch_size, "device": device.type, "threads": threads,
        "torch": torch.__version__, "mdcli": __version__, "code": code_digest()} if baseline_cache is not None else {})
    acc: list[float | None] = [cache.lookup(t["cache"]) if "cache" in t else None for t in tasks]
    todo = [i for i, a in enumerate(acc) if a is None]
    if jobs > 1 and len(todo) > 1:
        progress(f"{len(todo)} classifier fits in {min(jobs, len(todo))} processes x {threads} thread(s)")
        spec = {"samples": str(samples_path), "real": str(real_path), "train": str(train_path), "names": names,
                "fit": asdict(cfg.fit), "batch_size": cfg.batch_size}
        done = fit_in_processes(spec, [tasks[i] for i in todo], jobs, threads)
    else:  # in this process, at the thread count the cache keys and the report record (< all when jobs > 1)
        data = FitData.build(train, gen, real, names, samples_path)
        done, all_threads = [], torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for i in todo:
                progress(f"fit {tasks[i]['name']} (seed {tasks[i]['seed']})")
                done.append(fit_accuracy(tasks[i], data, cfg.fit, cfg.batch_size, device))
        finally:
            torch.set_num_threads(all_threads)
    for i, value in zip(todo, done):
        acc[i] = value
        if "cache" in tasks[i]:
            cache.store(tasks[i]["cache"], value)
    runs: dict[str, list[float]] = {}
    for t, a in zip(tasks, acc):
        runs.setdefault(t["name"], []).append(float(a))  # type: ignore[arg-type]
    report["fits"] = {"jobs": min(jobs, max(1, len(todo))), "threads": threads, "device": device.type}
    report["tstr"] = {k: _mean_std(v) for k, v in runs.items() if k in ("trtr", "tstr")}
    report["augmentation"] = {}
    for n in cfg.few:
        base = np.array(runs[f"few{n}/real"])
        report["augmentation"][str(n)] = {
            "real": _mean_std(list(base)),
            "real+classic": _mean_std(runs[f"few{n}/real+classic"]),
            "real+generated": _mean_std(runs[f"few{n}/real+generated"]),
            "gain_generated": _mean_std(list(np.array(runs[f"few{n}/real+generated"]) - base)),
            "gain_classic": _mean_std(list(np.array(runs[f"few{n}/real+classic"]) - base)),
        }
    gen_data = find_training_data(samples_path)  # what the generator learned from, whatever --train says
    if cfg.few and gen_data is not None:
        counts = Spectrograms.load(gen_data).class_counts()
        report["generator_data"] = {"path": str(gen_data), "per_class": counts}
        for n in cfg.few:
            report["augmentation"][str(n)]["generator_saw_more"] = bool(max(counts.values()) > n)
    report["seeds"] = list(cfg.seeds)
    report["baseline_fits_reused"] = cache.reused
    return report


def augmentation_caveat(report: dict) -> str | None:
    """The line to print beside augmentation results whose generator learned from more real images per class
    than the few-shot arms get: `real+generated` then carries information the `real` arms never saw, so its
    gain is not a few-shot gain (an upper bound on it, as far as better samples help)."""
    more = [n for n, a in report.get("augmentation", {}).items() if a.get("generator_saw_more")]
    if not more:
        return None
    g = report["generator_data"]
    return (f"the generator was trained on {g['path']} (up to {max(g['per_class'].values())} real images per class), "
            f"more than the {', '.join(more)} per class of the few-shot arms: real+generated has seen more real data "
            "than real and real+classic. For the few-shot gain, train the generator on the subset alone "
            "(mdcli subset --per-class N --seed S, then --train that file, few=[N], seeds=[S]).")


def summary_rows(report: dict) -> dict:
    keys = ["fmd", "kid", "precision", "recall", "density", "coverage", "judge_accuracy_generated", "judge_accuracy_real"]
    return {k: report[k] for k in keys}


def plot_generation(report: dict, folder: Path) -> list[Path]:
    """Held-out real accuracy of the augmentation arms (mean ± sample std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdcli.plotting import save_figure

    arms = ("real", "real+classic", "real+generated")
    groups = list(report["augmentation"])
    fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
    width = 0.25
    for j, arm in enumerate(arms):
        means = [report["augmentation"][g][arm]["mean"] for g in groups]
        stds = [report["augmentation"][g][arm]["std"] for g in groups]  # None for one seed: no error bar
        ax.bar(np.arange(len(groups)) + (j - 1) * width, means, width, label=arm, capsize=3,
               yerr=None if None in stds else stds)
    if "tstr" in report:
        ax.axhline(report["tstr"]["trtr"]["mean"], color="k", lw=0.8, ls="--", label="all real")
        ax.axhline(report["tstr"]["tstr"]["mean"], color="r", lw=0.8, ls=":", label="generated only (TSTR)")
    ax.set_xticks(np.arange(len(groups)), [f"{g} real/class" for g in groups])
    ax.set_ylabel("accuracy on held-out real")
    ax.legend(fontsize=7)
    return [save_figure(fig, folder / "augmentation.png")]
