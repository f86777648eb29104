"""`diagnose gain`: does extra (generated, simulated, other) data help a few-shot classifier, by how much, how surely?

The paired few-shot protocol: for each N (real windows per class) and seed, one N-per-class subset of the real
training data is drawn (a contiguous run in recording order for measured data with `/sequence`, as `mdcli subset`
draws it) and every arm trains a classifier from the same initial weights (an init arm: from its classifier's),
with the same real batches, the same budget, and is tested on the same held-out real set. The baselines `real`
(the N windows alone) and `classic` (the same with classic augmentation) are always present; an arm
`NAME=MODE:FILE[,key=value...]` adds extra images one of four ways (append, pretrain, mixed-then-real, only), or
starts from a classifier trained before (init: one pretraining shared by every seed, e.g. on simulated
identities): the five MODES. The gain of an arm is its accuracy minus
`real`'s for the same seed; its 95 % confidence interval comes from the t distribution over the seed differences,
and a gain whose interval holds 0 is "no measurable gain".

With K starts (`--starts K`) every arm, the baselines included, fits K times per (N, seed) and keeps the fit with
the highest accuracy on the other training windows (no held-out window decides): start j of an arm draws its
initial weights and batches from seed + START_STRIDE * j (j = 0: the single-start fit); an init arm may join M
classifier files (pretraining draws) with JOIN, start j fine-tuning file j mod M from seed + START_STRIDE * (j // M),
so a choice among M pretrainings is compared with `real` given the same number of tries. With `--choose-on V` the
choice reads only V of those windows per class (the V nearest the subset in recording order): a user who keeps
V windows per class back to choose with. `--keep ensemble` keeps no one start but all K: the arm predicts with the
mean of its K fits' class probabilities (no windows beyond the N needed), `real` with its K random starts'.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mdcli.artifacts import Spectrograms, open_artifact, read_header, sha256_file
from mdcli.data.batches import align_labels, model_images
from mdcli.data.splits import class_label
from mdcli.diagnose import stats
from mdcli.diagnose.generation import (check_held_out, check_lineage_held_out, embed, few_per_class,
                                       find_autoencoder_data, find_training_data, shared_images, shared_per_class)
from mdcli.errors import ConfigError, MdcliError
from mdcli.metrics import macro_f1
from mdcli.models.classifier import SpectrogramClassifier, class_logits, softmax
from mdcli.stages import ExtraOptions
from mdcli.train.classifier import ExtraSet, FitConfig, fit_classifier, fresh_head

MODES = {
    "append": "extra images added to each real batch (weight, ratio, prob)",
    "pretrain": "train on the extra set first, then fine-tune on the N real windows (finetune=all|head, steps, lr, augment)",
    "mixed-then-real": "train on real + extra (weight, ratio, prob), then refit the head on real alone",
    "only": "train on the extra set alone, test on real (classification accuracy score, CAS / TSTR)",
    "init": "start from a trained classifier (train-classifier: its network and weights, a fresh head for other "
            "classes), then fine-tune on the N real windows (finetune=all|head, lr, augment)",
}
KEYS = {"append": {"weight", "ratio", "prob"}, "mixed-then-real": {"weight", "ratio", "prob"},
        "pretrain": {"finetune", "steps", "lr", "augment"}, "only": set(), "init": {"finetune", "lr", "augment"}}
CHOICES = {"finetune": (("all", "head"), "the weights fine-tuned on the real windows"),  # pretrain's and init's
           "augment": (("none", "classic"), "the real windows while fine-tuning")}
BASELINES = ("real", "classic")
JOIN = "+"  # FILE+FILE: several extra files as one set (e.g. a generator's variations and its samples); init: candidates
START_STRIDE = 100  # start j of a seed's fit draws its weights and batches from seed + START_STRIDE * j
KEEP = ("best", "ensemble")  # what --starts K keeps: the start best on the choosing windows, or the mean of all K


@dataclass
class GainConfig:
    """`mdcli diagnose gain`: the classifier every arm trains (same budget for all), and the test batch size."""

    fit: FitConfig = field(default_factory=FitConfig)
    batch_size: int = 128

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("batch_size: must be >= 1")
        self.fit.validate("fit")


@dataclass
class Arm:
    name: str
    mode: str
    file: str | None = None  # may hold {n} and {seed}, and several files joined by JOIN (init: one per start)
    extra: ExtraOptions = field(default_factory=ExtraOptions)
    finetune: str = "all"
    steps: int = 0  # pretraining steps on the extra set (0: the fit's steps, as the fine-tuning on the real windows)
    lr: float = 0.0  # the fine-tuning's peak learning rate on the real windows (0: the fit's, as pretraining)
    augment: str = "none"  # the fine-tuning's augmentation of the real windows: none, or classic (as the classic arm)

    def task(self, n: int, seed: int, start: int = 0, choose_on: int | None = None) -> dict:
        """The fit task of this arm at (N, seed), its start `start` (plan's list; run_task's input): the subset
        comes from `seed`, the weights and batches from `fit_seed`; an init arm's start names one of its files;
        `choose_on`: the windows per class the choice among starts reads (None: every other training window)."""
        file, fit_seed = self.path(n, seed) if self.file else None, seed + START_STRIDE * start
        if self.mode == "init":
            files = self.paths(n, seed)
            file, fit_seed = str(files[start % len(files)]), seed + START_STRIDE * (start // len(files))
        return {"arm": self.name, "mode": self.mode, "n": n, "seed": seed, "start": start, "fit_seed": fit_seed,
                "choose_on": choose_on, "file": file, "extra": asdict(self.extra),
                "finetune": self.finetune, "steps": self.steps, "lr": self.lr, "augment": self.augment}

    def paths(self, n: int, seed: int) -> list[Path]:
        """The arm's files at (N, seed): one, or the several that FILE joins with JOIN (one extra set; an init
        arm's candidate starts)."""
        assert self.file is not None
        filled = self.file.replace("{n}", str(n)).replace("{seed}", str(seed))
        return [Path(part) for part in filled.split(JOIN)]

    def path(self, n: int, seed: int) -> str:
        """The task's file text: the paths joined by JOIN (Data.extra splits it again)."""
        return JOIN.join(str(q) for q in self.paths(n, seed))

    def options(self) -> dict:
        if self.mode in ("append", "mixed-then-real"):
            return asdict(self.extra)
        if self.mode not in ("pretrain", "init"):
            return {}
        return ({"finetune": self.finetune} | ({"steps": self.steps} if self.steps else {})
                | ({"lr": self.lr} if self.lr else {}) | ({"augment": self.augment} if self.augment != "none" else {}))


