"""`train-classifier`: a small CNN on the class labels (domain perceptual features, and the judge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mdcli.artifacts import build_and_load, stored_config_of, load_model, parent_record, save_model
from mdcli.config import to_yaml
from mdcli.data.batches import BatchReader, Prefetcher, eval_subset
from mdcli.data.splits import split_indices
from mdcli.errors import MdcliError
from mdcli.models.classifier import ClassifierNetConfig, SpectrogramClassifier
from mdcli.stages import ExtraOptions, OptimConfig, TrainClassifierConfig
from mdcli.train.checkpoint import open_run, save_checkpoint
from mdcli.train.ema import EMA
from mdcli.train.distributed import (ddp, dist_setup, dist_teardown, is_main, maybe_compile, pick_device, rank,
                                     rank_slice, set_threads)
from mdcli.train.loop import StepLoop, batch_indices, batches, lr_at, optimizer_step, steps_per_epoch
from mdcli.train.precision import autocast, fused_adamw, resolve_precision


@dataclass
class ClassifierResult:
    val_accuracy: float
    train_accuracy: float
    steps: int
    images_per_s: float


@torch.no_grad()
def accuracy(model: SpectrogramClassifier, x: torch.Tensor, y: torch.Tensor, device: torch.device, bs: int = 128) -> float:
    model.eval()
    correct = 0
    for i, xb in batches(x, bs):
        correct += int((model(xb.to(device)).argmax(1).cpu() == y[i : i + bs]).sum())
    return correct / max(1, len(x))


@torch.no_grad()
def streamed_accuracy(model: SpectrogramClassifier, reader: BatchReader, idx: np.ndarray, device: torch.device,
                      bs: int = 128) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(idx), bs):
        part = idx[i : i + bs]
        correct += int((model(reader.images(part).to(device)).argmax(1).cpu().numpy() == reader.labels[part]).sum())
    return correct / max(1, len(idx))


def load_extra(path: Path, class_names: list[str], shape: tuple, opts: ExtraOptions, seed: int) -> ExtraSet:
    """--extra: images of the real data's size and (some of) its classes -> an ExtraSet in its class order."""
    from mdcli.artifacts import Spectrograms
    from mdcli.data.batches import align_labels, model_images

    opts.validate("--extra")
    data = Spectrograms.load(path)
    if tuple(data.spectrograms.shape[1:]) != tuple(shape):
        raise MdcliError(f"--extra {path}: images are {tuple(data.spectrograms.shape[1:])}, the training data's {tuple(shape)}")
    if len(data) == 0:
        raise MdcliError(f"--extra {path}: holds no images")
    return ExtraSet(model_images(data), torch.from_numpy(align_labels(data, class_names, path)), opts, seed)


def init_model(path: Path, cfg: TrainClassifierConfig, class_names: list[str], shape: tuple) -> SpectrogramClassifier:
    """--init: start from a trained classifier (its network replaces cfg.net); a fresh head when its classes
    differ from the training data's (e.g. pretrained on simulated targets, fine-tuned on measured people)."""
    header, attrs, weights = load_model(path, "classifier")
    if tuple(attrs["image_shape"]) != tuple(shape):
        raise MdcliError(f"--init {path}: trained on images {tuple(attrs['image_shape'])}, the training data's are {tuple(shape)}")
    cfg.net = stored_config_of(TrainClassifierConfig, header, path).net
    same = list(attrs["class_names"]) == list(class_names)
    state = {k: v for k, v in weights.items() if same or not k.startswith("head.")}  # other classes: a fresh head
    return build_and_load(path, "classifier", lambda: SpectrogramClassifier(cfg.net, len(class_names)), state, strict=same)


def check_extra_init(cfg: TrainClassifierConfig, data_path: Path, extra: Path | None, init: Path | None) -> None:
    """Everything train_classifier would refuse about --extra and --init, before any work (one-line errors)."""
    import copy

    if extra is None and init is None:
        return
    reader = BatchReader(data_path)
    names, shape = list(reader.class_names), tuple(reader.shape[1:])
    reader.close()
    if extra is not None:
        load_extra(extra, names, shape, cfg.extra, cfg.seed)
    if init is not None:
        init_model(init, copy.deepcopy(cfg), names, shape)


