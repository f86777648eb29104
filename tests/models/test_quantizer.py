"""Vector-quantiser properties: straight-through, EMA arithmetic, restarts, k-means, usage statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdcli.metrics import codebook_stats
from mdcli.models.quantizer import VectorQuantizer, VQConfig


def _vq(**kw) -> VectorQuantizer:
    torch.manual_seed(0)
    cfg = VQConfig(**({"codebook_size": 8, "kmeans_init": False, "dead_code_threshold": 0.0} | kw))
    return VectorQuantizer(4, cfg)


def test_straight_through_gradient_is_identity():
    vq = _vq()
    codes = vq.codebook().detach().clone()  # the lookup uses the codebook before this step's EMA update
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(z)
    w = torch.randn_like(out.z_q)
    (out.z_q * w).sum().backward()
    assert torch.allclose(z.grad, w)  # d z_q / d z = I
    assert torch.allclose(out.z_q.permute(0, 2, 3, 1).reshape(-1, 4), codes[out.indices.flatten()])


def test_beta_weights_the_commitment_term_not_the_codebook_term():
    vq = _vq(ema=False, beta=0.25)
    vq.eval()
    z = torch.randn(1, 4, 2, 2, requires_grad=True)
    out = vq(z)
    out.loss.backward()
    e = vq.codebook()[out.indices.flatten()].detach()
    ze = z.detach().permute(0, 2, 3, 1).reshape(-1, 4)
    n = ze.numel()
    # commitment beta ||z - sg(e)||^2 -> encoder gradient 2 beta (z - e) / n
    assert torch.allclose(z.grad.permute(0, 2, 3, 1).reshape(-1, 4), 2 * 0.25 * (ze - e) / n, atol=1e-6)
    # codebook ||sg(z) - e||^2 with weight 1 -> code gradient 2 (e - z) / n, summed per code
    expected = torch.zeros_like(vq.embed).index_add_(0, out.indices.flatten(), 2 * (e - ze) / n)
    assert torch.allclose(vq.embed.grad, expected, atol=1e-6)


def test_ema_update_matches_hand_computation():
    vq = _vq(ema=True, ema_decay=0.9)
    vq.train()
    embed0, avg0, size0 = vq.embed.clone(), vq.embed_avg.clone(), vq.cluster_size.clone()
    z = torch.randn(2, 4, 4, 4)
    out = vq(z)
    ze = z.permute(0, 2, 3, 1).reshape(-1, 4)
    idx = ((ze[:, None] - embed0[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(out.indices.flatten(), idx)
    counts = torch.bincount(idx, minlength=8).float()
    sums = torch.zeros(8, 4).index_add_(0, idx, ze)
    size = 0.9 * size0 + 0.1 * counts
    avg = 0.9 * avg0 + 0.1 * sums
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 8 * 1e-5) * n
    assert torch.allclose(vq.cluster_size, size)
    assert torch.allclose(vq.embed, avg / smoothed[:, None], atol=1e-6)


def test_dead_code_restart_revives_unused_codes():
    vq = _vq(ema=True, ema_decay=0.5, dead_code_threshold=0.5)
    vq.embed.data[1:] += 100.0  # only code 0 is ever chosen
    vq.embed_avg.copy_(vq.embed)
    vq.train()
    z = torch.randn(4, 4, 4, 4)
    for _ in range(3):
        out = vq(z)
    assert out.stats["restarted"] > 0 or (vq.cluster_size >= 0.5).all()
    used = set(vq(z).indices.unique().tolist())
    assert len(used) > 1  # restarted codes sit on data and get picked


def test_kmeans_init_places_codes_on_the_data():
    vq = _vq(kmeans_init=True, kmeans_iters=10)
    vq.train()
    centres = torch.tensor([[5.0, 0, 0, 0], [-5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, -5.0, 0, 0]])
    z = centres[torch.arange(64) % 4] + 0.01 * torch.randn(64, 4)
    z = z.T.reshape(1, 4, 8, 8)
    vq(z)
    assert bool(vq.initialised)
    dist = ((vq.embed[:, None] - centres[None]) ** 2).sum(-1).min(0).values
    assert (dist < 0.1).all()  # every data cluster has a code on it


@pytest.mark.parametrize("cosine,code_dim", [(True, 0), (False, 2)])
def test_cosine_and_low_dim_codes(cosine, code_dim):
    vq = _vq(cosine=cosine, code_dim=code_dim)
    z = torch.randn(2, 4, 3, 3)
    out = vq(z)
    assert out.z_q.shape == z.shape and out.indices.shape == (2, 3, 3)
    if cosine:
        assert torch.allclose(vq.codebook().norm(dim=1), torch.ones(8))
    else:
        assert vq.codebook().shape == (8, 2)


def test_codebook_stats():
    s = codebook_stats(np.array([10, 10, 0, 0]))
    assert s["codebook_usage"] == 0.5
    assert s["perplexity"] == pytest.approx(2.0)
    assert s["perplexity_ratio"] == pytest.approx(0.5)
    assert codebook_stats(np.array([5, 0, 0, 0]))["perplexity"] == pytest.approx(1.0)


def test_nearest_code_is_exact_under_bf16_autocast():
    """train.precision=bf16 runs the encoder under autocast; the code lookup must still be the
    fp32 argmin (a bf16 z.c term moves vectors whose two nearest codes are close)."""
    torch.manual_seed(1)
    vq = _vq(codebook_size=256)
    z = 5 * torch.randn(8, 4, 8, 8)
    ze, codes = vq._flat(z).float(), vq.codebook().float()
    exact = torch.cdist(ze.double(), codes.double()).argmin(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = vq(z).indices.flatten()
        bare = (ze.pow(2).sum(1, keepdim=True) - 2 * ze @ codes.t() + codes.pow(2).sum(1)[None]).argmin(1)
    assert torch.equal(got, exact)
    assert not torch.equal(bare, exact)  # the same expression left to autocast does move codes