def parse_arm(text: str) -> Arm:
    """`NAME=MODE:FILE[,key=value...]` -> Arm (a one-line error for anything else)."""
    what = f"--arm {text}"
    name, eq, rest = text.partition("=")
    mode, colon, rest = rest.partition(":")
    if not eq or not colon or not name.strip() or not rest:
        raise ConfigError(f"{what}: expected NAME=MODE:FILE[,key=value...], e.g. gen=append:samples.h5,weight=0.5")
    name, mode = name.strip(), mode.strip()
    if name in BASELINES:
        raise ConfigError(f"{what}: '{name}' is a baseline that is always present; name the arm otherwise")
    if "#" in name:
        raise ConfigError(f"{what}: '#' is kept for the files of a joined init arm (ARM#j); name the arm without it")
    if mode not in MODES:
        raise ConfigError(f"{what}: unknown mode '{mode}'; valid: {', '.join(MODES)}")
    file, *pairs = rest.split(",")
    parts = [q.strip() for q in file.split(JOIN)]
    if not all(parts):
        raise ConfigError(f"{what}: an empty file name in '{file}' (join several files as A.h5{JOIN}B.h5)")
    arm = Arm(name, mode, JOIN.join(parts))
    for pair in pairs:
        key, eq, value = (s.strip() for s in pair.partition("="))
        if not eq or key not in KEYS[mode]:
            valid = ", ".join(sorted(KEYS[mode])) or "none"
            raise ConfigError(f"{what}: '{pair}' is no option of mode {mode} (options: {valid})")
        if key in CHOICES:
            choices, about = CHOICES[key]
            if value not in choices:
                raise ConfigError(f"{what}: {key} must be {' or '.join(choices)} ({about}), got '{value}'")
            setattr(arm, key, value)
            continue
        if key == "steps":
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"{what}: steps must be a whole number >= 1 (pretraining steps), got '{value}'")
            arm.steps = int(value)
            continue
        if key == "lr":
            try:
                arm.lr = float(value)
            except ValueError:
                arm.lr = -1.0
            if not 0 < arm.lr < 1:
                raise ConfigError(f"{what}: lr must be a learning rate in (0, 1) (the fine-tuning's), got '{value}'")
            continue
        try:
            setattr(arm.extra, key, float(value))
        except ValueError:
            raise ConfigError(f"{what}: {key} must be a number, got '{value}'") from None
    if mode in ("append", "mixed-then-real"):
        arm.extra.validate(what)
    return arm


def few_shot_indices(labels: np.ndarray, n: int, seed: int, sequence: np.ndarray | None, split: str = "auto",
                     class_names: list[str] | None = None) -> np.ndarray:
    """The N-per-class subset of the protocol (and of `mdcli subset`). blocked (the default for data with a
    recording order, `/sequence`): per class a contiguous run of N windows in recording order at a seeded
    position, so the subset is a short recording rather than windows spread over all of it; random: a seeded
    draw per class (`diagnose generation`'s few-shot draw). -> sorted indices."""
    if split not in ("auto", "random", "blocked"):
        raise ConfigError(f"--split: unknown '{split}'; valid: auto, random, blocked")
    for c in np.unique(labels):
        if (labels == c).sum() < n:
            raise MdcliError(f"--per-class {n}: class {class_label(c, class_names)} has only {int((labels == c).sum())} training windows")
    if split == "random" or (split == "auto" and sequence is None):
        return few_per_class(labels, n, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 29, n]))
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        pos = np.asarray(sequence)[idx] if sequence is not None else np.arange(len(idx))
        idx = idx[np.argsort(pos, kind="stable")]
        start = int(rng.integers(0, len(idx) - n + 1))
        out.append(idx[start : start + n])
    return np.sort(np.concatenate(out))


def resolved_split(split: str, data: Spectrograms) -> str:
    return ("blocked" if data.sequence is not None else "random") if split == "auto" else split


def paired_gain(diffs: list[float], level: float = 0.95) -> dict:
    """Mean of paired differences over seeds, its t confidence interval, wins and a verdict that never calls
    an interval holding 0 a gain (one seed: no interval, no measurable gain)."""
    from scipy.stats import t

    d = np.asarray(diffs, np.float64)
    mean, sd = stats.seed_spread(d)
    lo = hi = None
    if sd is not None:
        half = float(t.ppf(0.5 + level / 2, len(d) - 1) * sd / np.sqrt(len(d)))
        lo, hi = mean - half, mean + half
    verdict = "no measurable gain"
    if lo is not None and lo > 0:
        verdict = "gain"
    elif hi is not None and hi < 0:
        verdict = "loss"
    return {"mean": mean, "ci95": [lo, hi] if lo is not None else None, "values": [float(v) for v in d],
            "wins": int((d > 0).sum()), "seeds": int(len(d)), "verdict": verdict}


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _lineage_models(path: Path) -> list[Path]:
    """The parents of `path` that are models or latents (a generator), not the data it was selected from."""
    try:
        with open_artifact(path, header_only=True) as f:
            parents = read_header(f)["parents"]
    except MdcliError:
        return []
    out = []
    for rec in parents:
        p = Path(rec["path"])
        try:
            with open_artifact(p, header_only=True) as f:
                if read_header(f)["kind"] != "spectrograms":
                    out.append(p)
        except MdcliError:
            continue
    return out


@dataclass
class Plan:
    """Everything checked before the first fit: the tasks, and what the report says about each arm file."""

    train: Path
    test: Path
    names: list[str]
    split: str
    tasks: list[dict]
    arms: list[Arm]
    saw: dict = field(default_factory=dict)  # (arm, n, seed) -> most real windows per class its generator saw
    ae_saw: dict = field(default_factory=dict)  # arm file -> most --train windows per class its autoencoder saw
    clf_saw: dict = field(default_factory=dict)  # init arm file -> most --train windows per class the classifier saw
    outside: dict = field(default_factory=dict)  # (arm, n, seed) -> its generator's windows not in that subset
    starts: int = 1  # fits per arm and (N, seed); the one best on the other training windows is kept
    choose_on: int | None = None  # windows per class the choice reads (None: every other training window)
    keep: str = "best"  # of the K starts: the best on the choosing windows, or all (an ensemble)
    sequence_gap: int | None = None  # closest recording positions of a test and a training window of one class


def sequence_gap(train: Spectrograms, test: Spectrograms) -> int | None:
    """The smallest |sequence difference| between a test and a training window of the same class (None without
    /sequence in both). Overlapping measured windows (3 s windows, 1 s hop) closer than their length share time:
    `mdcli split --split blocked --gap 3` keeps them >= 3 apart."""
    if train.sequence is None or test.sequence is None:
        return None
    gaps = []
    for c, name in enumerate(train.class_names):
        if name not in test.class_names:
            continue
        a = np.sort(np.asarray(train.sequence)[train.labels == c])
        b = np.asarray(test.sequence)[test.labels == test.class_names.index(name)]
        if len(a) and len(b):
            i = np.clip(np.searchsorted(a, b), 1, len(a)) if len(a) > 1 else np.ones(len(b), int)
            near = np.minimum(np.abs(b - a[i - 1]), np.abs(b - a[np.minimum(i, len(a) - 1)]))
            gaps.append(int(near.min()))
    return min(gaps) if gaps else None


