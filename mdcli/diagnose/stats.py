"""Estimators behind `diagnose`: distribution distances, k-NN manifolds, information and spectra.

Plain numpy/scipy/torch on feature arrays; every formula here has a hand-checkable test.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.linalg
import torch


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of a histogram."""
    p = np.asarray(counts, np.float64).ravel()
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def seed_spread(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1) of one number measured under several seeds: the spread
    a further seed is expected to show. The population std (ddof = 0) understates it, by sqrt(2) at two seeds
    (it is then half the range). One value has no spread: None."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def fmt_spread(values, mean_fmt: str = ".3g", sd_fmt: str = ".2g") -> str:
    """`mean ± sd` over seeds, or the bare value for one seed."""
    m, sd = seed_spread(values)
    return f"{m:{mean_fmt}}" if sd is None else f"{m:{mean_fmt}} ± {sd:{sd_fmt}}"


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2): the Fréchet distance of two Gaussians."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    root1 = scipy.linalg.sqrtm(cov1)
    if np.iscomplexobj(root1):
        root1 = root1.real
    # tr sqrt(C1 C2) from the eigenvalues of the symmetric C1^1/2 C2 C1^1/2 (stable, real).
    eig = np.linalg.eigvalsh((root1 @ cov2 @ root1 + (root1 @ cov2 @ root1).T) / 2)
    tr_cross = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * tr_cross)


def feature_frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D)."""
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def kid(f1: np.ndarray, f2: np.ndarray, n_subsets: int = 20, subset_size: int = 100, seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance (unbiased MMD^2, kernel (x.y/d + 1)^3) -> (mean, std over subsets)."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(f1), len(f2))
    d = f1.shape[1]
    vals = []
    for _ in range(n_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)].astype(np.float64)
        y = f2[rng.choice(len(f2), m, replace=False)].astype(np.float64)
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        off = ~np.eye(m, dtype=bool)
        vals.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def _pdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point to its k-th nearest neighbour within the set (itself excluded)."""
    d = _pdist(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict:
    """Precision, recall, density, coverage (Naeem et al. 2020) with k-NN balls."""
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = _pdist(real, fake)  # (R, F)
    inside = d <= r_real[:, None]  # fake j inside the ball of real i
    return {
        "precision": float(inside.any(0).mean()),
        "recall": float((d <= r_fake[None, :]).any(1).mean()),
        "density": float(inside.sum() / (k * fake.shape[0])),
        "coverage": float((d.min(1) <= r_real).mean()),
    }


def nearest_distances(query: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    d = _pdist(query, ref)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(1)


def active_units(means: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Burda et al.: a latent dimension is active when Cov_x(E[z|x]) > threshold. means (N, D) -> bool (D,)."""
    return np.var(np.asarray(means, np.float64), axis=0) > threshold


def gaussian_mutual_information(mu: torch.Tensor, logvar: torch.Tensor, seed: int = 0, chunk: int = 64) -> float:
    """I(x; z) = E_x E_{z~q(z|x)} [log q(z|x) - log q(z)], q(z) the aggregate posterior over the N inputs.

    Monte-Carlo with one z per input; bounded above by log N (each input's posterior disjoint from
    the others: isolated points) and ~0 when every posterior is the same.
    """
    mu, logvar = mu.flatten(1).double(), logvar.flatten(1).double()
    n = len(mu)
    gen = torch.Generator().manual_seed(seed)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    inv_var = torch.exp(-logvar)
    log_norm = -0.5 * logvar.sum(1)  # the 2 pi terms cancel between the two log densities
    total = 0.0
    for i in range(0, n, chunk):
        zi = z[i : i + chunk]
        # log q(z_i | x_j) for all j: (b, N)
        quad = ((zi[:, None, :] - mu[None]) ** 2 * inv_var[None]).sum(-1)
        logq = log_norm[None] - 0.5 * quad
        own = logq[torch.arange(len(zi)), torch.arange(i, i + len(zi))]
        total += float((own - (torch.logsumexp(logq, 1) - np.log(n))).sum())
    return total / n


def neighbour_code_mi(indices: np.ndarray, codebook_size: int, seed: int = 0) -> dict:
    """Mutual information between horizontally and vertically neighbouring codes, pooled over positions.

    Returns raw MI, a shuffled-position baseline (the finite-sample bias), and
    (MI - baseline) / H(code): structure in the code maps, ~0 for unstructured pointers.
    """
    idx = np.asarray(indices, np.int64)
    a = np.concatenate([idx[:, :, :-1].ravel(), idx[:, :-1, :].ravel()])
    b = np.concatenate([idx[:, :, 1:].ravel(), idx[:, 1:, :].ravel()])

    def mi(a: np.ndarray, b: np.ndarray) -> float:
        joint = np.bincount(a * codebook_size + b, minlength=codebook_size**2).astype(np.float64)
        return entropy(np.bincount(a, minlength=codebook_size)) + entropy(np.bincount(b, minlength=codebook_size)) - entropy(joint)

    raw = mi(a, b)
    base = mi(a, np.random.default_rng(seed).permutation(b))
    h = entropy(np.bincount(idx.ravel(), minlength=codebook_size))
    return {"neighbour_mi": raw, "neighbour_mi_baseline": base, "code_entropy": h,
            "neighbour_mi_ratio": (raw - base) / h if h > 0 else 0.0}


def radial_dct_power(x: np.ndarray, bins: int = 8) -> np.ndarray:
    """Mean 2-D DCT power per normalised radial frequency band (DC excluded). x (N, C, h, w) -> (bins,) shares."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(axis=(0, 2, 3), keepdims=True)
    power = (scipy.fft.dctn(x, axes=(-2, -1), norm="ortho") ** 2).mean(axis=(0, 1))
    h, w = power.shape
    r = np.sqrt((np.arange(h)[:, None] / h) ** 2 + (np.arange(w)[None, :] / w) ** 2) / np.sqrt(2)
    band = np.minimum((r * bins).astype(int), bins - 1)
    power[0, 0] = 0.0
    prof = np.bincount(band.ravel(), weights=power.ravel(), minlength=bins)
    return prof / max(prof.sum(), 1e-300)


def high_frequency_share(profile: np.ndarray) -> float:
    """Share of (non-DC) power in the upper half of the normalised radial frequency range."""
    return float(profile[len(profile) // 2 :].sum())


def knn_accuracy(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray, k: int = 5) -> float:
    d = _pdist(test_f, train_f)
    nn = np.argsort(d, axis=1)[:, :k]
    votes = train_y[nn]
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    pred = np.array([np.bincount(v, minlength=n_classes).argmax() for v in votes])
    return float((pred == test_y).mean())


def linear_probe_accuracy(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray,
                          steps: int = 300, weight_decay: float = 1e-3, seed: int = 0) -> float:
    """Multinomial logistic regression on standardised features (full-batch L-BFGS)."""
    torch.manual_seed(seed)
    mean, std = train_f.mean(0), train_f.std(0) + 1e-6
    xt = torch.from_numpy((train_f - mean) / std).float()
    xv = torch.from_numpy((test_f - mean) / std).float()
    yt = torch.from_numpy(train_y).long()
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    lin = torch.nn.Linear(xt.shape[1], n_classes)
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), yt) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(xv).argmax(1).numpy() == test_y).mean())
