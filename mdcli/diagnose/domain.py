"""`diagnose domain --a A.h5 --b B.h5`: how far apart two spectrogram sets are (simulated against measured).

A two-sample classifier: the small CNN of `train-classifier` (fit_classifier) trained to tell A from B on a seeded,
balanced split of A and B (the same number of images from each; `test_share` of each held out). Its held-out
accuracy is the gap: 50 % = indistinguishable, 100 % = every image gives its origin away; with a binomial 95 %
(Wilson) interval. FMD: the Fréchet distance of A and B in the penultimate features of a judge (`--classifier`),
else in the two-sample net's own penultimate features on the held-out images (stated in `fmd_features`; the net
was trained to separate them, so that FMD exaggerates the gap; compare such values only with each other).
Per class when the two files share class names (accuracy on the held-out images of the class, FMD of the class).

What gives a set away, two ways (the same training / held-out images as the two-sample net):
- by scale (`scales`): the same net trained on the images block-averaged over s x s pixels (and repeated back to
  full size). If the accuracy falls towards 50 % at s = 2 or 4, the gap lives in fine texture (speckle, noise,
  compression, thin traces); if it stays at 100 % at s = 8, in the coarse layout (where the energy lies).
- by statistic: each interpretable per-image statistic (the kinematic ones of `simulate --like`, the intensity
  quantiles, the mean intensity in each eighth of the Doppler axis, the trend over the window) as a one-number classifier: the threshold
  that best separates the training images, its accuracy on the held-out ones; sorted, largest first. Then all of
  them together (a logistic regression, `stats.linear_probe_accuracy`): near the net's accuracy, the named statistics explain the gap; far below,
  the net sees something none of them measures.
- along time (`time_course`): each set's mean image along time, its slope and coherence (near 1 when every
  window starts at the same phase of the gait, about 1 / sqrt(N) when they start at any), and the gap between
  the two profiles: what no per-image statistic shows, since a window's phase only means something against the
  set's.
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
    scales: list[int] = field(default_factory=lambda: [1])  # block-average factors, each a two-sample net; 1 = as is
    bands: int = 8  # the statistics' Doppler bands (mean intensity in each of `bands` equal slices of the height)

    def validate(self) -> None:
        from mdcli.errors import ConfigError

        if self.steps < 1 or self.batch_size < 1 or self.max_per_side < 4:
            raise ConfigError("steps and batch_size must be >= 1, max_per_side >= 4")
        if not 0.05 <= self.test_share <= 0.8:
            raise ConfigError(f"test_share: between 0.05 and 0.8, got {self.test_share}")
        if not self.scales or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.scales) \
                or len(set(self.scales)) != len(self.scales):
            raise ConfigError(f"scales: distinct whole numbers >= 1 (block-average factors), got {self.scales}")
        if not 1 <= self.bands <= 64:
            raise ConfigError(f"bands: between 1 and 64, got {self.bands}")


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


def coarse(x: np.ndarray, s: int) -> np.ndarray:
    """Images (N, F, T) averaged over s x s blocks and repeated back to (N, F, T): only what is coarser than s
    pixels is left. F and T must be multiples of s."""
    if s == 1:
        return x
    n, h, w = x.shape
    m = x.reshape(n, h // s, s, w // s, s).mean((2, 4))
    return np.repeat(np.repeat(m, s, axis=1), s, axis=2).astype(x.dtype)


def check_scales(shape: tuple[int, int], scales: list[int]) -> None:
    h, w = shape
    bad = [s for s in scales if h % s or w % s]
    if bad:
        raise MdcliError(f"scales {bad}: each must divide the image size {h}x{w}")


def statistics_of(x: np.ndarray, bands: int) -> dict[str, np.ndarray]:
    """The per-image statistics of the by-statistic test (module docstring), each (N,)."""
    from mdcli.sim.like import image_statistics

    x = np.asarray(x, dtype=np.float32)
    stats = image_statistics(x)
    flat = x.reshape(len(x), -1)
    stats["intensity_mean"] = flat.mean(1)
    for q in (50, 90, 99):
        stats[f"intensity_p{q}"] = np.percentile(flat, q, axis=1)
    # the change over the window: ~0 for a walk whose geometry stays put, a slope for one that nears the radar or
    # leaves its beam
    stats["time_trend"] = quarter_trend(x.mean(1), 1e-6)
    edges = np.linspace(0, x.shape[1], bands + 1).round().astype(int)
    for i in range(bands):
        if edges[i + 1] > edges[i]:
            stats[f"band_{i + 1}of{bands}"] = x[:, edges[i]:edges[i + 1]].mean((1, 2))
    return stats


def quarter_trend(cols: np.ndarray, floor: float) -> np.ndarray:
    """Profiles along time (..., T): the mean over the last quarter minus the first, over the mean (at least floor)."""
    q = max(1, cols.shape[-1] // 4)
    return (cols[..., -q:].mean(-1) - cols[..., :q].mean(-1)) / np.maximum(cols.mean(-1), floor)


def time_course(x: np.ndarray) -> dict:
    """The set's mean image along time: `profile` (T,), its `slope` (last quarter against the first, relative to
    the mean) and `coherence`: the profile's sd over time over the mean of each image's own sd over time. About
    1 / sqrt(N) when the windows start at any phase of a periodic motion (their rhythms cancel), near 1 when every
    window starts at the same phase (a set cut at a gait event) or shares a trend."""
    cols = np.asarray(x, np.float32).mean(1).astype(np.float64)  # (N, T)
    prof = cols.mean(0)
    own = float(cols.std(1).mean())
    return {"profile": prof.tolist(), "slope": float(quarter_trend(prof, 1e-9)),
            "coherence": float(prof.std() / own) if own > 0 else float("nan")}


def _finite(parts: list[np.ndarray]) -> list[np.ndarray]:
    """The parts (float64) with NaN (e.g. no period) as its own value below every finite one, so a threshold can
    use it, and -inf / +inf just beyond the finite range on their side."""
    parts = [np.asarray(v, np.float64) for v in parts]
    fin = np.concatenate([v[np.isfinite(v)] for v in parts])
    lo, hi = (fin.min(), fin.max()) if len(fin) else (0.0, 0.0)
    span = hi - lo + 1.0
    return [np.nan_to_num(v, nan=lo - 2 * span, neginf=lo - span, posinf=hi + span) for v in parts]


def best_threshold(va: np.ndarray, vb: np.ndarray) -> tuple[float, bool]:
    """The cut t and side (True: B above t) that classify the most of va (A) and vb (B) correctly."""
    v = np.r_[va, vb].astype(np.float64)  # float64: a midpoint of float32 neighbours could round onto one of them
    y = np.r_[np.zeros(len(va)), np.ones(len(vb))]
    o = np.argsort(v, kind="stable")
    v, y = v[o], y[o]
    # a cut before position i: v[:i] called A, v[i:] called B (cuts only between distinct values)
    a_left = np.r_[0.0, np.cumsum(1 - y)]
    b_right = y.sum() - np.r_[0.0, np.cumsum(y)]
    up = a_left + b_right
    ok = np.r_[True, v[1:] != v[:-1], True]
    score = np.where(ok, np.maximum(up, len(v) - up), -1)
    i = int(np.argmax(score))
    t = float(v[0] - 1) if i == 0 else float(v[-1] + 1) if i == len(v) else float((v[i - 1] + v[i]) / 2)
    return t, bool(up[i] >= len(v) - up[i])


def statistic_gaps(xa_tr, xb_tr, xa_te, xb_te, bands: int = 8) -> tuple[list[dict], dict]:
    """The by-statistic test: one row per statistic (held-out accuracy of its best training threshold, medians of
    A and B on all the images, which side is larger), largest accuracy first; and all statistics together."""
    from mdcli.diagnose.stats import linear_probe_accuracy

    sa_tr, sb_tr, sa_te, sb_te = (statistics_of(x, bands) for x in (xa_tr, xb_tr, xa_te, xb_te))
    rows, cols_tr, cols_te = [], [], []
    n_te = len(xa_te) + len(xb_te)
    for name in sa_tr:
        a_tr, b_tr, a_te, b_te = _finite([sa_tr[name], sb_tr[name], sa_te[name], sb_te[name]])
        t, b_above = best_threshold(a_tr, b_tr)
        correct = int(((a_te > t) != b_above).sum() + ((b_te > t) == b_above).sum())
        with np.errstate(all="ignore"):
            va, vb = np.r_[sa_tr[name], sa_te[name]], np.r_[sb_tr[name], sb_te[name]]
            med = [float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan") for v in (va, vb)]
        rows.append({"statistic": name, "accuracy": correct / n_te, "median_a": med[0], "median_b": med[1],
                     "nan_share_a": float(np.isnan(va).mean()), "nan_share_b": float(np.isnan(vb).mean())})
        cols_tr.append(np.r_[a_tr, b_tr])
        cols_te.append(np.r_[a_te, b_te])
    rows.sort(key=lambda r: -r["accuracy"])
    y_tr = np.r_[np.zeros(len(xa_tr)), np.ones(len(xb_tr))].astype(np.int64)
    y_te = np.r_[np.zeros(len(xa_te)), np.ones(len(xb_te))].astype(np.int64)
    k = int(round(linear_probe_accuracy(np.stack(cols_tr, 1), y_tr, np.stack(cols_te, 1), y_te) * n_te))
    lo, hi = wilson(k, n_te)
    return rows, {"accuracy": k / n_te, "ci95_low": lo, "ci95_high": hi, "n_statistics": len(rows)}


def _time_courses(xa: np.ndarray, xb: np.ndarray) -> dict:
    from mdcli.sim.like import profile_gap

    ta, tb = time_course(xa), time_course(xb)
    return {"a": ta, "b": tb, "gap": profile_gap(ta["profile"], tb["profile"], 1e-9)}


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
    check_scales(a.spectrograms.shape[1:], cfg.scales)
    n = min(len(a), len(b), cfg.max_per_side)
    rng = np.random.default_rng(cfg.seed)
    a_tr, a_te = _split(len(a), n, cfg.test_share, rng)
    b_tr, b_te = _split(len(b), n, cfg.test_share, rng)
    to_t = lambda x: torch.from_numpy(np.asarray(x, np.float32)[:, None] * 2 - 1)  # noqa: E731
    img_tr = np.concatenate([a.spectrograms[a_tr], b.spectrograms[b_tr]])
    img_te = np.concatenate([a.spectrograms[a_te], b.spectrograms[b_te]])
    x_tr, x_te = to_t(img_tr), to_t(img_te)
    y_tr = torch.from_numpy(np.r_[np.zeros(len(a_tr)), np.ones(len(b_tr))].astype(np.int64))
    y_te = np.r_[np.zeros(len(a_te)), np.ones(len(b_te))].astype(np.int64)
    say(f"two-sample classifier: {len(x_tr)} training images ({len(a_tr)} per side), {cfg.steps} steps")
    from mdcli.models.classifier import ClassifierNetConfig

    fit = FitConfig(net=ClassifierNetConfig(channels=list(cfg.channels)), steps=cfg.steps, batch_size=cfg.batch_size)
    model = fit_classifier(x_tr, y_tr, 2, fit, cfg.seed)
    feats, pred = embed(model, x_te, cfg.batch_size)
    correct = pred == y_te
    k, m = int(correct.sum()), len(correct)
    lo, hi = wilson(k, m)
    by_scale = []
    for s in cfg.scales:
        if s == 1:
            ks = k
        else:
            say(f"two-sample classifier on {s}x{s} block means")
            _, p_s = embed(fit_classifier(to_t(coarse(img_tr, s)), y_tr, 2, fit, cfg.seed),
                           to_t(coarse(img_te, s)), cfg.batch_size)
            ks = int((p_s == y_te).sum())
        slo, shi = wilson(ks, m)
        by_scale.append({"factor": s, "two_sample_accuracy": ks / m, "ci95_low": slo, "ci95_high": shi})
    say("statistics, one at a time and together")
    stat_rows, stat_all = statistic_gaps(a.spectrograms[a_tr], b.spectrograms[b_tr], a.spectrograms[a_te],
                                         b.spectrograms[b_te], cfg.bands)
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
        "by_scale": by_scale, "statistics": stat_rows, "statistics_combined": stat_all,
        "time_course": _time_courses(a.spectrograms[np.r_[a_tr, a_te]], b.spectrograms[np.r_[b_tr, b_te]]),
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

    from mdcli.plotting import save_figure, show

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
    return [save_figure(fig, folder / "domain_examples.png")]