def plan(train_path: Path, test_path: Path, arms: list[Arm], per_class: list[int], seeds: list[int],
         split: str = "auto", starts: int = 1, choose_on: int | None = None, keep: str = "best") -> Plan:
    """Validate every input (files, classes, image sizes, N, overlap with the test set, K starts) -> the fit tasks
    (per N and seed: start 0 of every arm, then start 1, ...)."""
    if not per_class or any(n < 1 for n in per_class):
        raise ConfigError("--per-class: give one or more N >= 1, e.g. 20,50")
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    if starts < 1:
        raise ConfigError(f"--starts: must be >= 1 (fits per arm, the best on the other training windows kept), got {starts}")
    if starts > 1 and max(seeds) - min(seeds) >= START_STRIDE:
        raise ConfigError(f"--starts {starts}: start j draws its weights from seed + {START_STRIDE} j, so seeds spanning "
                          f"{START_STRIDE} or more would share weights; run fewer seeds per call (--first-seed)")
    if keep not in KEEP:
        raise ConfigError(f"--keep {keep}: expected {' or '.join(KEEP)}")
    if keep == "ensemble" and (starts == 1 or choose_on is not None):
        raise ConfigError("--keep ensemble: averages the K starts' predictions; give --starts K > 1, and no --choose-on "
                          "(nothing is chosen)")
    if choose_on is not None and (choose_on < 1 or starts == 1):
        raise ConfigError(f"--choose-on {choose_on}: the windows per class that choose among starts: >= 1, and only "
                          "with --starts K > 1")
    for arm in arms:
        m = len(arm.paths(0, 0)) if arm.mode == "init" else 1
        if starts % m:
            raise ConfigError(f"--arm {arm.name}: joins {m} classifiers, one start each; --starts must be a multiple of "
                              f"{m}, got {starts}")
    names_seen = [a.name for a in arms]
    if len(set(names_seen)) != len(names_seen):
        raise ConfigError(f"--arm: the names {names_seen} repeat one")
    train, test = Spectrograms.load(train_path), Spectrograms.load(test_path)
    names = list(train.class_names)
    if list(test.class_names) != names:
        raise MdcliError(f"--test {test_path}: classes {list(test.class_names)} differ from --train's {names}")
    if test.spectrograms.shape[1:] != train.spectrograms.shape[1:]:
        raise MdcliError(f"--test {test_path}: images are {test.spectrograms.shape[1:]}, --train's {train.spectrograms.shape[1:]}")
    check_held_out(test, test_path, train, f"--train {train_path}", "--test")
    gap = sequence_gap(train, test)
    if gap == 0:
        raise MdcliError(f"--test {test_path}: holds windows of --train {train_path} (the same recording position of the "
                         "same class); make both with `mdcli split --split blocked`")
    for n in per_class:
        few_shot_indices(train.labels, n, seeds[0], train.sequence, split, names)  # N larger than a class: an error here
    p = Plan(train_path, test_path, names, resolved_split(split, train), [], arms, sequence_gap=gap, starts=starts,
             choose_on=choose_on, keep=keep)
    if starts > 1:  # the choice needs windows to choose by
        for n in per_class:
            for seed in seeds:
                sel = few_shot_indices(train.labels, n, seed, train.sequence, p.split)
                other = _away_from(sel, train.labels, train.sequence)
                if not other.any():
                    raise MdcliError(f"--starts {starts}: at N = {n} (seed {seed}) no --train window lies outside the "
                                     f"subset (>= {FROZEN_GAP} recording steps from it) to choose the start by; "
                                     "use --starts 1 or a smaller N")
                count = np.bincount(train.labels[other], minlength=len(names))
                if choose_on is not None and count.min() < choose_on:
                    c = int(count.argmin())
                    raise MdcliError(f"--choose-on {choose_on}: at N = {n} (seed {seed}) class {names[c]} has "
                                     f"{count[c]} --train windows outside the subset (>= {FROZEN_GAP} recording steps "
                                     "from it) to choose by")
    checked: set[tuple[Path, bool]] = set()
    for arm in arms:
        for n in per_class:
            for seed in seeds:
                paths = arm.paths(n, seed)
                for path in paths:
                    _check_arm_file(p, arm, path, paths, n, seed, train, test, test_path, checked, split)
    for n in per_class:
        for seed in seeds:
            for start in range(starts):
                for arm in [Arm("real", "real"), Arm("classic", "classic")] + arms:
                    p.tasks.append(arm.task(n, seed, start, choose_on))
    return p


def _check_arm_file(p: Plan, arm: Arm, path: Path, paths: list[Path], n: int, seed: int, train: Spectrograms,
                    test: Spectrograms, test_path: Path, checked: set[tuple[Path, bool]], split: str) -> None:
    """One file of an arm at (N, seed): exists, fits the real data, never saw the test set; what its autoencoder
    and generator saw goes into the plan (the most over the files an arm joins)."""
    names = list(train.class_names)
    what = f"--arm {arm.name} ({path})"
    if arm.mode == "init":
        if (path, "init") not in checked:  # type: ignore[comparison-overlap]
            checked.add((path, "init"))  # type: ignore[arg-type]
            _check_init_file(p, path, what, train, test, test_path)
        return
    aligned = arm.mode != "pretrain" or len(paths) > 1  # pretraining on one file may use its own classes
    if (path, aligned) not in checked:
        checked.add((path, aligned))
        if not path.exists():
            raise MdcliError(f"{what}: file not found")
        extra = Spectrograms.load(path)
        if extra.spectrograms.shape[1:] != train.spectrograms.shape[1:]:
            raise MdcliError(f"{what}: images are {extra.spectrograms.shape[1:]}, the real data's "
                             f"{train.spectrograms.shape[1:]}")
        if len(extra) == 0:
            raise MdcliError(f"{what}: holds no images")
        if aligned:  # a class the real data lacks: an error
            why = f"{what} (files joined with {JOIN} must hold the real data's classes)" if len(paths) > 1 else what
            align_labels(extra, names, why)  # type: ignore[arg-type]
        check_held_out(test, test_path, extra, what, "--test")
        for model in _lineage_models(path):
            check_lineage_held_out(test, test_path, model, f"{what}: the model {model}")
        ae_data = find_autoencoder_data(path)
        if ae_data is not None:  # the decoder's training windows that are --train's own (byte for byte)
            counts = shared_per_class(Spectrograms.load(ae_data).spectrograms, train.spectrograms, train.labels)
            p.ae_saw[path] = max(counts.values(), default=0)
    gen_data = find_training_data(path)
    if gen_data is not None:
        seen = Spectrograms.load(gen_data)
        subset = train.spectrograms[few_shot_indices(train.labels, n, seed, train.sequence, split)]
        key = (arm.name, n, seed)
        p.saw[key] = max(p.saw.get(key, 0), max(seen.class_counts().values()))
        p.outside[key] = max(p.outside.get(key, 0), len(seen) - shared_images(subset, seen.spectrograms))


def _check_init_file(p: Plan, path: Path, what: str, train: Spectrograms, test: Spectrograms, test_path: Path) -> None:
    """An init arm's classifier: a classifier artifact of the real data's image size whose training data (its
    lineage) never held a --test window; how many --train windows per class it was trained on goes into the plan
    (more than N stars the row: the start point saw more real data than the subset)."""
    from mdcli.diagnose.generation import lineage_spectrograms
    from mdcli.models.load import load_classifier

    if not path.exists():
        raise MdcliError(f"{what}: file not found")
    with open_artifact(path, header_only=True) as f:
        kind = read_header(f)["kind"]
    if kind != "classifier":
        raise MdcliError(f"{what}: is a {kind} artifact; mode init starts from a classifier (mdcli train-classifier -o FILE)")
    attrs = load_classifier(path)[1]  # a damaged config or weights: here, not mid-run
    shape = tuple(attrs["image_shape"])
    if shape != tuple(train.spectrograms.shape[1:]):
        raise MdcliError(f"{what}: the classifier was trained on images {shape}, the real data's are "
                         f"{tuple(train.spectrograms.shape[1:])}")
    check_lineage_held_out(test, test_path, path, f"{what}: the classifier")
    seen = lineage_spectrograms(path)
    for q in seen:  # generated windows it was trained on (--extra samples.h5): their generator's data too
        for model in _lineage_models(q):
            check_lineage_held_out(test, test_path, model, f"{what}: the model {model} behind its training data {q}")
    if seen:  # every file it learnt from together (unknown, None, when they are gone or changed)
        counts = shared_per_class(np.concatenate([Spectrograms.load(q).spectrograms for q in seen]),
                                  train.spectrograms, train.labels)
        p.clf_saw[path] = max(counts.values(), default=0)


