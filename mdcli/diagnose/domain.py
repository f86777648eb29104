"""`diagnose domain --a A.h5 --b B.h5`: how far apart two spectrogram sets are (simulated against measured).

A two-sample classifier: the small CNN of `train-classifier` (fit_classifier) trained to tell A from B on a seeded,
balanced split of A and B (the same number of images from each; `test_share` of each held out). Its held-out
accuracy is the gap: 50 % = indistinguishable, 100 % = every image gives its origin away; with a binomial 95 %
(Wilson) interval. FMD: the Fréchet distance of A and B in the penultimate features of a judge (`--classifier`),
else in the two-sample net's own penultimate features on the held-out images (stated in `fmd_features`; the net
was trained to separate them, so that FMD exaggerates the gap; compare such values only with each other).
Per class when the two files share class names (accuracy on the held-out images of the class, FMD of the class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mdcli.errors import MdcliError


@dataclass
class DomainConfig:
    seed: int = 0
    steps: int = 200  # two-sample classifier training steps
    channels: list[int] = field(default_factory=lambda: [8, 16, 32])  # the small CNN's widths (fit_classifier's net)
    test_share: float = 0.3  # of each side, held out
    max_per_side: int = 2000  # balanced subsets of at most this many images per side
    batch_size: int = 32

    def validate(self) -> None:
        from mdcli.errors import ConfigError

        if self.steps < 1 or self.batch_size < 1 or self.max_per_side < 4:
            raise ConfigError("steps and batch_size must be >= 1, max_per_side >= 4")
        if not 0.05 <= self.test_share <= 0.8:
            raise ConfigError(f"test_share: between 0.05 and 0.8, got {self.test_share}")


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson 95 % interval of a binomial proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def check_pair(a, b, a_path: Path, b_path: Path) -> None:
    if a.spectrograms.shape[1:] != b.spectrograms.shape[1:]:
        sa, sb = ("x".join(map(str, d.spectrograms.shape[1:])) for d in (a, b))
        raise MdcliError(f"--a {a_path} is {sa}, --b {b_path} is {sb}: images must have the same size "
                         "(simulate --like B, or import with --image-size)")
    for d, p, opt in ((a, a_path, "--a"), (b, b_path, "--b")):
        if len(d) < 8:
            raise MdcliError(f"{opt} {p}: {len(d)} images; the two-sample test needs at least 8 per side")


def _split(n_total: int, n: int, test_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pick = rng.permutation(n_total)[:n]
    n_test = max(2, int(round(n * test_share)))
    return np.sort(pick[n_test:]), np.sort(pick[:n_test])


def domain_report(a_path: Path, b_path: Path, judge_path: Path | None, cfg: DomainConfig, say=lambda s: None) -> dict:
    import torch

    from mdcli.artifacts import Spectrograms
    from mdcli.diagnose.generation import embed
    from mdcli.diagnose.stats import feature_frechet
    from mdcli.models.load import load_classifier
    from mdcli.train.classifier import FitConfig, fit_classifier

    a, b = Spectrograms.load(a_path), Spectrograms.load(b_path)
    check_pair(a, b, a_path, b_path)
    n = min(len(a), len(b), cfg.max_per_side)
    rng = np.random.default_rng(cfg.seed)
    a_tr, a_te = _split(len(a), n, cfg.test_share, rng)
    b_tr, b_te = _split(len(b), n, cfg.test_share, rng)
    to_t = lambda x: torch.from_numpy(np.asarray(x, np.float32)[:, None] * 2 - 1)  # noqa: E731
    x_tr = to_t(np.concatenate([a.spectrograms[a_tr], b.spectrograms[b_tr]]))
    y_tr = torch.from_numpy(np.r_[np.zeros(len(a_tr)), np.ones(len(b_tr))].astype(np.int64))
    x_te = to_t(np.concatenate([a.spectrograms[a_te], b.spectrograms[b_te]]))
    y_te = np.r_[np.zeros(len(a_te)), np.ones(len(b_te))].astype(np.int64)
    say(f"two-sample classifier: {len(x_tr)} training images ({len(a_tr)} per side), {cfg.steps} steps")
    from mdcli.models.classifier import ClassifierNetConfig

    fit = FitConfig(net=ClassifierNetConfig(channels=list(cfg.channels)), steps=cfg.steps, batch_size=cfg.batch_size)
    model = fit_classifier(x_tr, y_tr, 2, fit, cfg.seed)
    feats, pred = embed(model, x_te, cfg.batch_size)
    correct = pred == y_te
    k, m = int(correct.sum()), len(correct)
    lo, hi = wilson(k, m)
    if judge_path is not None:
        judge, _ = load_classifier(judge_path)
        fa, _ = embed(judge, to_t(a.spectrograms[np.r_[a_tr, a_te]]), cfg.batch_size)
        fb, _ = embed(judge, to_t(b.spectrograms[np.r_[b_tr, b_te]]), cfg.batch_size)
        fmd_what = f"judge {judge_path} (penultimate), all {n} images per side"
        a_idx, b_idx = np.r_[a_tr, a_te], np.r_[b_tr, b_te]
    else:
        fa, fb = feats[: len(a_te)], feats[len(a_te):]
        fmd_what = "the two-sample net's own penultimate features, held-out images (trained to separate: exaggerates)"
        a_idx, b_idx = a_te, b_te
    report = {
        "a": str(a_path), "b": str(b_path), "n_per_side": n, "n_test": m, "steps": cfg.steps, "seed": cfg.seed,
        "overall": {"two_sample_accuracy": k / m, "ci95_low": lo, "ci95_high": hi,
                    "fmd": feature_frechet(fa, fb) if min(len(fa), len(fb)) > 2 else float("nan")},
        "fmd_features": fmd_what, "per_class": {},
        "classes_a": list(a.class_names), "classes_b": list(b.class_names),
    }
    shared = [c for c in a.class_names if c in b.class_names]
    la, lb = a.labels[a_idx], b.labels[b_idx]
    ta, tb = a.labels[a_te], b.labels[b_te]
    for c in shared:
        ca, cb = a.class_names.index(c), b.class_names.index(c)
        sel = np.r_[ta == ca, tb == cb]
        if sel.sum() == 0:
            continue
        kc, mc = int(correct[sel].sum()), int(sel.sum())
        fca, fcb = fa[la == ca], fb[lb == cb]
        clo, chi = wilson(kc, mc)
        report["per_class"][c] = {"two_sample_accuracy": kc / mc, "ci95_low": clo, "ci95_high": chi, "n_test": mc,
                                  "fmd": feature_frechet(fca, fcb) if min(len(fca), len(fcb)) > 2 else float("nan")}
    report["_examples"] = (a.select(a_te[:8]), b.select(b_te[:8]))
    return report


def plot_domain(report: dict, folder: Path, per_side: int = 6) -> list[Path]:
    """Examples of A and B side by side (rows: A, B), on the shared [0, 1] colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdcli.plotting import show

    a, b = report["_examples"]
    cols = min(per_side, len(a), len(b))
    fig, axs = plt.subplots(2, cols, figsize=(2.2 * cols, 4.6), squeeze=False, constrained_layout=True)
    for row, (d, name) in enumerate(((a, report["a"]), (b, report["b"]))):
        for col in range(cols):
            ax = axs[row, col]
            show(ax, d.spectrograms[col], d)
            ax.set_title(f"{'AB'[row]}: {d.class_names[d.labels[col]]}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axs[row, 0].set_ylabel(Path(name).name, fontsize=8)
    o = report["overall"]
    fig.suptitle(f"two-sample accuracy {o['two_sample_accuracy']:.1%} (95 % CI {o['ci95_low']:.1%}-{o['ci95_high']:.1%}), "
                 f"FMD {o['fmd']:.3g}", fontsize=9)
    path = folder / "domain_examples.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