def train_classifier(cfg: TrainClassifierConfig, data_path: Path, output: Path, resume: bool = False,
                     stop_after: int | None = None, progress: Callable[..., None] | None = None,
                     log: Callable[[str], None] = lambda s: None, extra: Path | None = None,
                     init: Path | None = None) -> ClassifierResult | None:
    """Train; write `output` (kind `classifier`). Returns None when stopped early by `stop_after`.

    extra: a spectrograms file mixed into every batch as cfg.extra says (weight, ratio, prob); init: a classifier
    to start from (cfg.finetune: all weights or the head alone)."""
    
    set_threads()
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.train.device)
    dist_setup(device, cfg.train.batch_size)
    reader = BatchReader(data_path)  # batches come from disk: memory does not grow with the dataset
    labels = reader.labels
    y = torch.from_numpy(labels)
    tr, va = split_indices(labels, cfg.train.val_fraction, cfg.seed, cfg.train.split, reader.sequence, cfg.train.split_gap)
    validate = cfg.train.val_fraction > 0  # 0: every window trains, nothing is validated
    if len(tr) < 1 or (validate and len(va) < 1):
        raise MdcliError(f"{data_path}: too few samples ({len(labels)}) for a train/validation split")
    va_eval = eval_subset(va, cfg.train.max_eval, cfg.seed)
    x_val = reader.images(va_eval) if validate else None
    names, shape = list(reader.class_names), tuple(reader.shape[1:])
    extra_set = load_extra(extra, names, shape, cfg.extra, cfg.seed) if extra is not None else None
    model = (init_model(init, cfg, names, shape) if init is not None else SpectrogramClassifier(cfg.net, len(names))).to(device)
    params = trainable(model, head_only=init is not None and cfg.finetune == "head")
    net = maybe_compile(ddp(model, device), cfg.train.compile)
    opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                            fused=fused_adamw(device))
    # the saved weights: an average over the last ~1/(1 - decay) steps (train.ema_decay > 0), or the last ones. After
    # --init the average starts from the init's weights and fresh head, as the trained model does.
    ema = EMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
    modules = {"model": model} | ({"ema": ema.model} if ema else {})
    saved = ema.model if ema is not None else model  # what is validated and saved
    text = to_yaml(cfg)
    parents = [parent_record(p) for p in (data_path, extra, init) if p is not None]
    ckpt, jsonl, start, _ = open_run(output, resume, text, modules, {"opt": opt}, log, {}, progress, parents)
    spe = steps_per_epoch(len(tr), cfg.train.batch_size)
    precision = resolve_precision(device, cfg.train.precision)  # what runs, and what the artifact records
    amp = autocast(device, precision)
    prefetch = Prefetcher(lambda i: reader.images(rank_slice(tr[batch_indices(len(tr), cfg.train.batch_size, i, cfg.seed)])))

    def checkpoint(at: int) -> None:
        save_checkpoint(ckpt, text, cfg.seed, parents, at, modules, {"opt": opt}, {})

    with StepLoop(start, cfg.train.steps, stop_after, cfg.train.checkpoint_every, checkpoint, (prefetch,)) as loop:
        for step in loop:
            model.train()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg.train)
            idx = tr[batch_indices(len(tr), cfg.train.batch_size, step, cfg.seed)]
            shifts = torch.randint(0, reader.shape[-1], (len(idx),))  # drawn for the global batch, then sliced
            idx, shifts = rank_slice(idx), rank_slice(shifts)
            xb, yb = prefetch.get(step, cfg.train.steps).to(device), y[idx].to(device)
            if cfg.time_shift:
                xb = roll_time(xb, shifts)
            w = None
            if extra_set is not None:
                xb, yb, w = extra_set.mix(xb, yb, step, len(idx), rank())
            with amp:
                loss = weighted_cross_entropy(net(xb), yb, w)
            optimizer_step(opt, loss, model.parameters(), cfg.train.grad_clip, step, ckpt)
            if ema is not None:
                ema.update(model, step)
            loop.seen += len(idx)
            if progress:
                progress(1)
            if (step + 1) % cfg.train.log_every == 0:
                jsonl.write({"step": step + 1, "loss": loss.item(), "lr": opt.param_groups[0]["lr"]})
            eval_every = cfg.train.eval_every or spe
            if validate and (step + 1) % eval_every == 0 and is_main():
                jsonl.write({"step": step + 1, "val_accuracy": accuracy(saved, x_val, y[va_eval], device)})
    if loop.stopped:
        return None
    rate = loop.rate()
    if not is_main():
        dist_teardown()
        return ClassifierResult(float("nan"), float("nan"), cfg.train.steps, rate)
    val_acc = streamed_accuracy(saved, reader, va, device) if validate else float("nan")  # every held-out sample
    train_acc = streamed_accuracy(saved, reader, eval_subset(tr, cfg.train.max_eval, cfg.seed), device)
    reader.close()
    save_model(output, "classifier", text, cfg.seed, parents, saved.state_dict(), {
        "class_names": list(reader.class_names), "n_classes": len(reader.class_names),
        "image_shape": list(reader.shape[1:]), "val_accuracy": val_acc, "train_accuracy": train_acc,
        "split": cfg.train.split, "val_indices": va.tolist(),
        "precision_used": precision, "extra": str(extra) if extra else "", "init": str(init) if init else "",
    })
    jsonl.write({"step": cfg.train.steps, **({"val_accuracy": val_acc} if validate else {}), "train_accuracy": train_acc})
    if ckpt.exists():
        ckpt.unlink()
    dist_teardown()
    return ClassifierResult(val_acc, train_acc, cfg.train.steps, rate)