class Data:
    """The tensors of a run (real training, held-out, and each extra file once), loaded on first use."""

    def __init__(self, train: Path, test: Path):
        tr, te = Spectrograms.load(train), Spectrograms.load(test)
        self.names, self.sequence = list(tr.class_names), tr.sequence
        self.x, self.y = model_images(tr), torch.from_numpy(tr.labels)
        self.x_test, self.y_test = model_images(te), te.labels
        self._extra: dict[str, tuple] = {}
        self._init: dict[str, tuple] = {}

    def init_model(self, path: str, seed: int) -> SpectrogramClassifier:
        """An init arm's start: the classifier in `path` (its network, its weights), with a fresh head seeded by
        `seed` when its classes are not the real data's (by name and order)."""
        import copy

        from mdcli.models.load import load_classifier

        if path not in self._init:
            self._init[path] = load_classifier(path)
        model, attrs = self._init[path]
        model = copy.deepcopy(model)  # each task fine-tunes its own copy
        return model if list(attrs["class_names"]) == self.names else fresh_head(model, len(self.names), seed)

    def extra(self, path: str) -> tuple[torch.Tensor, torch.Tensor, int | None]:
        """-> (images, labels, None) in the real data's class order when the file's classes are among the real
        ones, else (images, labels, its class count) in the file's own order (pretrain, then a fresh head).
        Several files joined by JOIN are one set, in the real data's class order (plan checked their classes)."""
        if path not in self._extra:
            parts = path.split(JOIN)
            sets = [Spectrograms.load(q) for q in parts]
            own = len(sets) == 1 and not set(sets[0].class_names) <= set(self.names)
            labels = sets[0].labels if own else np.concatenate(
                [align_labels(d, self.names, Path(q)) for d, q in zip(sets, parts)])
            x = torch.cat([model_images(d) for d in sets]) if len(sets) > 1 else model_images(sets[0])
            self._extra[path] = (x, torch.from_numpy(labels), len(sets[0].class_names) if own else None)
        return self._extra[path]


def pretrain_key(task: dict, fit_steps: int) -> tuple | None:
    """What a pretrain task's first stage depends on besides the run's fit config: (file, steps, its start's seed), its steps
    resolved (an arm without `steps` pretrains for fit_steps); the same for every N (the N real windows enter
    only the fine-tuning). None for the other modes."""
    return ((task["file"], task["steps"] or fit_steps, task["fit_seed"]) if task["mode"] == "pretrain"
            else None)


def run_task(task: dict, data: Data, fit: FitConfig, split: str, batch_size: int,
             device: torch.device | str = "cpu", pretrained: dict | None = None) -> dict:
    """One arm at one (N, seed): train, test on the held-out set -> accuracy, macro-F1, and the digests of the
    real subset and of the initial weights (the same for every arm of a seed: the paired design).

    `pretrained` (pretrain_key -> weights) keeps each pretraining for the run's other tasks that share it (other N,
    other fine-tunings): every fit is seeded from the task alone, so a kept pretraining gives the same numbers."""
    n, mode = task["n"], task["mode"]
    sel = torch.from_numpy(few_shot_indices(data.y.numpy(), n, task["seed"], data.sequence, split))
    seed = task["fit_seed"]  # the start's weights and batches (the subset's seed for start 0)
    x, y = data.x[sel], data.y[sel]
    k = len(data.names)
    xe, ye, own = data.extra(task["file"]) if task["file"] is not None and mode != "init" else (None, None, None)
    n_first = own or k  # own classes only with pretrain: plan refuses them for the other modes
    if mode == "init":  # the file's network and weights (the digest below tells its start from the others')
        model = data.init_model(task["file"], seed)
    else:
        torch.manual_seed(seed)
        model = SpectrogramClassifier(fit.net, n_first)
    body = [v.numpy() for name, v in model.state_dict().items() if not name.startswith("head.")]
    init = _digest(*body)
    opts = ExtraOptions(**task["extra"])
    go = lambda xx, yy, cfg=fit, **kw: fit_classifier(xx, yy, kw.pop("k", k), cfg, seed, device=device, **kw)  # noqa: E731
    if mode in ("real", "classic"):
        model = go(x, y, model=model, augment=mode == "classic")
    elif mode == "append":
        model = go(x, y, model=model, extra=ExtraSet(xe, ye, opts, seed))
    elif mode == "only":
        model = go(xe, ye, model=model)
    elif mode == "mixed-then-real":
        model = go(x, y, model=go(x, y, model=model, extra=ExtraSet(xe, ye, opts, seed)), head_only=True)
    else:  # pretrain (its own number of steps on the extra set where the arm sets one), or init (trained before)
        if mode == "pretrain":
            key = pretrain_key(task, fit.steps)
            if pretrained is not None and key in pretrained:
                model.load_state_dict(pretrained[key])
            else:
                model = go(xe, ye, model=model, k=n_first, cfg=replace(fit, steps=task["steps"] or fit.steps))
                if pretrained is not None:
                    pretrained[key] = {name: v.detach().cpu().clone() for name, v in model.state_dict().items()}
            if own:  # pretrained on other classes: a fresh head for the real ones
                model = fresh_head(model, k, seed)
        tune = replace(fit, lr=task["lr"]) if task["lr"] else fit
        model = go(x, y, cfg=tune, model=model, head_only=task["finetune"] == "head", augment=task["augment"] == "classic")
    logits = class_logits(model.to(device), data.x_test, batch_size)
    pred = logits.argmax(1)
    # the same model on the other training windows (FROZEN_GAP steps from the subset): no held-out window enters;
    # with choose_on, also on the V of them per class that choose among starts
    y_all = data.y.numpy()
    other = _away_from(sel.numpy(), y_all, data.sequence)
    right = np.zeros(len(y_all), bool)
    logits_train = np.zeros((0, k))
    if other.any():
        logits_train = class_logits(model, data.x[torch.from_numpy(other)], batch_size)
        right[other] = logits_train.argmax(1) == y_all[other]
    on_train = float(right[other].mean()) if other.any() else None
    on_choice = None
    if task["choose_on"] is not None:
        choice = choice_windows(sel.numpy(), y_all, data.sequence, task["choose_on"], task["seed"])
        on_choice = float(right[choice].mean())
    return {"accuracy": float((pred == data.y_test).mean()), "macro_f1": macro_f1(pred, data.y_test, k),
            "accuracy_train": on_train, "accuracy_choice": on_choice, "subset": _digest(sel.numpy()), "init": init,
            # class probabilities on the held-out and the other training windows: what an ensemble of starts averages
            "proba": softmax(logits).tolist(), "proba_train": softmax(logits_train).tolist()}


REFERENCE = ("a logistic regression on each window's Doppler profile (per row: mean and spread over time; per "
             "Doppler slice: the temporal spectrum), no CNN")


