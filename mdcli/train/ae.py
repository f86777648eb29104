"""`train-ae`: VAE, VQ-VAE and VQ-GAN on one shared encoder/decoder, trained by one loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mdcli.artifacts import parent_record, save_model
from mdcli.config import to_yaml
from mdcli.data.batches import BatchReader, Prefetcher, eval_subset, from_model
from mdcli.data.splits import split_indices
from mdcli.errors import MdcliError
from mdcli.losses import (DomainPerceptual, adaptive_weight, build_lpips, envelope, gan_d_loss, gan_g_loss, profile, reconstruction,
                          temporal_spectrum)
from mdcli.metrics import codebook_stats, psnr, ssim
from mdcli.models.discriminator import PatchDiscriminator
from mdcli.models.load import build_autoencoder
from mdcli.stages import TrainAEConfig
from mdcli.train.checkpoint import open_run, save_checkpoint
from mdcli.train.distributed import (ddp, dist_setup, dist_teardown, is_main, maybe_compile, pick_device, rank_slice,
                                     set_threads)
from mdcli.train.ema import EMA
from mdcli.train.loop import StepLoop, batch_indices, batches, lr_at, optimizer_step, steps_per_epoch
from mdcli.train.precision import autocast, fused_adamw, resolve_precision

def build_perceptual(cfg: TrainAEConfig) -> torch.nn.Module | None:
    kind = cfg.loss.perceptual
    if kind == "none":
        return None
    if kind == "domain":
        from mdcli.models.load import load_classifier

        clf, _ = load_classifier(cfg.loss.classifier)
        return DomainPerceptual(clf)
    return build_lpips(kind.split("-")[1], cfg.loss.perceptual_weights or None)


@dataclass
class AEResult:
    metrics: dict
    images_per_s: float


@torch.no_grad()
def evaluate(ae, x: torch.Tensor, perceptual, device: torch.device, bs: int = 64) -> dict:
    """PSNR, SSIM, L1 on [0, 1] images, perceptual distance, and codebook usage for VQ models."""
    ae.eval()
    sums = {"psnr": 0.0, "ssim": 0.0, "l1": 0.0, "perceptual": 0.0}
    counts = None
    for _, xb in batches(x, bs):
        xb = xb.to(device)
        out = ae(xb, sample=False)
        r01, x01 = from_model(out.recon), from_model(xb)
        sums["psnr"] += float(psnr(r01, x01).sum())
        sums["ssim"] += float(ssim(r01, x01).sum())
        sums["l1"] += float((r01 - x01).abs().flatten(1).mean(1).sum())
        if perceptual is not None:
            sums["perceptual"] += float(perceptual(out.recon.clamp(-1, 1), xb).sum())
        if out.indices is not None:
            c = torch.bincount(out.indices.flatten().cpu(), minlength=ae.quantizer.cfg.codebook_size)
            counts = c if counts is None else counts + c
    n = max(1, len(x))
    m = {k: v / n for k, v in sums.items()}
    if perceptual is None:
        m.pop("perceptual")
    if counts is not None:
        m.update(codebook_stats(counts.numpy()))
    return m


def train_autoencoder(cfg: TrainAEConfig, data_path: Path, output: Path, resume: bool = False,
                      stop_after: int | None = None, progress: Callable[..., None] | None = None,
                      log: Callable[[str], None] = lambda s: None, init: Path | None = None) -> AEResult | None:
    """Train; write `output` (kind `autoencoder`). Returns None when stopped early by `stop_after`.

    init: an autoencoder of the same arch, model and image size to start from (see mdcli.train.transfer)."""
    set_threads()
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.train.device)
    cuda = device.type == "cuda"
    dist_setup(device, cfg.train.batch_size)
    reader = BatchReader(data_path)  # batches come from disk: memory does not grow with the dataset
    labels = reader.labels
    h, w = reader.shape[1:]
    fh, fw = cfg.model.factors
    if h % fh or w % fw:
        raise MdcliError(f"{data_path}: image size {(h, w)} is not divisible by the downsampling factors {(fh, fw)} "
                         "(model.channel_mult, model.time_factor)")
    tr, va = split_indices(labels, cfg.train.val_fraction, cfg.seed, cfg.train.split, reader.sequence, cfg.train.split_gap)
    x_val = reader.images(eval_subset(va, cfg.train.max_eval, cfg.seed))
    ae = build_autoencoder(cfg)
    if init is not None:  # before the EMA copy: the average starts from the init's weights too
        from mdcli.train.transfer import load_autoencoder_init

        load_autoencoder_init(init, cfg, (int(h), int(w)), ae)
    ae = ae.to(device)
    perceptual = build_perceptual(cfg)
    if perceptual is not None:
        perceptual = perceptual.to(device)
    gan = cfg.arch == "vqgan"
    disc = PatchDiscriminator(cfg.disc).to(device) if gan else None
    if cuda:
        ae = ae.to(memory_format=torch.channels_last)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # DDP wrappers for the training forward passes; the discriminator's GroupNorm is per sample,
    # so it needs no cross-rank statistics. The generator step calls the bare discriminator.
    ae_net = maybe_compile(ddp(ae, device), cfg.train.compile)
    disc_net = ddp(disc, device) if gan else None
    betas = (0.5, 0.9) if gan else (0.9, 0.999)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.train.lr, betas=betas, weight_decay=cfg.train.weight_decay, fused=fused_adamw(device))
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.train.lr, betas=betas, weight_decay=0.0, fused=fused_adamw(device)) if gan else None
    ema = EMA(ae, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    modules = {"ae": ae} | ({"disc": disc} if gan else {}) | ({"ema": ema.model} if ema else {})
    optimizers = {"ae": opt} | ({"disc": opt_d} if gan else {})
    text = to_yaml(cfg)
    parents = [parent_record(data_path)] + ([parent_record(cfg.loss.classifier)] if cfg.loss.perceptual == "domain" else [])
    parents += [parent_record(init)] if init is not None else []
    ckpt, jsonl, start, extra = open_run(output, resume, text, modules, optimizers, log,
                                         {"history": [], "usage": None}, progress, parents,
                                         ("loss.classifier",) if cfg.loss.perceptual == "domain" else ())
    history: list = extra["history"]
    k = cfg.vq.codebook_size
    usage = np.array(extra["usage"], dtype=np.int64) if extra.get("usage") is not None else np.zeros(k, np.int64)
    spe = steps_per_epoch(len(tr), cfg.train.batch_size)
    eval_every = cfg.train.eval_every or spe
    precision = resolve_precision(device, cfg.train.precision)  # what runs, and what the artifact records
    amp = autocast(device, precision)

    def checkpoint(at: int) -> None:
        save_checkpoint(ckpt, text, cfg.seed, parents, at, modules, optimizers,
                               {"history": history, "usage": usage.tolist()})

    def load(i: int) -> torch.Tensor:
        return reader.images(rank_slice(tr[batch_indices(len(tr), cfg.train.batch_size, i, cfg.seed)]))

    prefetch = Prefetcher(load)
    with StepLoop(start, cfg.train.steps, stop_after, cfg.train.checkpoint_every, checkpoint, (prefetch, reader)) as loop:
        for step in loop:
            # 1. learning rate and batch
            lr = lr_at(step, cfg.train)
            for o in optimizers.values():
                for g in o.param_groups:
                    g["lr"] = lr
            xb = prefetch.get(step, cfg.train.steps).to(device)
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            # 2. autoencoder loss: reconstruction + perceptual + bottleneck (+ adversarial)
            ae.train()
            with amp:
                out = ae_net(xb)
                rec = reconstruction(out.recon.float(), xb, cfg.loss.recon).mean()
                nll = cfg.loss.recon_weight * rec
                if cfg.loss.temporal_weight:
                    t_loss = temporal_spectrum(out.recon, xb).mean()
                    nll = nll + cfg.loss.temporal_weight * t_loss
                if cfg.loss.envelope_weight:
                    e_loss = envelope(out.recon, xb, cfg.loss.envelope_level).mean()
                    nll = nll + cfg.loss.envelope_weight * e_loss
                if cfg.loss.profile_weight:
                    pr_loss = profile(out.recon, xb).mean()
                    nll = nll + cfg.loss.profile_weight * pr_loss
                if perceptual is not None:
                    p_loss = perceptual(out.recon.float(), xb).mean()
                    nll = nll + cfg.loss.perceptual_weight * p_loss
                loss = nll + out.loss
                record = {"step": step + 1, "lr": lr, "rec": rec.item(), "bottleneck": out.loss.detach().item()}
                if perceptual is not None:
                    record["perceptual"] = p_loss.item()
                if cfg.loss.temporal_weight:
                    record["temporal"] = t_loss.item()
                if cfg.loss.envelope_weight:
                    record["envelope"] = e_loss.item()
                if cfg.loss.profile_weight:
                    record["profile"] = pr_loss.item()
                recon_grad = None
                if gan and step >= cfg.disc.start:
                    disc.requires_grad_(False)
                    g_loss = gan_g_loss(disc(out.recon), cfg.disc.loss)
                    lam, g_nll, g_gan = adaptive_weight(nll, g_loss, out.recon, ae.decoder.last_layer, cfg.disc.adaptive_max)
                    lam = cfg.disc.weight * lam
                    loss = loss.detach() + lam * g_loss.detach()
                    recon_grad = g_nll + lam * g_gan  # dL/d recon: the backward below starts there
                    disc.requires_grad_(True)
                    record.update(g_loss=g_loss.item(), adaptive_weight=float(lam))
            backward = None
            if recon_grad is not None:  # the same gradients as (nll + bottleneck + lam g_loss).backward(), one pass through the loss nets
                roots = [(out.recon, recon_grad)] + ([(out.loss, torch.ones_like(out.loss))] if out.loss.requires_grad else [])
                backward = lambda: torch.autograd.backward([r for r, _ in roots], [g for _, g in roots])  # noqa: E731
            optimizer_step(opt, loss, ae.parameters(), cfg.train.grad_clip, step, ckpt, backward)
            # 3. discriminator: trains from `pretrain_steps` before the generator term switches on
            if gan and step >= cfg.disc.start - cfg.disc.pretrain_steps:
                with amp:
                    d_loss = gan_d_loss(*disc_net(torch.cat([xb, out.recon.detach()])).chunk(2), cfg.disc.loss)
                optimizer_step(opt_d, d_loss, disc.parameters(), cfg.train.grad_clip, step, ckpt)
                record["d_loss"] = d_loss.item()
            if ema is not None:
                ema.update(ae, step)
            if out.indices is not None:
                usage += np.bincount(out.indices.flatten().cpu().numpy(), minlength=k)
            record.update({key: float(v) for key, v in out.stats.items()})
            loop.seen += len(xb)
            if progress:
                progress(1)
            # 4. log, validate, checkpoint
            if (step + 1) % cfg.train.log_every == 0:
                jsonl.write(record)
            if ((step + 1) % eval_every == 0 or step + 1 == cfg.train.steps) and is_main():
                val = evaluate(ema.model if ema else ae, x_val, perceptual, device)
                val = {"step": step + 1, **{f"val_{k_}": v for k_, v in val.items()}}
                if out.indices is not None:  # usage over the whole epoch of training batches
                    val.update({f"epoch_{k_}": v for k_, v in codebook_stats(usage).items()})
                    usage[:] = 0
                history.append(val)
                jsonl.write(val)
    if loop.stopped:
        return None
    rate = loop.rate()
    if not is_main():
        dist_teardown()
        return AEResult({}, rate)
    final = ema.model if ema else ae
    metrics = evaluate(final, x_val, perceptual, device)
    save_model(output, "autoencoder", text, cfg.seed, parents, final.state_dict(), {
        "arch": cfg.arch, "metrics": metrics, "history": history, "images_per_s": rate,
        "image_shape": [int(h), int(w)], "latent_shape": [cfg.model.latent_channels, int(h) // fh, int(w) // fw],
        "class_names": list(reader.class_names), "val_indices": va.tolist(),
        "precision_used": precision, "init": str(init) if init else "",
    })
    if ckpt.exists():
        ckpt.unlink()
    dist_teardown()
    return AEResult(metrics, rate)
