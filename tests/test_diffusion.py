"""Diffusion math: pinned schedules, and samplers checked against the exact denoiser of Gaussian data."""

from __future__ import annotations

import math

import pytest
import torch

from mdcli.diffusion import NoiseSchedule, guided_eps, run_sampler, sample_ddim, sample_ddpm
from mdcli.models.unet import UNet, UNetConfig

MU = torch.tensor([1.0, -0.5])
SIGMA = torch.tensor([[1.0, 0.6], [0.6, 0.5]])


def test_linear_schedule_pinned_values():
    s = NoiseSchedule("linear", 1000)
    assert float(s.alphabar[0]) == pytest.approx(0.9999, rel=1e-9)
    assert float(s.alphabar[99]) == pytest.approx(0.89701814567496, rel=1e-9)
    assert float(s.alphabar[499]) == pytest.approx(0.07858724288177824, rel=1e-9)
    assert float(s.alphabar[999]) == pytest.approx(4.035829765375676e-05, rel=1e-6)  # DDPM's alphabar_T


def test_cosine_schedule_follows_its_closed_form():
    s = NoiseSchedule("cosine", 1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 99, 499, 900):
        assert float(s.alphabar[t]) == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert float(s.alphabar[499]) == pytest.approx(0.49384359044063775, rel=1e-9)
    assert float(s.betas.max()) == pytest.approx(0.999)  # clipped at the end


def _gaussian_eps(schedule: NoiseSchedule):
    """Exact eps-prediction for x0 ~ N(MU, SIGMA): E[x0 | x_t] is linear in x_t."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = float(schedule.alphabar[int(t[0])])
        a, s = math.sqrt(ab), math.sqrt(1 - ab)
        xf = x.view(len(x), 2).double()
        cov = a * a * SIGMA.double() + s * s * torch.eye(2, dtype=torch.float64)
        gain = a * SIGMA.double() @ torch.linalg.inv(cov)
        x0 = MU.double() + (xf - a * MU.double()) @ gain.T
        return ((xf - a * x0) / s).float().view_as(x)

    return eps_fn


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.view(len(x), 2).double()
    return x.mean(0), torch.cov(x.T)


@pytest.mark.parametrize("sampler,steps,eta", [
    ("ddpm", 1000, 0.0), ("ddpm", 100, 0.0), ("ddim", 100, 0.0), ("ddim", 100, 1.0), ("dpmpp-2m", 20, 0.0),
    ("dpmpp-2m-sde", 50, 0.0),
])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_samplers_recover_a_gaussian(sampler, steps, eta, kind):
    schedule = NoiseSchedule(kind, 1000)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((6000, 2, 1, 1), generator=gen)
    out = run_sampler(sampler, _gaussian_eps(schedule), x, schedule, steps, eta, gen)
    mean, cov = _stats(out)
    assert torch.allclose(mean, MU.double(), atol=0.05), mean
    assert torch.allclose(cov, SIGMA.double(), atol=0.07), cov


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_second_order_solver_beats_ddim_at_equal_steps(kind):
    """DDIM (first order) shrinks the variance at 20 steps; DPM-Solver++(2M) stays close."""
    schedule = NoiseSchedule(kind, 1000)
    x = torch.randn((6000, 2, 1, 1), generator=torch.Generator().manual_seed(0))
    err = {}
    for name in ("ddim", "dpmpp-2m"):
        _, cov = _stats(run_sampler(name, _gaussian_eps(schedule), x, schedule, 20))
        err[name] = float((cov - SIGMA.double()).abs().max())
    assert err["dpmpp-2m"] < 0.5 * err["ddim"], err


def test_sde_solver_washes_out_an_error_made_at_high_noise():
    """A denoiser whose x0 is off by +0.5 at t >= 500 (linear schedule): the ODE solver carries the
    bias into the samples, SDE-DPM-Solver++(2M) at the same 20 steps forgets most of it."""
    schedule = NoiseSchedule("linear", 1000)
    exact = _gaussian_eps(schedule)

    def biased(x, t):
        ab = float(schedule.alphabar[int(t[0])])
        shift = 0.5 * math.sqrt(ab / (1 - ab)) if int(t[0]) >= 500 else 0.0
        return exact(x, t) - shift

    x = torch.randn((6000, 2, 1, 1), generator=torch.Generator().manual_seed(0))
    err = {}
    for name in ("dpmpp-2m", "dpmpp-2m-sde"):
        mean, _ = _stats(run_sampler(name, biased, x, schedule, 20, 0.0, torch.Generator().manual_seed(1)))
        err[name] = float((mean - MU.double()).abs().max())
    assert err["dpmpp-2m"] > 0.1, err  # the bias survives the deterministic solve
    assert err["dpmpp-2m-sde"] < 0.4 * err["dpmpp-2m"], err


def test_v_prediction_path_matches_eps_path():
    """A v-predicting model fed through the schedule's conversion gives the same samples."""
    schedule = NoiseSchedule("linear", 1000)
    eps_fn = _gaussian_eps(schedule)

    def v_model(x, t, y):
        a, s = schedule.a_s(t, x)
        eps = eps_fn(x, t)
        x0 = (x - s * eps) / a
        return a * eps - s * x0

    y = torch.zeros(500, dtype=torch.long)
    x = torch.randn((500, 2, 1, 1), generator=torch.Generator().manual_seed(1))
    via_v = run_sampler("dpmpp-2m", guided_eps(v_model, schedule, "v", y, 1, 1.0), x, schedule, 20)
    direct = run_sampler("dpmpp-2m", eps_fn, x, schedule, 20)
    assert torch.allclose(via_v, direct, atol=1e-3)