def profile_features(x: np.ndarray, bands: int = 8, freqs: int = 16) -> np.ndarray:
    """Per window (N, F, T) in [0, 1]: the mean and standard deviation over time of each Doppler row, and
    log(1 + |temporal spectrum|) at frequencies 1..freqs (cycles per window) of the mean of each of `bands` equal
    Doppler slices: where the power lies along Doppler and how it repeats, not when. -> (N, 2 F + bands x freqs)."""
    x = np.asarray(x, dtype=np.float64)
    slices = np.stack([b.mean(1) for b in np.array_split(x, min(bands, x.shape[1]), axis=1)], 1)  # (N, bands, T)
    spec = np.abs(np.fft.rfft(slices - slices.mean(-1, keepdims=True), axis=-1))[..., 1 : freqs + 1]
    return np.concatenate([x.mean(2), x.std(2), np.log1p(spec).reshape(len(x), -1)], 1)


def _to_unit(t: torch.Tensor) -> np.ndarray:
    """Model-range images (N, 1, F, T) in [-1, 1] -> the image's [0, 1] (N, F, T)."""
    return (t.numpy()[:, 0] + 1) / 2


def reference_profiles(data: "Data") -> tuple[np.ndarray, np.ndarray]:
    """profile_features of the real training and held-out windows: what the reference sees of them."""
    return profile_features(_to_unit(data.x)), profile_features(_to_unit(data.x_test))