@dataclass
class FitConfig:
    """A fresh classifier trained in memory (TSTR, augmentation gain): the same budget for every arm."""

    net: ClassifierNetConfig = field(default_factory=lambda: ClassifierNetConfig(channels=[16, 32, 64]))
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    noise_std: float = 0.02  # classic augmentation: additive noise on the [0, 1] image
    crop_min: float = 0.8  # classic augmentation: keep this share of the time axis (or more), resized back

    def validate(self, section: str = "fit") -> None:
        from mdcli.errors import ConfigError
        from mdcli.stages import check_rates

        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"{section}.steps and {section}.batch_size: must be >= 1")
        check_rates(self.lr, self.weight_decay, self.warmup_steps, section)
        if not self.noise_std >= 0:
            raise ConfigError(f"{section}.noise_std: must be >= 0, got {self.noise_std}")
        if not 0 < self.crop_min <= 1:
            raise ConfigError(f"{section}.crop_min: must be in (0, 1], got {self.crop_min}")
        self.net.validate(f"{section}.net")


def roll_time(xb: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circular shift of each image (B, 1, F, T) along time by its own amount, in one gather."""
    b, c, nf, nt = xb.shape
    cols = (torch.arange(nt).view(1, 1, 1, nt) - shifts.view(b, 1, 1, 1)) % nt
    return xb.gather(3, cols.expand(b, c, nf, nt).to(xb.device))


def classic_augment(xb: torch.Tensor, gen: torch.Generator, cfg: FitConfig) -> torch.Tensor:
    """What a user tries first: random circular time shift, random time crop resized back, additive noise.

    xb (B, 1, F, T) in [-1, 1]; vectorised over the batch (no per-sample Python).
    """
    b, _, nf, nt = xb.shape
    x = roll_time(xb, torch.randint(0, nt, (b,), generator=gen))
    keep = cfg.crop_min + (1 - cfg.crop_min) * torch.rand(b, generator=gen)
    start = (1 - keep) * torch.rand(b, generator=gen)
    # affine grid: sample time positions [start, start + keep] of each image onto the full width
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = keep
    theta[:, 0, 2] = 2 * start + keep - 1
    theta[:, 1, 1] = 1.0
    grid = F.affine_grid(theta, list(x.shape), align_corners=False).to(xb.device)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x + 2 * cfg.noise_std * torch.randn(x.shape, generator=gen).to(xb.device)


def fit_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int, cfg: FitConfig, seed: int,
                   augment: bool = False, device: torch.device | str = "cpu", extra: "ExtraSet | None" = None,
                   model: SpectrogramClassifier | None = None, head_only: bool = False) -> SpectrogramClassifier:
    """Train a classifier on (x in [-1, 1], y) with a fixed budget; seeded; -> model in eval mode.

    A fresh one (its initial weights depend on `seed` alone: the same for every arm of a paired comparison), or
    `model` trained further (all of it, or its head alone). `extra` mixes extra images into each batch (see
    ExtraSet); classic augmentation applies to the real images only. The real batches depend on (len(x), seed)
    alone, so arms that differ only in their extra images see the same real images at every step."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = (model or SpectrogramClassifier(cfg.net, n_classes)).to(device)
    params = trainable(model, head_only)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused_adamw(device))
    optim = OptimConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps)
    model.train()
    bs = min(cfg.batch_size, len(x))
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, optim)
        idx = torch.from_numpy(batch_indices(len(x), bs, step, seed))
        xb, yb = x[idx].to(device), y[idx].to(device)
        if augment:
            xb = classic_augment(xb, gen, cfg)
        w = None
        if extra is not None:
            xb, yb, w = extra.mix(xb, yb, step, bs)
        loss = weighted_cross_entropy(model(xb), yb, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


def trainable(model: SpectrogramClassifier, head_only: bool) -> list[torch.nn.Parameter]:
    """The parameters to optimise: all, or the head alone (the rest frozen)."""
    for p in model.parameters():
        p.requires_grad_(not head_only)
    for p in model.head.parameters():
        p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def fresh_head(model: SpectrogramClassifier, n_classes: int, seed: int) -> SpectrogramClassifier:
    """Replace the head by a new, seeded one for `n_classes` classes (fine-tuning on other classes)."""
    torch.manual_seed(np.random.SeedSequence([seed, 37]).generate_state(1)[0])
    model.head = torch.nn.Linear(model.head.in_features, n_classes).to(model.head.weight.device)
    return model


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy averaged with per-image weights (None: the plain mean)."""
    if w is None:
        return F.cross_entropy(logits.float(), y)
    ce = F.cross_entropy(logits.float(), y, reduction="none")
    return (ce * w).sum() / w.sum().clamp_min(1e-12)


class ExtraSet:
    """Extra images (x in [-1, 1], labels in the real data's class order) mixed into real batches, seeded per step
    (a resumed run mixes exactly as an uninterrupted one)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, opts: ExtraOptions, seed: int):
        self.x, self.y, self.opts, self.seed = x, y, opts, seed
        self.by_class = {int(c): torch.nonzero(y == c).flatten() for c in torch.unique(y)}

    def mix(self, xb: torch.Tensor, yb: torch.Tensor, step: int, batch_size: int, stream: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (images, labels, loss weights): the real batch with some images swapped (prob), and
        round(ratio * batch_size) extra images appended (ratio). `stream`: the torchrun rank (each its own draw)."""
        o = self.opts
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 31, step] + ([stream] if stream else [])))
        w = torch.ones(len(xb), device=xb.device)
        if o.prob > 0:
            xb, yb = xb.clone(), yb
            swap = rng.random(len(xb)) < o.prob
            for i in np.flatnonzero(swap):
                pool = self.by_class.get(int(yb[i]))
                if pool is not None and len(pool):
                    xb[i] = self.x[pool[int(rng.integers(len(pool)))]].to(xb.device)
                    w[i] = o.weight
        k = int(round(o.ratio * batch_size))
        if k > 0:
            idx = torch.from_numpy(rng.choice(len(self.x), k, replace=k > len(self.x)))
            xb = torch.cat([xb, self.x[idx].to(xb.device)])
            yb = torch.cat([yb, self.y[idx].to(yb.device)])
            w = torch.cat([w, torch.full((k,), o.weight, device=xb.device)])
        return xb, yb, w