def test_ddim_eta_1_over_all_steps_is_ddpm():
    schedule = NoiseSchedule("linear", 1000)
    eps_fn = _gaussian_eps(schedule)
    x = torch.randn((3000, 2, 1, 1), generator=torch.Generator().manual_seed(2))
    a = sample_ddpm(eps_fn, x, schedule, 1000, torch.Generator().manual_seed(3))
    b = sample_ddim(eps_fn, x, schedule, 1000, 1.0, torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, atol=1e-3)  # same posterior mean and variance, same noise
    c = sample_ddim(eps_fn, x, schedule, 1000, 1.0, torch.Generator().manual_seed(4))
    (ma, ca), (mc, cc) = _stats(a), _stats(c)  # and in distribution with other noise
    assert torch.allclose(ma, mc, atol=0.06) and torch.allclose(ca, cc, atol=0.08)


def test_cfg_scale_one_is_the_conditional_model_and_scale_mixes_linearly():
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=8, channel_mult=[1, 2], num_res_blocks=1, groups=4), 4, 3).eval()
    for p in model.parameters():  # zero-initialised output layers would make every class identical
        torch.nn.init.normal_(p, 0, 0.05)
    schedule = NoiseSchedule("linear", 1000)
    x, t, y = torch.randn(2, 4, 8, 8), torch.tensor([10, 10]), torch.tensor([0, 2])
    with torch.no_grad():
        cond = model(x, t, y)
        uncond = model(x, t, torch.full_like(y, 3))
        assert torch.equal(guided_eps(model, schedule, "eps", y, 3, 1.0)(x, t), cond)
        assert torch.allclose(guided_eps(model, schedule, "eps", y, 3, 3.0)(x, t), uncond + 3.0 * (cond - uncond), atol=1e-5)
        assert not torch.allclose(cond, uncond)


def test_timesteps_are_descending_and_end_at_zero():
    s = NoiseSchedule("linear", 1000)
    ts = s.timesteps(20)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 20 and ts == sorted(ts, reverse=True)
    assert s.timesteps(1000) == list(range(999, -1, -1))


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 1.0), ("dpmpp-2m-sde", 0.0)])
def test_stochastic_samplers_take_their_noise_from_the_seeded_cpu_generator(sampler, eta):
    """The noise of every step comes from the caller's CPU generator whatever the device, so a seeded run is
    reproducible on a GPU and matches the CPU run (checked when CUDA is present). Before, a GPU run drew from
    the GPU's unseeded default generator and `sample --seed` only set the starting noise."""
    schedule = NoiseSchedule("linear", 1000)
    x = torch.randn((64, 2, 1, 1), generator=torch.Generator().manual_seed(0))
    eps_fn = lambda x, t: 0.5 * x  # noqa: E731  (any denoiser: only the noise matters here; works on any device)
    run = lambda dev, seed: run_sampler(sampler, eps_fn, x.to(dev), schedule, 10, eta,  # noqa: E731
                                        torch.Generator().manual_seed(seed)).cpu()
    ref = run("cpu", 1)
    assert torch.equal(run("cpu", 1), ref) and not torch.allclose(run("cpu", 2), ref, atol=1e-3)
    torch.manual_seed(123)  # the global streams play no part
    assert torch.equal(run("cpu", 1), ref)
    if torch.cuda.is_available():
        assert torch.allclose(run("cuda", 1), ref, atol=1e-4)