def reference_accuracies(data: "Data", per_class: list[int], seeds: list[int], split: str,
                         profiles: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The REFERENCE classifier on each (N, seed) subset the arms train on, tested on the held-out set: what the N
    windows support without a CNN. A `real` row far below it says the network, not the data, limits. -> per N the
    accuracy spread (mean, std, ci95, values over seeds)."""
    train, test = profiles or reference_profiles(data)
    y = data.y.numpy()
    out = {}
    for n in per_class:
        accs = []
        for seed in seeds:
            sel = few_shot_indices(y, n, seed, data.sequence, split)
            accs.append(stats.linear_probe_accuracy(train[sel], y[sel], test, data.y_test, weight_decay=1e-2, seed=seed))
        out[str(n)] = _spread(accs)
    return out


ARM_CHECKS = ("recognised", "alone", "added")  # the reference per arm: see reference_arms


def reference_arms(data: "Data", arms: list[Arm], per_class: list[int], seeds: list[int], split: str,
                   base: dict, profiles: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The REFERENCE classifier once more per arm with extra windows of the real classes, on the same (N, seed)
    subsets, whatever the arm's mode (all its windows, weight 1): what the extra windows carry of the classes
    without a CNN. Per arm and N over seeds: `recognised`, the share of the arm's windows that the reference trained
    on the N real windows gives their own label (do they look like their class); `alone`, the reference trained on
    the arm's windows only, on the held-out set (do they teach the classes); `added`, trained on the N real windows
    and the arm's, on the held-out set, with its paired `gain` over the reference on the real windows alone (`base`:
    reference_accuracies' results on the same seeds). An arm whose file holds other classes (pretraining on its own
    labels), and an init arm (a classifier, no windows), has None. -> {arm: {N: ...}}."""
    train, test = profiles or reference_profiles(data)
    y = data.y.numpy()
    fit = lambda fa, ya, fb, yb, seed: stats.linear_probe_accuracy(fa, ya, fb, yb, weight_decay=1e-2, seed=seed)  # noqa: E731
    cache: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    out: dict = {}
    for arm in arms:
        if arm.file is None:
            continue
        if arm.mode == "init":  # a classifier, not windows
            out[arm.name] = None
            continue
        per_n: dict | None = {}
        for n in per_class:
            got = {k: [] for k in ARM_CHECKS}
            for seed in seeds:
                path = arm.path(n, seed)
                if path not in cache:
                    xe, ye, own = data.extra(path)
                    cache[path] = None if own else (profile_features(_to_unit(xe)), ye.numpy())
                if cache[path] is None:
                    per_n = None
                    break
                fe, ye = cache[path]
                sel = few_shot_indices(y, n, seed, data.sequence, split)
                got["recognised"].append(fit(train[sel], y[sel], fe, ye, seed))
                got["alone"].append(fit(fe, ye, test, data.y_test, seed))
                got["added"].append(fit(np.concatenate([train[sel], fe]), np.concatenate([y[sel], ye]), test, data.y_test, seed))
            if per_n is None:
                break
            per_n[str(n)] = {k: _spread(v) for k, v in got.items()} | {
                "gain": paired_gain([a - b for a, b in zip(got["added"], base[str(n)]["values"])])}
        out[arm.name] = per_n
    return out


def frozen_starts(data: "Data", fit: FitConfig, arms: list[Arm], per_class: list[int], seeds: list[int], split: str,
                  batch_size: int = 128) -> dict | None:
    """What each init arm's classifier carries of the real classes before any fine-tuning: its body frozen (the
    features its head reads, of every window), read out by the reference's logistic regression trained on the
    (N, seed) subset and tested on the held-out set; beside it `real`'s start, `fit.net` at the seed's initial
    weights, frozen and read out the same way (random features: what a start carries without pretraining).
    `accuracy_train` reads each out on the other training windows instead (with /sequence, those at least
    FROZEN_GAP recording steps from every subset window of their class): no held-out window enters it, so it may
    choose among pretrainings. An init arm joining several classifiers has one entry per file, ARM#j (j from 0).
    -> {"real" | arm: {N: {"accuracy", "accuracy_train" (spreads over seeds; the latter None when the subset is all
    the training windows), "gain": paired over real's start (not for real)}}}; None without init arms."""
    # (name, arm, which of its files) per frozen start
    inits = [(a.name if len(a.paths(0, 0)) == 1 else f"{a.name}#{j}", a, j)
             for a in arms if a.mode == "init" for j in range(len(a.paths(0, 0)))]
    if not inits:
        return None
    y, k = data.y.numpy(), len(data.names)
    feats = lambda m: (embed(m.eval(), data.x, batch_size)[0], embed(m, data.x_test, batch_size)[0])  # noqa: E731
    names = ["real"] + [name for name, _, _ in inits]
    acc: dict[str, dict[str, list[float]]] = {name: {str(n): [] for n in per_class} for name in names}
    acc_train: dict[str, dict[str, list[float]]] = {name: {str(n): [] for n in per_class} for name in names}
    cache: dict[str, tuple] = {}
    for seed in seeds:
        torch.manual_seed(seed)  # the real arm's start (run_task)
        start = feats(SpectrogramClassifier(fit.net, k))
        for n in per_class:
            sel = few_shot_indices(y, n, seed, data.sequence, split)
            other = _away_from(sel, y, data.sequence)
            probe = lambda f, xs, ys: stats.linear_probe_accuracy(f[0][sel], y[sel], xs, ys,  # noqa: E731
                                                                  weight_decay=1e-2, seed=seed)
            for name, a, j in [("real", None, 0)] + inits:
                if a is None:
                    f = start
                else:
                    path = str(a.paths(n, seed)[j])
                    if path not in cache:  # the body's features: the head (fresh or kept) does not enter
                        cache[path] = feats(data.init_model(path, seed))
                    f = cache[path]
                acc[name][str(n)].append(probe(f, f[1], data.y_test))
                if other.any():
                    acc_train[name][str(n)].append(probe(f, f[0][other], y[other]))
    return {name: {n: {"accuracy": _spread(v), "accuracy_train": _spread(acc_train[name][n]) if acc_train[name][n]
                       else None} | ({} if name == "real" else {
        "gain": paired_gain([a - b for a, b in zip(v, acc["real"][n])])}) for n, v in per_n.items()}
        for name, per_n in acc.items()}


FROZEN_GAP = 3  # recording steps between a subset window and a training window that tests a frozen start


def _away_from(sel: np.ndarray, y: np.ndarray, sequence) -> np.ndarray:
    """The training windows outside the subset `sel`; with a recording order, only those at least FROZEN_GAP
    steps from every subset window of their class (overlapping measured windows share time). -> a mask."""
    mask = np.ones(len(y), bool)
    mask[sel] = False
    if sequence is None:
        return mask
    seq = np.asarray(sequence)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        near = seq[sel][y[sel] == c]
        if len(near):
            mask[idx] &= np.abs(seq[idx][:, None] - near[None]).min(1) >= FROZEN_GAP
    return mask


def choice_windows(sel: np.ndarray, y: np.ndarray, sequence, v: int, seed: int) -> np.ndarray:
    """The V windows per class that choose among starts: of the other training windows (_away_from), per class the
    V nearest the subset in recording order (the subset's neighbours: windows a user recorded with it and kept
    back), ties to the earlier; without a recording order, V drawn at random (seeded by the subset's seed). -> a
    mask (plan checked every class has V)."""
    other = _away_from(sel, y, sequence)
    mask = np.zeros(len(y), bool)
    rng = np.random.default_rng(seed)
    for c in np.unique(y):
        idx = np.flatnonzero(other & (y == c))
        if sequence is None:
            keep = rng.permutation(idx)[:v]
        else:
            seq = np.asarray(sequence)
            near = seq[sel][y[sel] == c]
            dist = np.abs(seq[idx][:, None] - near[None]).min(1)
            keep = idx[np.lexsort((seq[idx], dist))[:v]]
        mask[keep] = True
    return mask


def worker_chunks(tasks: list[dict], jobs: int, fit_steps: int) -> list[list[int]]:
    """Task indices per worker process: the tasks that share a pretraining (pretrain_key) in one worker, which runs
    it once; groups handed largest first to the worker with the fewest steps so far (a pretraining counts its
    steps once, every fit its fine-tuning). Each worker's tasks keep the plan's order."""
    groups: dict = {}
    for i, task in enumerate(tasks):
        key = pretrain_key(task, fit_steps)
        groups.setdefault(("pretrain", key) if key else ("task", i), []).append(i)
    cost = {g: fit_steps * len(idx) + (g[1][1] if g[0] == "pretrain" else 0)
            for g, idx in groups.items()}
    chunks: list[list[int]] = [[] for _ in range(min(jobs, len(groups)))]
    load = [0] * len(chunks)
    for key in sorted(groups, key=lambda g: -cost[g]):  # stable: equal costs keep the plan's order
        j = load.index(min(load))
        chunks[j] += groups[key]
        load[j] += cost[key]
    return [sorted(c) for c in chunks]


def run_spec(spec: dict, on_result: Callable[[int, dict], None] = lambda i, r: None) -> list[dict]:
    """Run the spec's tasks in this process (the fit worker calls this too)."""
    from mdcli.config import from_dict

    data = Data(Path(spec["train"]), Path(spec["test"]))
    fit = from_dict(FitConfig, spec["fit"])
    device = torch.device(spec.get("device", "cpu"))
    out, pretrained = [], {}
    uses = Counter(pretrain_key(t, fit.steps) for t in spec["tasks"])
    for i, task in enumerate(spec["tasks"]):
        out.append(run_task(task, data, fit, spec["split"], int(spec["batch_size"]), device, pretrained))
        key = pretrain_key(task, fit.steps)
        uses[key] -= 1
        if key is not None and not uses[key]:
            pretrained.pop(key, None)  # its last task has run
        on_result(i, out[-1])
    return out


def gain_report(p: Plan, cfg: GainConfig, per_class: list[int], seeds: list[int], jobs: int = 1,
                progress: Callable[[], None] = lambda: None) -> dict:
    """Run every fit of the plan (in `jobs` processes on a CPU, one torch thread each: the same numbers for
    any `jobs`) and assemble the report."""
    from mdcli.diagnose.generation import fit_in_processes

    cfg.validate()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    jobs = jobs if device == "cpu" else 1
    spec = {"kind": "gain", "train": str(p.train), "test": str(p.test), "split": p.split, "fit": asdict(cfg.fit),
            "batch_size": cfg.batch_size, "device": device}
    if jobs > 1 and len(p.tasks) > 1:
        results = fit_in_processes(spec, p.tasks, jobs, 1, lambda i, r: progress(), "diagnose gain",
                                   worker_chunks(p.tasks, jobs, cfg.fit.steps))
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if device == "cpu" else threads)
        try:
            results = run_spec({**spec, "tasks": p.tasks}, lambda i, r: progress())
        finally:
            torch.set_num_threads(threads)
    arms = [Arm("real", "real"), Arm("classic", "classic")] + p.arms
    report: dict = {
        "train": str(p.train), "test": str(p.test), "train_sha256": sha256_file(p.train), "test_sha256": sha256_file(p.test),
        "classes": p.names, "split": p.split, "test_sequence_gap": p.sequence_gap, "per_class": list(per_class), "seeds": list(seeds),
        "fit": asdict(cfg.fit), "fits": {"jobs": jobs, "threads": 1 if device == "cpu" else None, "device": device,
                                         "count": len(p.tasks)}, "starts": p.starts, "choose_on": p.choose_on,
        "keep": p.keep,
        "arms": {a.name: {"mode": a.mode, "file": a.file, "options": a.options()} for a in arms},
        "results": {},
    }
    data = Data(p.train, p.test)
    profiles = reference_profiles(data)
    ref = reference_accuracies(data, list(per_class), list(seeds), p.split, profiles)
    report["reference"] = {"method": REFERENCE, "results": ref,
                           "arms": reference_arms(data, p.arms, list(per_class), list(seeds), p.split, ref, profiles),
                           "frozen": frozen_starts(data, cfg.fit, p.arms, list(per_class), list(seeds), p.split,
                                                   cfg.batch_size)}
    fits: dict = {}  # (arm, N, seed) -> its starts' results, in start order
    for t, r in zip(p.tasks, results):
        fits.setdefault((t["arm"], t["n"], t["seed"]), []).append(r)
    together = {key: ensemble(rs, data, key[1], key[2], p.split) for key, rs in fits.items()} if p.starts > 1 else {}
    by = together if p.keep == "ensemble" else {key: rs[chosen_start(rs)] for key, rs in fits.items()}
    for n in per_class:
        base = [by[("real", n, s)] for s in seeds]
        rows = {}
        for a in arms:
            rs = [by[(a.name, n, s)] for s in seeds]
            acc, f1 = [r["accuracy"] for r in rs], [r["macro_f1"] for r in rs]
            row = {"accuracy": _spread(acc), "macro_f1": _spread(f1),
                   "subsets": [r["subset"] for r in rs], "inits": [r["init"] for r in rs],
                   "gain": None, "gain_macro_f1": None, "generator_saw": None, "generator_saw_more": False,
                   "generator_saw_outside_subset": None, "autoencoder_saw": None, "autoencoder_saw_more": False,
                   "classifier_saw": None, "classifier_saw_more": False}
            on_train = [r["accuracy_train"] for r in rs]
            row["accuracy_train"] = None if None in on_train else _spread(on_train)
            row["gain_train"] = None
            if a.name != "real":
                row["gain"] = paired_gain([r["accuracy"] - b["accuracy"] for r, b in zip(rs, base)])
                row["gain_macro_f1"] = paired_gain([r["macro_f1"] - b["macro_f1"] for r, b in zip(rs, base)])
                if row["accuracy_train"] is not None:
                    row["gain_train"] = paired_gain([r - b["accuracy_train"] for r, b in zip(on_train, base)])
            if p.starts > 1:  # every start's numbers, which was kept, and the kept fit against real's single start
                every = [fits[(a.name, n, s)] for s in seeds]
                row["starts"] = {"chosen": [chosen_start(f) if p.keep == "best" else None for f in every],
                                 "accuracy": [[r["accuracy"] for r in f] for f in every],
                                 "accuracy_train": [[r["accuracy_train"] for r in f] for f in every],
                                 "accuracy_choice": [[r["accuracy_choice"] for r in f] for f in every],
                                 "gain_over_real_first_start": paired_gain(
                                     [r["accuracy"] - fits[("real", n, s)][0]["accuracy"] for r, s in zip(rs, seeds)])}
                both = [together[(a.name, n, s)]["accuracy"] for s in seeds]  # whichever --keep the table shows
                row["starts"]["ensemble"] = {"accuracy": _spread(both), "gain": None if a.name == "real" else paired_gain(
                    [e - together[("real", n, s)]["accuracy"] for e, s in zip(both, seeds)])}
            ae = [p.ae_saw[q] for s in seeds if a.file for q in a.paths(n, s) if q in p.ae_saw]
            if ae:
                row["autoencoder_saw"] = max(ae)
                row["autoencoder_saw_more"] = bool(max(ae) > n)
            clf = [p.clf_saw[q] for s in seeds if a.mode == "init" for q in a.paths(n, s) if q in p.clf_saw]
            if clf:
                row["classifier_saw"] = max(clf)
                row["classifier_saw_more"] = bool(max(clf) > n)
            saw = [p.saw[(a.name, n, s)] for s in seeds if (a.name, n, s) in p.saw]
            if saw:
                row["generator_saw"] = max(saw)
                row["generator_saw_more"] = bool(max(saw) > n)
                row["generator_saw_outside_subset"] = max(p.outside[(a.name, n, s)] for s in seeds if (a.name, n, s) in p.outside)
            rows[a.name] = row
        report["results"][str(n)] = rows
    return report


