"""Noise schedules, parametrisations and samplers of the latent diffusion model.

The schedule is its own small object, apart from the network; samplers are pure
functions of (denoiser, initial noise, schedule), in the style of k-diffusion.
Notation: x_t = a_t x_0 + s_t eps with a_t = sqrt(alphabar_t), s_t = sqrt(1 - alphabar_t);
v = a_t eps - s_t x_0 (Salimans & Ho 2022); lambda_t = log(a_t / s_t).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

# A denoiser maps (x_t, t) -> predicted eps; samplers convert to x_0 through the schedule.
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NoiseSchedule:
    """Discrete schedule of T steps: betas, alphabar, and conversions between eps, v and x_0."""

    def __init__(self, kind: str = "linear", steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        if kind == "linear":  # Ho et al. 2020
            betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        elif kind == "cosine":  # Nichol & Dhariwal 2021, s = 0.008, betas clipped at 0.999
            s = 0.008
            f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        else:
            raise ValueError(f"unknown noise schedule '{kind}' (linear | cosine)")
        self.kind = kind
        self.T = steps
        self.betas = betas
        self.alphabar = torch.cumprod(1 - betas, 0)  # alphabar[t] after t + 1 noising steps

    def a_s(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a_t, s_t gathered for integer timesteps t (B,) and shaped to broadcast against `like`."""
        ab = self.alphabar.to(like.device)[t.long()].to(like.dtype)
        shape = (-1,) + (1,) * (like.ndim - 1)
        return ab.sqrt().view(shape), (1 - ab).sqrt().view(shape)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        a, s = self.a_s(t, x0)
        return a * x0 + s * eps

    def target(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, prediction: str) -> torch.Tensor:
        if prediction == "eps":
            return eps
        a, s = self.a_s(t, x0)
        return a * eps - s * x0

    def to_eps(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, prediction: str) -> torch.Tensor:
        """Network output (eps or v) -> eps."""
        if prediction == "eps":
            return out
        a, s = self.a_s(t, x_t)
        return s * x_t + a * out

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        ab = self.alphabar[t.long().cpu()]
        return (ab / (1 - ab)).float().to(t.device)

    def loss_weight(self, t: torch.Tensor, prediction: str, min_snr_gamma: float) -> torch.Tensor:
        """Min-SNR-gamma weighting (Hang et al. 2023) expressed for eps or v targets; 1 when gamma = 0."""
        if min_snr_gamma <= 0:
            return torch.ones(len(t), device=t.device)
        snr = self.snr(t)
        clipped = snr.clamp(max=min_snr_gamma)
        return clipped / snr if prediction == "eps" else clipped / (snr + 1)

    def timesteps(self, n: int, spacing: str = "linear") -> list[int]:
        """n integer timesteps from T - 1 down to 0: evenly spaced in t, or in lambda = log(a/s).

        Uniform-lambda steps (Lu et al. 2022) suit multistep solvers: equal log-SNR steps keep
        the ratio r of successive steps near 1, where the 2M extrapolation is stable.
        """
        if not 1 <= n <= self.T:
            from mdcli.errors import ConfigError

            raise ConfigError(f"--steps {n}: must be between 1 and {self.T} (the diffusion's timesteps)")
        if spacing == "lambda" and n > 1:
            lam = 0.5 * torch.log(self.alphabar / (1 - self.alphabar))  # decreasing in t
            # Start no lower than lambda = -5 (alphabar ~ 4.5e-5, pure noise for unit-variance
            # data): the cosine schedule's clipped tail would otherwise take several steps.
            targets = torch.linspace(max(float(lam[-1]), -5.0), float(lam[0]), n)
            ts = []
            for i, v in enumerate(targets.tolist()):
                t = int(torch.argmin((lam - v).abs()))
                if ts:
                    t = min(t, ts[-1] - 1)  # strictly decreasing ...
                ts.append(max(t, n - 1 - i))  # ... with room left for the remaining steps
            return ts
        return sorted({int(round(v)) for v in torch.linspace(self.T - 1, 0, n).tolist()}, reverse=True)


def build_schedule(d) -> NoiseSchedule:
    """The schedule a `diffusion` config section (train-ldm's DiffusionConfig) describes."""
    return NoiseSchedule(d.schedule, d.timesteps, d.beta_start, d.beta_end)


def _ab(schedule: NoiseSchedule, t: int) -> float:
    """alphabar at integer t; t = -1 is the clean data (alphabar = 1)."""
    return 1.0 if t < 0 else float(schedule.alphabar[t])


def _x0(x: torch.Tensor, eps: torch.Tensor, ab: float) -> torch.Tensor:
    return (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)


