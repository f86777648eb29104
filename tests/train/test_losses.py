from __future__ import annotations

import pytest
import torch

from mdcli.errors import MdcliError
from mdcli.losses import (LPIPS_TRUNK_FILES, adaptive_weight, build_lpips, envelope, envelope_occupancy, gan_d_loss, profile,
                          gan_g_loss, reconstruction, temporal_spectrum)
from mdcli.metrics import psnr, ssim


def test_adaptive_weight_formula_and_output_gradients():
    torch.manual_seed(0)
    w = torch.randn(3, 3, requires_grad=True)  # the "last layer"
    x = torch.randn(4, 3)
    out = torch.tanh(x @ w)  # the "decoder output"
    rec = (out - 0.3).abs().mean() + out.pow(2).sum()
    g = (out.sum(0) * 3.0).sum()
    lam, g_rec_out, g_g_out = adaptive_weight(rec, g, out, w)
    g_rec = torch.autograd.grad(rec, w, retain_graph=True)[0]
    g_g = torch.autograd.grad(g, w, retain_graph=True)[0]
    assert lam == pytest.approx(float(g_rec.norm() / (g_g.norm() + 1e-4)), rel=1e-5)
    # backpropagating from the output with the returned gradients is the backward of rec + lam g
    expected = torch.autograd.grad(rec + lam * g, w, retain_graph=True)[0]
    got = torch.autograd.grad(out, w, grad_outputs=g_rec_out + lam * g_g_out, retain_graph=True)[0]
    assert torch.allclose(got, expected, atol=1e-6)
    tiny = (out * 1e-12).sum()
    assert adaptive_weight(rec, tiny, out, w, max_weight=10.0)[0] == 10.0  # clamped


def test_temporal_spectrum_sees_a_lost_period_that_l1_prefers():
    """Flashes every 8 columns in a few Doppler rows (a wing beat): smoothed along time into a steady band they
    cost the temporal-spectrum term more than the same flashes moved by 3 columns, while L1 ranks the two the
    other way round (it rewards averaging an uncertain timing); an exact copy costs 0."""
    x = torch.full((2, 1, 16, 64), -0.8)
    cols = torch.arange(64)
    x[:, :, 5:9] += 1.2 * ((cols % 8) < 2).float()
    smooth = x.clone()
    smooth[:, :, 5:9] = x[:, :, 5:9].mean(-1, keepdim=True)
    moved = torch.roll(x, 3, dims=-1)
    assert torch.equal(temporal_spectrum(x, x), torch.zeros(2))
    assert (temporal_spectrum(smooth, x) > 3 * temporal_spectrum(moved, x)).all()
    assert (reconstruction(smooth, x) < reconstruction(moved, x)).all()


def test_envelope_term_sees_flashes_under_the_level_that_l1_does_not():
    """One-column flashes every 6 columns over a noise floor (a wing beat at the demo's resolution): blurred along
    time they fall under the envelope level and cost the envelope term more than a perturbation of larger L1 that
    stays under the level (L1 ranks the two the other way round); an exact copy costs 0; a circular time shift
    costs almost only the per-column part (the spectrum part is blind to the phase up to the window's edges); the
    occupancy counts bins."""
    from scipy.ndimage import gaussian_filter1d

    g = torch.Generator().manual_seed(0)
    x01 = 0.1 + 0.05 * torch.rand(2, 1, 32, 60, generator=g)
    x01[:, :, 14:18] += 0.4  # the body's line
    x01[:, :, 8:24, ::6] = 0.9  # the flashes: 16 bins wide, one column each
    x = x01 * 2 - 1
    blurred = torch.from_numpy(gaussian_filter1d(x.numpy(), 1.0, axis=-1))
    quiet = x + 0.2 * (x01 < 0.3).float()  # a larger change, but every pixel stays under the level
    assert torch.equal(envelope(x, x), torch.zeros(2))
    assert (envelope(blurred, x) > 4 * envelope(quiet, x)).all()
    assert (reconstruction(blurred, x) < reconstruction(quiet, x)).all()
    moved = torch.roll(x, 2, dims=-1)
    lv = x01.flatten(1).median(1).values.view(-1, 1, 1, 1) + 0.4
    per_column = (envelope_occupancy((moved + 1) / 2, lv) - envelope_occupancy(x01, lv)).abs().mean(1)
    spectrum_part = envelope(moved, x) - per_column  # the windowed spectrum: nearly blind to a shift, not exactly
    assert (per_column > 1).all() and (spectrum_part.abs() < 0.02 * per_column).all()
    occ = envelope_occupancy(x01, lv)
    assert occ[:, ::6].min() > 15 and occ[:, 1::6].max() < 5  # the flash columns: 16 bins; between: the line