def ensemble(results: list[dict], data: "Data", n: int, seed: int, split: str) -> dict:
    """An arm's K starts at one (N, seed) as one classifier: the mean of their class probabilities, on the held-out
    and on the other training windows (run_task's numbers for it; `init`: one digest of the K starts')."""
    k = len(data.names)
    pred = np.mean([r["proba"] for r in results], axis=0).argmax(1)
    y = data.y.numpy()
    other = _away_from(few_shot_indices(y, n, seed, data.sequence, split), y, data.sequence)
    on_train = None
    if other.any():
        on_train = float((np.mean([r["proba_train"] for r in results], axis=0).argmax(1) == y[other]).mean())
    return {"accuracy": float((pred == data.y_test).mean()), "macro_f1": macro_f1(pred, data.y_test, k),
            "accuracy_train": on_train, "accuracy_choice": None, "subset": results[0]["subset"],
            "init": hashlib.sha256("".join(r["init"] for r in results).encode()).hexdigest()[:16]}


def chosen_start(results: list[dict]) -> int:
    """Which of an arm's starts at one (N, seed) is kept: the highest accuracy on the other training windows, or on
    the V per class of --choose-on (the first on a tie; the only one with one start). No held-out number enters."""
    if len(results) == 1:
        return 0
    key = "accuracy_train" if results[0]["accuracy_choice"] is None else "accuracy_choice"
    return int(np.argmax([r[key] for r in results]))


def _spread(values: list[float]) -> dict:
    """Mean, sample std, t 95 % interval of the mean over seeds, and the per-seed values."""
    g = paired_gain(values)
    return {"mean": g["mean"], "std": stats.seed_spread(values)[1], "ci95": g["ci95"], "values": g["values"]}


def verdict_text(gain: dict | None) -> str:
    """How the table prints a gain: a number only where its interval excludes 0."""
    if gain is None:
        return "baseline"
    ci = gain["ci95"]
    span = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    if gain["verdict"] == "no measurable gain":
        return f"no measurable gain ({gain['mean']:+.3f}{span})"
    return f"{gain['verdict']} {gain['mean']:+.3f}{span}"


MARKDOWN_MARK = "<!-- mdcli diagnose gain -->"  # first line of a --md-out report (outputs.SIGNATURES knows it)


def table_rows(report: dict):
    """(N, arm name, row, starred, note or None) per table row, in report order. An arm is starred, with a note
    saying which, when its generator saw more real windows than N or windows outside the subset it is scored
    with, when the autoencoder behind its file was trained on more than N of the real training windows, or when the
    classifier an init arm starts from was."""
    for n, rows in report["results"].items():
        for name, r in rows.items():
            ae_more = r.get("autoencoder_saw_more", False)  # reports written before the key existed lack it
            clf_more = r.get("classifier_saw_more", False)
            star = r["generator_saw_more"] or bool(r["generator_saw_outside_subset"]) or ae_more or clf_more
            note = None
            if r["generator_saw_more"]:
                note = (f"{name}* at N = {n}: generator saw {r['generator_saw']} > {n} real windows per class "
                        "(the optimistic setting: train one generator per subset, FILE with {n} and {seed})")
            elif r["generator_saw_outside_subset"]:
                note = (f"{name}* at N = {n}: the generator's training data holds {r['generator_saw_outside_subset']} "
                        "windows outside the subset it is scored with (mdcli subset --per-class N --seed S for each)")
            elif ae_more:
                note = (f"{name}* at N = {n}: its autoencoder was trained on {r['autoencoder_saw']} > {n} of the real "
                        "training windows per class (the decoder saw more than the subset)")
            elif clf_more:
                note = (f"{name}* at N = {n}: the classifier it starts from was trained on {r['classifier_saw']} > {n} of "
                        "the real training windows per class (its start saw more than the subset)")
            yield n, name, r, star, note


TABLE_HEADER = ("N", "arm", "mode", "accuracy", "macro-F1", "gain over real (95 % CI)", "wins")


def table_cells(report: dict) -> tuple[list[list[str]], list[str]]:
    """The table's rows as text cells (TABLE_HEADER's columns: accuracy and macro-F1 as mean ± std over seeds, the
    paired gain over real with its 95 % interval, a number only where the interval excludes 0, and wins/seeds;
    the mode with its options where they differ from the defaults), and the notes of the starred rows. What
    the terminal table and the Markdown report both show."""
    rows, notes = [], []
    default = asdict(ExtraOptions()) | {"finetune": "all"}
    for n, name, r, star, note in table_rows(report):
        g = r["gain"]
        notes += [note] if note else []
        arm = report["arms"][name]
        mode = ", ".join([arm["mode"]] + [f"{k} {v}" for k, v in arm["options"].items() if v != default.get(k)])
        rows.append([str(n), name + ("*" if star else ""), mode, stats.fmt_spread(r["accuracy"]["values"], ".3f", ".3f"),
                     stats.fmt_spread(r["macro_f1"]["values"], ".3f", ".3f"), verdict_text(g),
                     f"{g['wins']}/{g['seeds']}" if g else ""])
    return rows, notes


def reference_line(report: dict) -> str | None:
    """The reference classifier's accuracy per N as one line (None for reports written before it existed)."""
    ref = report.get("reference")
    if not ref:
        return None
    per_n = "; ".join(f"N = {n}: {stats.fmt_spread(r['values'], '.3f', '.3f')}" for n, r in ref["results"].items())
    return f"reference, {ref['method']}: {per_n}"


