"""What every trainer's step loop shares: seeded batches (a permutation per epoch from the seed, so any step is
reproducible on resume), the learning rate (warm-up, then constant or cosine), Ctrl-C at step boundaries and
the divergence check.
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from mdcli.errors import MdcliError
from mdcli.stages import OptimConfig


def lr_at(step: int, cfg: OptimConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of batch `step`: epochs are seeded permutations, so any step is reproducible on resume."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 11, epoch])).permutation(n)
    return perm[k * batch_size : (k + 1) * batch_size]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size)


class StepBoundaryInterrupt:
    """Ctrl-C takes effect between training steps, so the checkpoint written on the way out is a state the
    resumed run continues from exactly. SIGINT only sets `pending`; the loop calls `check()` after a
    complete step, which raises KeyboardInterrupt there with `clean` set (checkpoint the steps done). A
    second Ctrl-C interrupts at once, mid-step: nothing new is written, the last checkpoint stays."""

    def __init__(self) -> None:
        self.pending = self.clean = False
        self._previous = None

    @classmethod
    def install(cls) -> "StepBoundaryInterrupt":
        self = cls()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def check(self) -> None:
        if self.pending:
            self.clean = True
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def batches(x: torch.Tensor, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    for i in range(0, len(x), batch_size):
        yield i, x[i : i + batch_size]


def check_finite(loss: torch.Tensor, step: int, ckpt: Path) -> None:
    if not torch.isfinite(loss):
        kept = f"; the last good checkpoint is {ckpt} (--resume)" if ckpt.exists() else ""
        raise MdcliError(f"training diverged: loss is {float(loss.detach())} at step {step}{kept}; lower train.lr or raise train.warmup_steps")


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params, grad_clip: float, step: int, ckpt: Path,
                   backward=None) -> None:
    """One update: refuse a non-finite loss (check_finite), clear the gradients, backpropagate (`backward()` when
    given, else `loss.backward()`), clip the gradient norm of `params` to `grad_clip` (0 = no clipping), step."""
    check_finite(loss, step, ckpt)
    opt.zero_grad(set_to_none=True)
    backward() if backward is not None else loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