def test_profile_term_is_the_gain_references_features_and_blind_to_when():
    """The profile term is the mean absolute difference of each group of `diagnose gain`'s reference features (row
    means, row spreads, band spectra): 0 for a copy and for a circular shift along time (it asks where along
    Doppler and how much, not when), > 0 for the same image two rows higher along Doppler."""
    import numpy as np

    from mdcli.diagnose.gain import profile_features

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 1, 32, 40, generator=g) * 2 - 1, torch.rand(3, 1, 32, 40, generator=g) * 2 - 1
    fx, fy = (profile_features(((v[:, 0].double() + 1) / 2).numpy()) for v in (x, y))
    groups = (slice(0, 32), slice(32, 64), slice(64, None))
    expected = sum(np.abs(fx[:, k] - fy[:, k]).mean(1) for k in groups)
    np.testing.assert_allclose(profile(x, y).numpy(), expected, rtol=1e-4)
    assert torch.equal(profile(x, x), torch.zeros(3))
    moved = torch.roll(x, 7, dims=-1)
    assert (profile(moved, x) < 1e-5).all() and (reconstruction(moved, x) > 0.3).all()
    assert (profile(torch.roll(x, 2, dims=-2), x) > 0.05).all()


def test_gan_losses():
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0)
    assert gan_d_loss(real, fake, "hinge") == 0.0  # confident and right: no hinge loss
    assert gan_d_loss(fake, real, "hinge") == pytest.approx(3.0)
    assert gan_g_loss(fake, "hinge") == pytest.approx(2.0)
    assert gan_g_loss(fake, "non-saturating") == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(2.0))))


def test_lpips_with_random_trunk_runs_on_single_channel():
    p = build_lpips("alex", pnet_rand=True)
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    d_same, d_diff = p(x, x), p(x, x.flip(-1))
    assert d_same.shape == (2,) and torch.allclose(d_same, torch.zeros(2), atol=1e-6)
    assert (d_diff > 0).all()


def test_lpips_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MdcliError, match=r"vgg16-397923af\.pth.*--perceptual-weights"):
        build_lpips("vgg")


def test_lpips_loads_trunk_from_a_given_file(tmp_path):
    import torchvision

    torch.manual_seed(3)
    alex = torchvision.models.alexnet()
    path = tmp_path / LPIPS_TRUNK_FILES["alex"]
    torch.save({k: v for k, v in alex.state_dict().items() if k.startswith("features.")}, path)
    p = build_lpips("alex", weights=path)
    assert torch.equal(getattr(p.model.net.slice1, "0").weight, alex.features[0].weight)
    assert torch.equal(getattr(p.model.net.slice5, "10").bias, alex.features[10].bias)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(MdcliError, match="bad.pth"):
        build_lpips("alex", weights=bad)


def test_psnr_and_ssim_known_values():
    x = torch.zeros(1, 1, 16, 16)
    y = torch.full_like(x, 0.1)
    assert psnr(x, y).item() == pytest.approx(20.0, rel=1e-4)
    img = torch.rand(2, 1, 32, 32)
    assert torch.allclose(ssim(img, img), torch.ones(2), atol=1e-5)
    assert (ssim(img, torch.rand(2, 1, 32, 32)) < 0.2).all()