def _tvec(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


def _noise(x: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the CPU (from `generator`, a CPU generator) and moved:
    a seeded run draws the same noise on any device, so GPU and CPU samples agree up to float tolerance.
    A list of generators, one per sample of the batch, draws each sample's noise from its own stream (results
    that do not depend on how samples are batched, as `augment` needs)."""
    if isinstance(generator, (list, tuple)):
        return torch.stack([torch.randn(x.shape[1:], generator=g, dtype=x.dtype) for g in generator]).to(x.device)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


@torch.no_grad()
def sample_ddpm(eps_fn: EpsFn, x: torch.Tensor, schedule: NoiseSchedule, steps: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, Alg. 2) on `steps` respaced timesteps.

    With respacing, beta_t = 1 - alphabar_t / alphabar_prev and the posterior variance
    beta~_t = (1 - alphabar_prev) / (1 - alphabar_t) beta_t; no noise at the last step.
    """
    ts = schedule.timesteps(steps)
    for i, t in enumerate(ts):
        ab, ab_prev = _ab(schedule, t), _ab(schedule, ts[i + 1] if i + 1 < len(ts) else -1)
        beta = 1 - ab / ab_prev
        eps = eps_fn(x, _tvec(x, t))
        mean = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
        if i + 1 < len(ts):
            var = (1 - ab_prev) / (1 - ab) * beta
            x = mean + math.sqrt(var) * _noise(x, generator)
        else:
            x = mean
    return x


@torch.no_grad()
def sample_ddim(eps_fn: EpsFn, x: torch.Tensor, schedule: NoiseSchedule, steps: int, eta: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12): eta = 0 deterministic, eta = 1 the DDPM posterior."""
    ts = schedule.timesteps(steps)
    for i, t in enumerate(ts):
        ab, ab_prev = _ab(schedule, t), _ab(schedule, ts[i + 1] if i + 1 < len(ts) else -1)
        eps = eps_fn(x, _tvec(x, t))
        x0 = _x0(x, eps, ab)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(0.0, 1 - ab_prev - sigma**2)) * eps
        if sigma > 0:
            x = x + sigma * _noise(x, generator)
    return x


@torch.no_grad()
def sample_dpmpp_2m(eps_fn: EpsFn, x: torch.Tensor, schedule: NoiseSchedule, steps: int,
                    generator: torch.Generator | None = None, sde: bool = False) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): multistep second order in lambda, data prediction.

    ODE: x_{i+1} = (s_{i+1}/s_i) x_i - a_{i+1} (e^{-h} - 1) D_i, with D_i = (1 + 1/2r) x0_i - (1/2r) x0_{i-1},
    r = h_{i-1}/h_i; first order on the first step and on the final step to the clean data;
    timesteps uniform in lambda.
    sde=True, SDE-DPM-Solver++(2M) (same paper, sec. 5, midpoint form), solves the reverse SDE:
    x_{i+1} = (s_{i+1}/s_i) e^{-h} x_i + a_{i+1} (1 - e^{-2h}) D_i + s_{i+1} sqrt(1 - e^{-2h}) z.
    The fresh noise lets later, low-noise steps wash out errors the model made at high noise,
    which the deterministic solver carries to the end.
    """
    ts = schedule.timesteps(steps, spacing="lambda")
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        ab = _ab(schedule, t)
        x0 = _x0(x, eps_fn(x, _tvec(x, t)), ab)
        if i + 1 == len(ts):  # to the clean data: lambda -> inf, x = D (first order)
            return x0
        ab_next = _ab(schedule, ts[i + 1])
        lam, lam_next = 0.5 * math.log(ab / (1 - ab)), 0.5 * math.log(ab_next / (1 - ab_next))
        h = lam_next - lam
        d = x0 if x0_prev is None else (1 + 1 / (2 * h_prev / h)) * x0 - (1 / (2 * h_prev / h)) * x0_prev
        ratio = math.sqrt((1 - ab_next) / (1 - ab))
        if sde:
            noise = _noise(x, generator)
            x = (ratio * math.exp(-h) * x - math.sqrt(ab_next) * math.expm1(-2 * h) * d
                 + math.sqrt((1 - ab_next) * -math.expm1(-2 * h)) * noise)
        else:
            x = ratio * x - math.sqrt(ab_next) * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x


SAMPLERS = ("ddpm", "ddim", "dpmpp-2m", "dpmpp-2m-sde")


def run_sampler(name: str, eps_fn: EpsFn, x: torch.Tensor, schedule: NoiseSchedule, steps: int,
                eta: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    if name == "ddpm":
        return sample_ddpm(eps_fn, x, schedule, steps, generator)
    if name == "ddim":
        return sample_ddim(eps_fn, x, schedule, steps, eta, generator)
    if name == "dpmpp-2m":
        return sample_dpmpp_2m(eps_fn, x, schedule, steps, generator)
    if name == "dpmpp-2m-sde":
        return sample_dpmpp_2m(eps_fn, x, schedule, steps, generator, sde=True)
    raise ValueError(f"unknown sampler '{name}' ({', '.join(SAMPLERS)})")


def guided_eps(model: Callable, schedule: NoiseSchedule, prediction: str, y: torch.Tensor, null: int,
               scale: float, cond: torch.Tensor | None = None) -> EpsFn:
    """Classifier-free guidance (Ho & Salimans 2022): eps_u + scale (eps_c - eps_u); scale 1 is conditional only.
    cond: the kinematic condition (B, n) of a UNet that takes one (dropped with the class in eps_u)."""
    extra = () if cond is None else (cond,)
    both_extra = () if cond is None else (torch.cat([cond, cond]),)

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return schedule.to_eps(model(x, t, y, *extra), x, t, prediction)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null)]), *both_extra)
        eps_c, eps_u = schedule.to_eps(both, torch.cat([x, x]), torch.cat([t, t]), prediction).chunk(2)
        return eps_u + scale * (eps_c - eps_u)

    return eps_fn
