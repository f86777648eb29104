"""fp32 against bf16 autocast for the demo's training steps on this machine (`train.precision`).

    python bench/bench_precision.py [--config configs/demo.yaml] [--rounds 5]

One process, the torch thread count as mdcli sets it, interleaved rounds after warm-up: the demo's
VQ-GAN generator step (forward, L1, backward, AdamW; batch and widths from `train-ae`) and its LDM
step (UNet forward, MSE, backward, AdamW; batch from `train-ldm`, 4 x 16 x 16 latents), each in
fp32 and under bf16 autocast, with and without channels_last. What bf16 gains depends on the CPU's
bf16 instructions (AMX here: docs/PERFORMANCE.md). Ratios > 1 mean faster than fp32.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from mdcli.config import load_config
from mdcli.models.load import build_autoencoder
from mdcli.models.unet import UNet
from mdcli.stages import TrainAEConfig, TrainLDMConfig
from mdcli.train.distributed import set_threads

from bench_train import timed_rounds  # the interleaved-rounds timer of bench_train.py (bench/ is on sys.path)

VARIANTS = {"fp32": (False, False), "fp32 + channels_last": (False, True),
            "bf16 autocast": (True, False), "bf16 autocast + channels_last": (True, True)}


def make_step(kind: str, config: str, bf16: bool, channels_last: bool):
    torch.manual_seed(0)
    if kind == "autoencoder":
        cfg = load_config(TrainAEConfig, config, None, {"loss.perceptual": "none"})
        model = build_autoencoder(cfg)
        x = torch.rand(cfg.train.batch_size, 1, 64, 64) * 2 - 1
        forward = lambda: model(x).recon  # noqa: E731
    else:
        cfg = load_config(TrainLDMConfig, config)
        model = UNet(cfg.unet, 4, 5)
        b = cfg.train.batch_size
        x, t, y = torch.randn(b, 4, 16, 16), torch.randint(0, 1000, (b,)), torch.randint(0, 6, (b,))
        forward = lambda: model(x, t, y)  # noqa: E731
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def step() -> None:
        with autocast:
            loss = F.mse_loss(forward().float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=5, help="steps per round")
    args = ap.parse_args()
    set_threads()
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"CPU bf16 kernels: {torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    for kind in ("autoencoder", "ldm"):
        steps = {name: make_step(kind, args.config, *v) for name, v in VARIANTS.items()}
        medians = timed_rounds(steps, torch.device("cpu"), args.n, args.rounds)
        for name, med in medians.items():
            print(f"{kind:12s} {name:32s} {1000 * med:7.1f} ms/step  x{medians['fp32'] / med:.2f}")


if __name__ == "__main__":
    main()
