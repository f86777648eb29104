"""`train-ldm`: a class-conditional UNet denoiser on standardised autoencoder latents.

For VQ autoencoders the latents are the pre-quantisation encoder outputs; `sample`
quantises them at decode time (the latent-diffusion convention).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mdcli.artifacts import parent_record, save_model
from mdcli.config import to_yaml
from mdcli.data.batches import Prefetcher, eval_subset
from mdcli.data.splits import split_indices
from mdcli.diffusion import NoiseSchedule, build_schedule
from mdcli.errors import MdcliError
from mdcli.kinematics import condition_vector, condition_width
from mdcli.latents import load_latents
from mdcli.models.unet import UNet
from mdcli.stages import TrainLDMConfig
from mdcli.train.checkpoint import open_run, save_checkpoint
from mdcli.train.distributed import (ddp, dist_setup, dist_teardown, is_main, maybe_compile, pick_device, rank_slice,
                                     set_threads)
from mdcli.train.ema import EMA
from mdcli.train.loop import StepLoop, batch_indices, batches, lr_at, optimizer_step, steps_per_epoch
from mdcli.train.precision import autocast, fused_adamw, resolve_precision

VAL_LEVELS = (50, 150, 300, 500, 700, 900)  # timesteps (of 1000) where held-out loss is tracked


@torch.no_grad()
def validation_loss(model: UNet, z: torch.Tensor, labels: torch.Tensor, schedule: NoiseSchedule,
                    prediction: str, device: torch.device, bs: int = 128, cond: torch.Tensor | None = None) -> dict:
    """Unweighted held-out loss at fixed noise levels with fixed noise (comparable across runs)."""
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    out = {}
    for level in VAL_LEVELS:
        t_level = min(level * schedule.T // 1000, schedule.T - 1)
        total = 0.0
        for i, zb in batches(z, bs):
            eps = torch.randn(zb.shape, generator=gen)
            t = torch.full((len(zb),), t_level, dtype=torch.long)
            x_t = schedule.q_sample(zb, t, eps)
            extra = () if cond is None else (cond[i : i + bs].to(device),)
            pred = model(x_t.to(device), t.to(device), labels[i : i + bs].to(device), *extra).float().cpu()
            total += float(F.mse_loss(pred, schedule.target(zb, t, eps, prediction), reduction="sum"))
        out[f"val_loss_t{t_level}"] = total / max(1, z.numel())
    return out


def kinematic_condition(cfg: TrainLDMConfig, data, latents_path: Path) -> torch.Tensor | None:
    """The (N, n) condition of every latent (cfg.kinematics), None when the model is class-conditional only."""
    if not cfg.kinematics:
        return None
    if data.kinematics is None:
        raise MdcliError(f"{latents_path}: holds no kinematic features (encoded by an older mdcli); run `mdcli encode` "
                         f"again to train with kinematics {cfg.kinematics}")
    return torch.from_numpy(condition_vector(data.kinematics, cfg.kinematics, data.attrs["image_shape"]))


def train_ldm(cfg: TrainLDMConfig, latents_path: Path, output: Path, resume: bool = False,
              stop_after: int | None = None, progress: Callable[..., None] | None = None,
              log: Callable[[str], None] = lambda s: None, init: Path | None = None) -> dict | None:
    """Train; write `output` (kind `ldm`). Returns final metrics, or None when stopped by `stop_after`.

    init: an LDM on latents of the same shape to start from; other classes get the rows mdcli.train.transfer says."""
    set_threads()
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.train.device)
    cuda = device.type == "cuda"
    dist_setup(device, cfg.train.batch_size)
    data = load_latents(latents_path)
    shape, labels = data.shape, torch.from_numpy(data.labels)
    n_classes = len(data.class_names)
    levels = len(cfg.unet.channel_mult) - 1
    if shape[-1] % (2**levels) or shape[-2] % (2**levels):
        raise MdcliError(f"{latents_path}: latent size {tuple(shape[-2:])} is not divisible by 2^{levels} (unet.channel_mult)")
    tr, va = split_indices(data.labels, cfg.train.val_fraction, cfg.seed, cfg.train.split, data.sequence, cfg.train.split_gap)
    schedule = build_schedule(cfg.diffusion)
    cond = kinematic_condition(cfg, data, latents_path)
    model = UNet(cfg.unet, shape[1], n_classes, condition_width(cfg.kinematics))
    if init is not None:  # before the EMA copy: the average starts from the init's weights too
        from mdcli.train.transfer import load_ldm_init

        load_ldm_init(init, cfg, data.attrs, shape[1:], data.class_names, model)
    model = model.to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    va_eval = eval_subset(va, cfg.train.max_eval, cfg.seed)
    z_val = data.get(va_eval)
    net = maybe_compile(ddp(model, device), cfg.train.compile)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, fused=fused_adamw(device))
    ema = EMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    modules = {"unet": model} | ({"ema": ema.model} if ema else {})
    text = to_yaml(cfg)
    parents = [parent_record(latents_path)] + ([parent_record(init)] if init is not None else [])
    ckpt, jsonl, start, extra = open_run(output, resume, text, modules, {"opt": opt}, log, {"history": []}, progress, parents)
    history = extra["history"]
    spe = steps_per_epoch(len(tr), cfg.train.batch_size)
    eval_every = cfg.train.eval_every or max(spe, 100)
    d = cfg.diffusion
    precision = resolve_precision(device, cfg.train.precision)  # what runs, and what the artifact records
    amp = autocast(device, precision)

    def checkpoint(at: int) -> None:
        save_checkpoint(ckpt, text, cfg.seed, parents, at, modules, {"opt": opt}, {"history": history})

    prefetch = Prefetcher(lambda i: data.get(rank_slice(tr[batch_indices(len(tr), cfg.train.batch_size, i, cfg.seed)])))
    with StepLoop(start, cfg.train.steps, stop_after, cfg.train.checkpoint_every, checkpoint, (prefetch, data.reader)) as loop:
        for step in loop:
            # 1. learning rate and batch; noise level, noise and (dropped) labels
            lr = lr_at(step, cfg.train)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = tr[batch_indices(len(tr), cfg.train.batch_size, step, cfg.seed)]
            # noise is drawn for the global batch and sliced, so N ranks follow the 1-rank run
            t = rank_slice(torch.randint(0, schedule.T, (len(idx),))).to(device)
            eps = rank_slice(torch.randn((len(idx), *shape[1:]))).to(device)
            drop = rank_slice(torch.rand(len(idx))).to(device) < d.cfg_dropout
            idx = rank_slice(idx)
            z0, y = prefetch.get(step, cfg.train.steps).to(device), labels[idx].to(device)
            extra = () if cond is None else (cond[idx].to(device),)
            if cuda:
                z0 = z0.contiguous(memory_format=torch.channels_last)
            y = torch.where(drop, torch.full_like(y, n_classes), y)
            # 2. weighted denoising loss
            model.train()
            with amp:
                pred = net(schedule.q_sample(z0, t, eps), t, y, *extra).float()
            per_sample = (pred - schedule.target(z0, t, eps, d.prediction)).pow(2).flatten(1).mean(1)
            loss = (schedule.loss_weight(t, d.prediction, d.min_snr_gamma) * per_sample).mean()
            optimizer_step(opt, loss, model.parameters(), cfg.train.grad_clip, step, ckpt)
            if ema is not None:
                ema.update(model, step)
            loop.seen += len(idx)
            if progress:
                progress(1)
            # 3. log, validate, checkpoint
            if (step + 1) % cfg.train.log_every == 0:
                jsonl.write({"step": step + 1, "lr": lr, "loss": loss.item()})
            if ((step + 1) % eval_every == 0 or step + 1 == cfg.train.steps) and is_main():
                val = {"step": step + 1, **validation_loss(ema.model if ema else model, z_val, labels[va_eval], schedule, d.prediction, device,
                                                               cond=None if cond is None else cond[va_eval])}
                history.append(val)
                jsonl.write(val)
    if loop.stopped:
        return None
    rate = loop.rate()
    if not is_main():
        dist_teardown()
        return {"latents_per_s": rate}
    final = ema.model if ema else model
    metrics = {k: v for k, v in history[-1].items() if k != "step"} if history else {}
    save_model(output, "ldm", text, cfg.seed, parents, final.state_dict(), {
        **data.attrs, "latent_shape": list(shape[1:]), "channel_mean": data.mean.tolist(),
        "channel_std": data.std.tolist(), "n_classes": n_classes, "history": history,
        "metrics": metrics, "latents_per_s": rate, "precision_used": precision, "init": str(init) if init else "",
    }, tables=None if cond is None else {"kinematics": data.kinematics[tr], "kinematics_labels": data.labels[tr]})
    if ckpt.exists():
        ckpt.unlink()
    dist_teardown()
    return {"latents_per_s": rate, **metrics}
