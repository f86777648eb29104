"""Kinematic fidelity in `diagnose recon`, `diagnose generation` and `report`: reconstructions compared image by
image, generated sets compared as distributions, and their tables. The features are mdcli/kinematics.py's."""

from __future__ import annotations

import warnings

import numpy as np

from mdcli.kinematics import SCALAR_FEATURES, Kinematics

MIN_SPREAD_N = 8  # values a side needs for its interquartile range to mean something (the spread ratio)


# ---------------------------------------------------------------------------------------------------------
# comparisons: reconstruction (pairwise) and generation (distributions)


def envelope_error(a: Kinematics, b: Kinematics) -> np.ndarray:
    """Per image, the mean absolute difference (Doppler bins) of the upper and lower envelopes of b against
    a, over the columns where both have one. A column where exactly one of the two has an envelope counts
    as the distance of the other's envelope from its own torso line (a vanished or invented limb trace).
    NaN where neither has any."""
    errs = []
    for ea, eb in ((a.upper_bins, b.upper_bins), (a.lower_bins, b.lower_bins)):
        both = np.isfinite(ea) & np.isfinite(eb)
        d = np.where(both, np.abs(ea - eb), np.nan)
        only_a = np.isfinite(ea) & ~np.isfinite(eb)
        only_b = np.isfinite(eb) & ~np.isfinite(ea)
        d = np.where(only_a, np.abs(ea - a.torso_bins), d)
        d = np.where(only_b, np.abs(eb - b.torso_bins), d)
        errs.append(d)
    d = np.concatenate(errs, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(d, axis=1)


def recon_kinematics(real: Kinematics, rec: Kinematics, labels: np.ndarray, names: list[str]) -> dict:
    """How well reconstructions keep the kinematics, overall and per class:
    envelope_error_bins (mean over images of `envelope_error`), period_error (mean relative error
    |P_rec - P_real| / P_real over images where both have a period; null when none), period_agreement
    (share of images where both or neither have a period), and the shares with a period."""

    def summary(m: np.ndarray) -> dict:
        ee = envelope_error(_select(real, m), _select(rec, m))
        both = real.has_period[m] & rec.has_period[m]
        rel = np.abs(rec.period[m][both] - real.period[m][both]) / real.period[m][both]
        return {
            "n": int(m.sum()),
            "envelope_error_bins": _mean(ee),
            "period_error": _mean(rel),
            "period_agreement": float(np.mean(real.has_period[m] == rec.has_period[m])) if m.any() else None,
            "period_share_real": float(np.mean(real.has_period[m])) if m.any() else None,
            "period_share_recon": float(np.mean(rec.has_period[m])) if m.any() else None,
        }

    out = {"units": real.units, "overall": summary(np.ones(len(labels), bool)), "per_class": {}}
    for c, name in enumerate(names):
        m = np.asarray(labels) == c
        if m.any():
            out["per_class"][name] = summary(m)
    return out


def _select(k: Kinematics, m: np.ndarray) -> Kinematics:
    return Kinematics(**{f: (v[m] if isinstance(v, np.ndarray) else v) for f, v in vars(k).items()})


def _mean(v: np.ndarray) -> float | None:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None


def _median(v: np.ndarray) -> float | None:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else None


def _iqr(v: np.ndarray) -> float | None:
    """Interquartile range of finite values `v`; None with fewer than MIN_SPREAD_N of them."""
    return float(np.subtract(*np.percentile(v, [75, 25]))) if len(v) >= MIN_SPREAD_N else None


def median_interval(v: np.ndarray, seed: int = 0, draws: int = 1000) -> list[float] | None:
    """95 % bootstrap interval [2.5th, 97.5th percentile] of the median of finite values `v` (`draws` resamples,
    seeded); None with fewer than MIN_SPREAD_N values. The sampling noise of a generated set's median: one model
    sampled again moves it as much as most changes to the model do (docs/findings.md)."""
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if len(v) < MIN_SPREAD_N:
        return None
    meds = np.median(np.random.default_rng(seed).choice(v, (draws, len(v))), axis=1)
    return [float(x) for x in np.percentile(meds, [2.5, 97.5])]


def share_interval(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """Wilson 95 % interval of a share k / n (None for n = 0): the noise of a share with a period."""
    if n == 0:
        return None
    p, shrink = k / n, 1 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / shrink
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def compare_distributions(real: np.ndarray, gen: np.ndarray) -> dict:
    """One feature, real vs generated: medians, the 1-D Wasserstein distance (the feature's units), the
    share of generated values inside the real [min, max], and the spread ratio (interquartile range of the
    generated values over the real one's: near 1 when the generator covers the real spread, well below 1 when
    it draws only typical values, which the share inside the range cannot show); over finite values (None where
    a side has none, the spread ratio also where a side has fewer than MIN_SPREAD_N values or the real spread is 0:
    a few helicopters with a period give a ratio of 30 from noise)."""
    from scipy.stats import wasserstein_distance

    r, g = np.asarray(real, float), np.asarray(gen, float)
    r, g = r[np.isfinite(r)], g[np.isfinite(g)]
    both = len(r) > 0 and len(g) > 0
    iqr_r, iqr_g = _iqr(r), _iqr(g)
    spread = iqr_g / iqr_r if iqr_r and iqr_g is not None else None
    return {
        "median_real": _median(r), "median_generated": _median(g),
        "wasserstein": float(wasserstein_distance(r, g)) if both else None,
        "inside_real_range": float(np.mean((g >= r.min()) & (g <= r.max()))) if both else None,
        "spread_ratio": spread,
        "n_real": int(len(r)), "n_generated": int(len(g)),
    }


def generation_kinematics(real: Kinematics, y_real: np.ndarray, gen: Kinematics, y_gen: np.ndarray,
                          names: list[str], train: Kinematics | None = None, y_train: np.ndarray | None = None,
                          seed: int = 0) -> dict:
    """Per class and feature, the generated distribution against the real one (`compare_distributions`, and
    the generated median's bootstrap interval `median_generated_ci`, seeded by `seed`), and the share of images
    with a period on each side (the generated share with its Wilson interval, `generated_ci`). With the generator's training data (`train`), each
    feature also gets "train": the training part compared with the real one the same way (median, W1, inside
    the real range, spread ratio), and the period share its "train" value: what a generator that drew exactly
    its training data would score, the reference a generated figure is read against (a held-out part differs
    from the training part by chance, and by design in a blocked split)."""
    out: dict = {"units": real.units, "per_class": {}}
    for c, name in enumerate(names):
        mr, mg = np.asarray(y_real) == c, np.asarray(y_gen) == c
        if not (mr.any() and mg.any()):
            continue
        cls = {f: {**compare_distributions(getattr(real, f)[mr], getattr(gen, f)[mg]),
                   "median_generated_ci": median_interval(getattr(gen, f)[mg], seed)} for f in SCALAR_FEATURES}
        cls["period_share"] = {"real": float(real.has_period[mr].mean()), "generated": float(gen.has_period[mg].mean()),
                               "generated_ci": share_interval(int(gen.has_period[mg].sum()), int(mg.sum()))}
        if train is not None and (mt := np.asarray(y_train) == c).any():
            for f in SCALAR_FEATURES:
                ref = compare_distributions(getattr(real, f)[mr], getattr(train, f)[mt])
                cls[f]["train"] = {"median": ref["median_generated"], "n": ref["n_generated"],
                                   **{k: ref[k] for k in ("wasserstein", "inside_real_range", "spread_ratio")}}
            cls["period_share"]["train"] = float(train.has_period[mt].mean())
        out["per_class"][name] = cls
    return out


# ---------------------------------------------------------------------------------------------------------
# tables


def _fmt(v, spec: str = ".3g") -> str:
    return "–" if v is None or (isinstance(v, float) and v != v) else format(v, spec)


RECON_COLUMNS = (("envelope_error_bins", "envelope error (bins)", ".3g"), ("period_error", "period error (rel.)", ".1%"),
                 ("period_agreement", "period agreement", ".2f"), ("period_share_real", "with period, real", ".2f"),
                 ("period_share_recon", "with period, recon", ".2f"))


def recon_rows(k: dict) -> list[tuple[str, list[str]]]:
    """(row name, cells) of the reconstruction kinematics table: overall, then per class."""
    rows = [("overall", [_fmt(k["overall"][c], s) for c, _, s in RECON_COLUMNS])]
    rows += [(name, [_fmt(v[c], s) for c, _, s in RECON_COLUMNS]) for name, v in k["per_class"].items()]
    return rows


def _with_ci(v, ci, spec: str = ".3g") -> str:
    """A value and its 95 % interval, "0.532 [0.51, 0.56]"; the value alone without one."""
    return _fmt(v, spec) + ("" if v is None or not ci else f" [{_fmt(ci[0], spec)}, {_fmt(ci[1], spec)}]")


def generation_rows(k: dict) -> list[list[str]]:
    """Rows (class, feature, unit, median real, median generated, median train, W1, inside real range, spread
    ratio, the training part's spread ratio) of the generation kinematics table, and a `period` row with the
    shares of images that have one; "–" where the report has no training reference."""
    units = k["units"]
    out = []
    for name, cls in k["per_class"].items():
        for f in SCALAR_FEATURES:
            v = cls[f]
            t = v.get("train") or {}
            out.append([name, f, units.get(f, ""), _fmt(v["median_real"]), _with_ci(v["median_generated"], v.get("median_generated_ci")),
                        _fmt(t.get("median")),
                        _fmt(v["wasserstein"]), _fmt(v["inside_real_range"], ".2f"), _fmt(v.get("spread_ratio"), ".2f"),
                        _fmt(t.get("spread_ratio"), ".2f")])
        ps = cls["period_share"]
        out.append([name, "has period (share)", "", _fmt(ps["real"], ".2f"), _with_ci(ps["generated"], ps.get("generated_ci"), ".2f"),
                    _fmt(ps.get("train"), ".2f"), "–", "–", "–", "–"])
    return out


GENERATION_HEADER = ("class", "feature", "unit", "median real", "median generated", "median train", "W1",
                     "inside real range", "spread ratio", "spread ratio, train")


def print_recon_table(console, k: dict, title: str) -> None:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("")
    for _, label, _ in RECON_COLUMNS:
        t.add_column(label, justify="right")
    for i, (name, cells) in enumerate(recon_rows(k)):
        t.add_row(name, *cells, style="bold" if i == 0 else None)
    console.print(t)


def print_generation_table(console, k: dict, title: str) -> None:
    from rich.table import Table

    t = Table(title=title)
    for h in GENERATION_HEADER:
        t.add_column(h, justify="left" if h in ("class", "feature", "unit") else "right")
    for row in generation_rows(k):
        t.add_row(*row)
    console.print(t)


def report_lines(recon: dict | None, gen: dict | None) -> list[str]:
    """The REPORT.md section: reconstruction kinematics (from recon.json) and generated-vs-real feature
    distributions (from generation.json); nothing when neither has them."""
    rk = (recon or {}).get("kinematics")
    gk = (gen or {}).get("kinematics")
    if not rk and not gk:
        return []
    lines = ["## Kinematic fidelity (docs/DIAGNOSE.md, Kinematic features)", "",
             "Torso line, limb envelopes 20 dB above the noise floor, their period (a walker's is one step, half the "
             "gait cycle) and strength: what FMD and PSNR do not see.", ""]
    if rk:
        lines += ["Reconstructions of the test images:", "",
                  "| class | " + " | ".join(label for _, label, _ in RECON_COLUMNS) + " |",
                  "|---" * (len(RECON_COLUMNS) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in recon_rows(rk)]
        lines.append("")
    if gk:
        lines += [f"Generated against held-out real (Doppler in {gk['units']['doppler']}, periods in {gk['units']['time']}; "
                  "W1: 1-D Wasserstein distance in the feature's unit; inside: share of generated values within the real "
                  "[min, max]; spread ratio: interquartile range generated / real, below 1 where the generator draws "
                  "only typical values; [a, b]: the generated value's 95 % interval from its own sampling; train: "
                  "the generator's training part read the same way, what a generator that drew exactly its training "
                  "data would score):", "",
                  "| " + " | ".join(GENERATION_HEADER) + " |", "|---" * len(GENERATION_HEADER) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in generation_rows(gk)]
        lines.append("")
    return lines
