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

from mdcli import __version__, stats
from mdcli.artifacts import Spectrograms, atomic_path, open_artifact, read_header, sha256_file
from mdcli.data import model_images
from mdcli.errors import ConfigError, MdcliError
from mdcli.train.classifier import FitConfig, fit_classifier, load_classifier


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

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if self.k < 1 or any(n < 1 for n in self.few):
            raise ConfigError("k and few: must be >= 1")


def ancestors(path: Path, depth: int = 8) -> dict[str, str]:
    """sha256 -> path of every artifact in the lineage of `path` that is still on disk (and of those that are not)."""
    seen: dict[str, str] = {}
    todo = [(Path(path), depth)]
    while todo:
        p, d = todo.pop()
        if d == 0 or not p.exists():
            continue
        try:
            with open_artifact(p) as f:
                parents = read_header(f)["parents"]
        except MdcliError:
            continue
        for rec in parents:
            if rec["sha256"] not in seen:
                seen[rec["sha256"]] = rec["path"]
                todo.append((Path(rec["path"]), d - 1))
    return seen


def check_judge(judge: Path, samples: Path, allow_same: bool) -> None:
    """Refuse a judge that was used to train the generator (e.g. the domain perceptual loss's classifier)."""
    lineage = ancestors(samples)
    digest = sha256_file(judge)
    if digest in lineage and not allow_same:
        raise MdcliError(f"--classifier {judge}: this classifier is in the samples' lineage ({lineage[digest]}: it shaped "
                         "the generator, e.g. as the perceptual loss), so it cannot judge them; train an independent "
                         "judge (mdcli train-classifier --seed 1) or pass --allow-same-judge")


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


def _align_labels(data: Spectrograms, names: list[str], path: Path) -> np.ndarray:
    """Labels of `data` re-indexed to the class order `names`."""
    missing = [c for c in data.class_names if c not in names]
    if missing:
        raise MdcliError(f"{path}: class '{missing[0]}' is not among the real data's classes ({', '.join(names)})")
    remap = np.array([names.index(c) for c in data.class_names])
    return remap[data.labels]


def find_training_data(samples: Path) -> Path | None:
    """The spectrograms the generator was trained on: samples -> ldm -> latents -> data."""
    for digest, p in ancestors(samples).items():
        path = Path(p)
        if path.exists():
            try:
                with open_artifact(path, "spectrograms") as f:
                    if read_header(f)["kind"] == "spectrograms" and sha256_file(path) == digest:
                        return path
            except MdcliError:
                continue
    return None


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

    def get(self, what: dict, fit: Callable[[], float]) -> float:
        if self.folder is None:
            return fit()
        key = {**self.common, **what}
        path = self.folder / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32] + ".json")
        try:
            entry = json.loads(path.read_text())
            if entry["key"] == key:
                self.reused += 1
                return float(entry["accuracy"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or unreadable: fit (and rewrite it)
        value = fit()
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"key": key, "accuracy": value}, sort_keys=True))
        return value


def _mean_std(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def generation_report(samples_path: Path, real_path: Path, judge_path: Path, train_path: Path | None,
                      cfg: GenerationConfig, allow_same_judge: bool = False,
                      progress: Callable[[str], None] = lambda s: None, baseline_cache: Path | None = None) -> dict:
    cfg.validate()
    check_judge(judge_path, samples_path, allow_same_judge)
    judge, jattrs = load_classifier(judge_path)
    gen, real = Spectrograms.load(samples_path), Spectrograms.load(real_path)
    names = list(real.class_names)
    if list(jattrs["class_names"]) != names:
        raise MdcliError(f"--classifier {judge_path}: knows classes {list(jattrs['class_names'])}, the real data has {names}")
    if gen.spectrograms.shape[1:] != real.spectrograms.shape[1:]:
        raise MdcliError(f"{samples_path}: images are {gen.spectrograms.shape[1:]}, the real data's {real.spectrograms.shape[1:]}")
    y_gen = _align_labels(gen, names, samples_path)
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

    # memorisation: nearest training image of each sample vs of each held-out real image (pixel L2)
    train_path = train_path or find_training_data(samples_path)
    report["train_data"] = str(train_path) if train_path else None
    if train_path is None:
        report["memorisation"] = None
        return report
    train = Spectrograms.load(train_path)
    if list(train.class_names) != names:
        raise MdcliError(f"--train {train_path}: classes {list(train.class_names)} differ from the real data's {names}")
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
    x_train, y_train = model_images(train), torch.from_numpy(train.labels)
    y_gen_t, nc = torch.from_numpy(y_gen), len(names)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def acc(model) -> float:
        return float((embed(model, x_real, cfg.batch_size)[1] == y_real).mean())

    runs: dict[str, list[float]] = {"trtr": [], "tstr": []}
    for n in cfg.few:
        for arm in ("real", "real+classic", "real+generated"):
            runs[f"few{n}/{arm}"] = []
    cache = BaselineCache(baseline_cache, {  # the data files are hashed only when there is a cache to key
        "train_sha256": sha256_file(train_path), "real_sha256": sha256_file(real_path), "fit": asdict(cfg.fit),
        "batch_size": cfg.batch_size, "device": device.type, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "mdcli": __version__} if baseline_cache is not None else {})
    for seed in cfg.seeds:
        progress(f"seed {seed}: train on real / on generated")
        runs["trtr"].append(cache.get({"fit_on": "all real", "seed": seed},
                                      lambda: acc(fit_classifier(x_train, y_train, nc, cfg.fit, seed, device=device))))
        runs["tstr"].append(acc(fit_classifier(x_gen, y_gen_t, nc, cfg.fit, seed, device=device)))
        for n in cfg.few:
            progress(f"seed {seed}: {n} real per class, alone / classic augmentation / plus generated")
            sel = torch.from_numpy(few_per_class(train.labels, n, seed))
            xs, ys = x_train[sel], y_train[sel]
            runs[f"few{n}/real"].append(cache.get({"fit_on": "few real", "n": n, "seed": seed},
                                                  lambda: acc(fit_classifier(xs, ys, nc, cfg.fit, seed, device=device))))
            runs[f"few{n}/real+classic"].append(cache.get(
                {"fit_on": "few real + classic augmentation", "n": n, "seed": seed},
                lambda: acc(fit_classifier(xs, ys, nc, cfg.fit, seed, augment=True, device=device))))
            runs[f"few{n}/real+generated"].append(
                acc(fit_classifier(torch.cat([xs, x_gen]), torch.cat([ys, y_gen_t]), nc, cfg.fit, seed, device=device)))
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
    report["seeds"] = list(cfg.seeds)
    report["baseline_fits_reused"] = cache.reused
    return report


def summary_rows(report: dict) -> dict:
    keys = ["fmd", "kid", "precision", "recall", "density", "coverage", "judge_accuracy_generated", "judge_accuracy_real"]
    return {k: report[k] for k in keys}