REFERENCE_ARMS_HEADER = ("N", "arm", "recognised", "alone", "added", "gain over the reference on real (95 % CI)")
REFERENCE_ARMS_TITLE = ("the reference per arm (recognised: the arm's windows given their own label by the reference "
                        "trained on the N real ones; alone / added: trained on the arm's windows alone / added to the "
                        "real ones, on the held-out set)")


def reference_arm_cells(report: dict) -> list[list[str]]:
    """The reference per arm (reference_arms) as text cells of REFERENCE_ARMS_HEADER's columns; no rows for reports
    written before it existed, and none for an arm pretrained on its own classes."""
    rows = []
    for name, per_n in ((report.get("reference") or {}).get("arms") or {}).items():
        for n, r in (per_n or {}).items():
            rows.append([str(n), name] + [stats.fmt_spread(r[k]["values"], ".3f", ".3f") for k in ARM_CHECKS]
                        + [verdict_text(r["gain"])])
    return rows


FROZEN_HEADER = ("N", "start", "accuracy, frozen", "over real's start (95 % CI)", "on other training windows")
FROZEN_TITLE = ("the starts frozen (init arms: the classifier's body; real: fit.net at the seed's initial weights), "
                "their features read out by the reference's logistic regression on the N real windows, on the held-out "
                f"set, and on the other training windows (>= {FROZEN_GAP} recording steps from the subset; no "
                "held-out window: a way to choose among pretrainings)")


def frozen_cells(report: dict) -> list[list[str]]:
    """frozen_starts as text cells of FROZEN_HEADER's columns; none for a run without init arms (or written before)."""
    rows = []
    for name, per_n in ((report.get("reference") or {}).get("frozen") or {}).items():
        for n, r in per_n.items():
            train = r.get("accuracy_train")
            rows.append([str(n), name, stats.fmt_spread(r["accuracy"]["values"], ".3f", ".3f"),
                         verdict_text(r.get("gain")), stats.fmt_spread(train["values"], ".3f", ".3f") if train else "–"])
    return sorted(rows, key=lambda c: int(c[0]))  # by N, the plan's order within


TRAIN_HEADER = ("N", "arm", "accuracy on other training windows", "gain over real there (95 % CI)")
TRAIN_TITLE = ("the same fine-tuned classifiers read on the other training windows (>= "
               f"{FROZEN_GAP} recording steps from the subset; no held-out window: a way to choose among arms, e.g. "
               "pretraining draws, when the training part holds more than N windows per class)")


def train_cells(report: dict) -> list[list[str]]:
    """Each arm's accuracy on the other training windows and its paired gain over real there, as text cells of
    TRAIN_HEADER's columns; none when the subsets are all the training windows (or for reports written before)."""
    rows = []
    for n, name, r, _, _ in table_rows(report):
        if r.get("accuracy_train"):
            rows.append([str(n), name, stats.fmt_spread(r["accuracy_train"]["values"], ".3f", ".3f"),
                         "baseline" if name == "real" else verdict_text(r["gain_train"])])
    return rows


def markdown_table(report: dict) -> str:
    """The report's table (table_cells) as Markdown, the notes (and the reference line) as a list under it, and the
    side tables that have rows: the reference per arm, the arms on the other training windows, the starts frozen."""
    rows, notes = table_cells(report)
    notes = notes + [line for line in [reference_line(report)] if line]
    out = ["| " + " | ".join(TABLE_HEADER) + " |", "|---" * len(TABLE_HEADER) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    out += ([""] + ["- " + n.replace("*", "\\*") for n in notes]) if notes else []
    for title, header, rows in ((REFERENCE_ARMS_TITLE, REFERENCE_ARMS_HEADER, reference_arm_cells(report)),
                                (TRAIN_TITLE, TRAIN_HEADER, train_cells(report)),
                                (FROZEN_TITLE, FROZEN_HEADER, frozen_cells(report))):
        if rows:  # the side tables, each under its title as a sentence
            out += ["", title[0].upper() + title[1:] + ":", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
            out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(out)


def starts_sentence(report: dict) -> str:
    """How a run with several starts per fit chose (empty with one start, and for reports written before)."""
    k = report.get("starts", 1)
    if k == 1:
        return ""
    on = report.get("choose_on")
    what = (f" Every arm fits {k} starts per N and seed (weights and batches from seed + {START_STRIDE} j; an init arm "
            f"joining several classifiers: one each)")
    if report.get("keep") == "ensemble":
        return what + " and predicts with the mean of their class probabilities; the table scores these ensembles."
    return (what + " and keeps the one with the highest accuracy on the other training windows"
            + (f" (on {on} of them per class, the nearest the subset in recording order)" if on else "")
            + "; the table scores the kept fits (their accuracy on the windows that chose them reads high).")


def pooled_sentence(report: dict) -> str:
    """Which runs a pooled report (diagnose gain-pool) joins; empty for one run's report."""
    parts = report.get("pooled_from")
    if not parts:
        return ""
    return " Pooled from " + ", ".join(f"{p['path']} (seeds {', '.join(map(str, p['seeds']))})" for p in parts) + "."


def markdown_report(report: dict, command: str) -> str:
    """`diagnose gain --md-out`: what was compared and how (the command that made it, the data, the fits), and the
    table (markdown_table). The generated report docs/ keeps beside its JSON."""
    fit = report["fit"]
    lines = [MARKDOWN_MARK, "", "```bash", command, "```", "",
             f"Train {report['train']}, test {report['test']} ({report['split']} subsets of N windows per class, "
             f"seeds {', '.join(str(s) for s in report['seeds'])}; classes {', '.join(report['classes'])}); every fit "
             f"{fit['steps']} steps at batch {fit['batch_size']}, the same initial weights and subset for every arm of a seed"
             + (" (an init arm: its classifier's weights, the same for every seed)." if any(
                 a["mode"] == "init" for a in report["arms"].values()) else ".") + starts_sentence(report)
             + pooled_sentence(report), "", markdown_table(report), ""]
    return "\n".join(lines)


def plot_gain(report: dict, folder: Path) -> list[Path]:
    """Accuracy against N per arm, with the t 95 % intervals of the mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [int(n) for n in report["results"]]
    arms = list(report["arms"])
    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    for j, arm in enumerate(arms):
        rows = [report["results"][str(n)][arm]["accuracy"] for n in ns]
        means = np.array([r["mean"] for r in rows])
        err = None
        if all(r["ci95"] for r in rows):
            err = np.array([[m - r["ci95"][0] for m, r in zip(means, rows)], [r["ci95"][1] - m for m, r in zip(means, rows)]])
        xs = np.arange(len(ns)) + 0.06 * (j - (len(arms) - 1) / 2)  # one slot per N; small offsets keep arms apart
        ax.errorbar(xs, means, yerr=err, marker="o", capsize=3, label=arm, lw=1)
    ax.set_xticks(np.arange(len(ns)), [str(n) for n in ns])
    ax.set_xlim(-0.5, len(ns) - 0.5)
    ax.set_ylim(0, 1.02)  # intervals of few seeds can reach past [0, 1]: the axis shows what accuracy can be
    ax.set_xlabel("real windows per class (N)")
    ax.set_ylabel("accuracy on held-out real")
    ax.legend(fontsize=7)
    from mdcli.plotting import save_figure

    return [save_figure(fig, folder / "gain.png")]
