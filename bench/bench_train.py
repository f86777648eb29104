"""mdcli's training steps and samplers against the peer a user would pick instead: diffusers.

    python bench/bench_train.py            # CPU here, or the GPU when there is one
    python bench/bench_train.py --quick    # fewer timed steps

Side by side in one process, interleaved rounds (absolute times on shared machines are noise):
- autoencoder step (forward, L1 + bottleneck loss, backward, AdamW): mdcli VQ-VAE vs diffusers VQModel,
  mdcli VAE vs diffusers AutoencoderKL, same widths (16, 32, 64), depth (1 block per level, mid attention),
  4 latent channels, batch 16 of 1 x 64 x 64;
- LDM step (v-target MSE, backward, AdamW): mdcli UNet vs diffusers UNet2DModel (64, 128; 2 blocks;
  attention at the lower level; class embedding) at matched parameter count, batch 64 of 4 x 16 x 16;
- sampling latency for 64 latents: mdcli ddpm/ddim/dpmpp-2m vs diffusers DDPMScheduler/DDIMScheduler/
  DPMSolverMultistepScheduler driving the diffusers UNet, the same number of steps, no guidance.
On CUDA: bf16 autocast, channels_last, fused AdamW for both sides, and model FLOP utilisation.
Ratios > 1 mean mdcli is faster.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mdcli.diffusion import NoiseSchedule, guided_eps, run_sampler
from mdcli.models.autoencoder import GaussianAutoencoder, ModelConfig, VQAutoencoder
from mdcli.models.quantizer import VectorQuantizer, VQConfig
from mdcli.models.unet import UNet, UNetConfig

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peak, FLOP/s


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_rounds(steps: dict, device: torch.device, n: int, rounds: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each step function, measured in interleaved rounds after warm-up."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in times.items()}


def step_fn(model, loss_fn, device, fused: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with autocast:
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def flops_of(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> None:
    import diffusers
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel,
                           VQModel)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile both sides' models")
    ap.add_argument("--only", choices=["ae", "ldm", "sampling"], help="run one part")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    n, rounds = (3, 3) if a.quick else ((20, 5) if cuda else (5, 5))
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; diffusers {diffusers.__version__}")
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    torch.manual_seed(0)

    def maybe_compile(m):
        return torch.compile(m) if a.compile else m

    # -- autoencoders ------------------------------------------------------------------------------
    if a.only in (None, "ae"):
        bench_autoencoders(a, device, fmt, n, rounds, peak, maybe_compile, AutoencoderKL, VQModel)
    if a.only in (None, "ldm", "sampling"):
        bench_unets(a, device, fmt, n, rounds, peak, maybe_compile, UNet2DModel, DDIMScheduler, DDPMScheduler,
                    DPMSolverMultistepScheduler)


def bench_autoencoders(a, device, fmt, n, rounds, peak, maybe_compile, AutoencoderKL, VQModel) -> None:  # noqa: N803
    cuda = device.type == "cuda"
    x = torch.rand(16, 1, 64, 64, device=device).mul(2).sub(1).contiguous(memory_format=fmt)
    mcfg = ModelConfig(channels=16, channel_mult=[1, 2, 4], num_res_blocks=1, attention=True, latent_channels=4, groups=8)
    ours_vq = VQAutoencoder(mcfg, VectorQuantizer(4, VQConfig(codebook_size=256))).to(device, memory_format=fmt)
    ours_vae = GaussianAutoencoder(mcfg).to(device, memory_format=fmt)
    blocks = dict(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                  up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 64), layers_per_block=1,
                  latent_channels=4, norm_num_groups=8)
    peer_vq = VQModel(**blocks, num_vq_embeddings=256, vq_embed_dim=4).to(device, memory_format=fmt)
    peer_kl = AutoencoderKL(**blocks).to(device, memory_format=fmt)
    m_vq, m_vae, p_vq, p_kl = (maybe_compile(m) for m in (ours_vq, ours_vae, peer_vq, peer_kl))

    def ours_vq_loss():
        out = m_vq(x)
        return F.l1_loss(out.recon.float(), x) + out.loss

    def ours_vae_loss():
        out = m_vae(x)
        return F.l1_loss(out.recon.float(), x) + out.loss

    def peer_vq_loss():
        out = p_vq(x)
        return F.l1_loss(out.sample.float(), x) + out.commit_loss.mean()

    def peer_kl_loss():
        post = peer_kl.encode(x).latent_dist
        rec = peer_kl.decode(post.sample()).sample
        return F.l1_loss(rec.float(), x) + 1e-6 * post.kl().mean()

    steps = {
        "mdcli VQ-VAE": step_fn(ours_vq, ours_vq_loss, device, cuda),
        "diffusers VQModel": step_fn(peer_vq, peer_vq_loss, device, cuda),
        "mdcli VAE": step_fn(ours_vae, ours_vae_loss, device, cuda),
        "diffusers AutoencoderKL": step_fn(peer_kl, peer_kl_loss, device, cuda),
    }
    t = timed_rounds(steps, device, n, rounds)
    print("\nautoencoder training step, batch 16 x 1 x 64 x 64")
    for (ours, peer, mo, mp) in (("mdcli VQ-VAE", "diffusers VQModel", ours_vq, peer_vq),
                                 ("mdcli VAE", "diffusers AutoencoderKL", ours_vae, peer_kl)):
        print(f"  {ours:<14} {16 / t[ours]:8.1f} img/s ({n_params(mo) / 1e6:.2f} M params)   "
              f"{peer:<24} {16 / t[peer]:8.1f} img/s ({n_params(mp) / 1e6:.2f} M)   ratio {t[peer] / t[ours]:.2f}x")
        if peak:
            f_o, f_p = flops_of(steps[ours]), flops_of(steps[peer])
            print(f"    MFU: mdcli {f_o / t[ours] / peak:.2%}, peer {f_p / t[peer] / peak:.2%} "
                  f"({f_o / 1e9:.1f} / {f_p / 1e9:.1f} GFLOP per step)")


def bench_unets(a, device, fmt, n, rounds, peak, maybe_compile, UNet2DModel, DDIMScheduler, DDPMScheduler,  # noqa: N803
                DPMSolverMultistepScheduler) -> None:  # noqa: N803
    # -- latent diffusion UNets --------------------------------------------------------------------
    cuda = device.type == "cuda"
    n_classes = 5
    z = torch.randn(64, 4, 16, 16, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, n_classes, (64,), device=device)
    ours_unet = UNet(UNetConfig(channels=64, channel_mult=[1, 2], num_res_blocks=2, attention_levels=[1], groups=8), 4,
                     n_classes).to(device, memory_format=fmt)
    peer_unet = UNet2DModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(64, 128), layers_per_block=2,
                            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                            norm_num_groups=8, num_class_embeds=n_classes + 1, attention_head_dim=128).to(device, memory_format=fmt)
    m_unet, p_unet = maybe_compile(ours_unet), maybe_compile(peer_unet)
    sched = NoiseSchedule("linear", 1000)
    tt = torch.randint(0, 1000, (64,), device=device)
    eps = torch.randn_like(z)
    xt = sched.q_sample(z, tt, eps)
    target = sched.target(z, tt, eps, "v")

    if a.only != "sampling":
        steps = {
            "mdcli UNet": step_fn(ours_unet, lambda: F.mse_loss(m_unet(xt, tt, y).float(), target), device, cuda),
            "diffusers UNet2DModel": step_fn(peer_unet, lambda: F.mse_loss(p_unet(xt, tt, class_labels=y).sample.float(),
                                                                           target), device, cuda),
        }
        t = timed_rounds(steps, device, n, rounds)
        print("\nLDM training step, batch 64 x 4 x 16 x 16")
        print(f"  mdcli UNet {64 / t['mdcli UNet']:8.1f} latents/s ({n_params(ours_unet) / 1e6:.2f} M params)   "
              f"diffusers UNet2DModel {64 / t['diffusers UNet2DModel']:8.1f} latents/s ({n_params(peer_unet) / 1e6:.2f} M)   "
              f"ratio {t['diffusers UNet2DModel'] / t['mdcli UNet']:.2f}x")
        if peak:
            f_o, f_p = flops_of(steps["mdcli UNet"]), flops_of(steps["diffusers UNet2DModel"])
            print(f"    MFU: mdcli {f_o / t['mdcli UNet'] / peak:.2%}, peer {f_p / t['diffusers UNet2DModel'] / peak:.2%}")
    if a.only == "ldm":
        return

    # -- sampling latency --------------------------------------------------------------------------
    ours_unet.eval()
    peer_unet.eval()
    x0 = torch.randn(64, 4, 16, 16, device=device)
    sched_cpu = NoiseSchedule("linear", 1000)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    print("\nsampling 64 latents (no guidance)")
    plan = [("ddpm", DDPMScheduler, 1000 if cuda and not a.quick else 100), ("ddim", DDIMScheduler, 50),
            ("dpmpp-2m", DPMSolverMultistepScheduler, 20)]
    for ours_name, peer_cls, k in plan:
        eps_fn = guided_eps(ours_unet, sched_cpu, "v", y, n_classes, 1.0)

        @torch.no_grad()
        def ours_run():
            with autocast:
                run_sampler(ours_name, eps_fn, x0.clone(), sched_cpu, k)

        extra = {"algorithm_type": "dpmsolver++", "solver_order": 2} if peer_cls is DPMSolverMultistepScheduler else {}
        ps = peer_cls(num_train_timesteps=1000, beta_schedule="linear", prediction_type="v_prediction", **extra)

        @torch.no_grad()
        def peer_run():
            ps.set_timesteps(k, device=device)
            s = x0.clone()
            with autocast:
                for tk in ps.timesteps:
                    out = peer_unet(s, tk, class_labels=y).sample
                    s = ps.step(out.float(), tk, s).prev_sample

        reps = 1 if (ours_name == "ddpm" and not cuda) else 3
        tt_ = timed_rounds({"ours": ours_run, "peer": peer_run}, device, 1, reps, warmup=1)
        print(f"  {ours_name:>9} {k:5d} steps: mdcli {tt_['ours'] * 1e3:9.1f} ms   diffusers {tt_['peer'] * 1e3:9.1f} ms   "
              f"ratio {tt_['peer'] / tt_['ours']:.2f}x")


if __name__ == "__main__":
    main()
