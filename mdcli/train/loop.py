"""What every trainer's step loop shares: seeded batches (a permutation per epoch from the seed, so any step is
reproducible on resume), the learning rate (warm-up, then constant or cosine), the step loop with its checkpoints
and Ctrl-C at step boundaries (`StepLoop`), and the optimiser step with the divergence check.
"""

from __future__ import annotations

import math
import signal
import threading
import time
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


def _any_rank(flag: bool) -> bool:
    """`flag` on any rank of the torchrun process group (the flag itself when running alone). A signal reaches
    the ranks at different moments; a rank that stopped alone would leave the others waiting in the next
    all-reduce (and rank 0, which writes the checkpoint, might be one of them)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


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
        if _any_rank(self.pending):  # under torchrun every rank stops at the same boundary
            self.pending = self.clean = True
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class StepLoop:
    """The step loop every trainer runs, as a context manager:

        with StepLoop(start, total, stop_after, every, checkpoint, closers) as loop:
            for step in loop:
                ...  # one complete step
        if loop.stopped:
            return None

    Steps start..total-1; `--stop-after N` checkpoints at step start + N and ends the loop (`stopped`); a checkpoint
    every `every` steps; Ctrl-C at a step boundary (StepBoundaryInterrupt) checkpoints the steps done and
    re-raises; on the way out the SIGINT handler is restored and each of `closers` closed (prefetchers, readers).
    `checkpoint(at)` writes the state after `at` steps. The body adds the images of each step to `seen`; `rate()`
    is then images per second over all ranks since the loop began."""

    def __init__(self, start: int, total: int, stop_after: int | None, every: int, checkpoint, closers=()) -> None:
        self.start, self.total, self.stop_after, self.every = start, total, stop_after, every
        self.checkpoint, self.closers = checkpoint, closers
        self.step, self.stopped, self.seen = start, False, 0

    def __enter__(self) -> "StepLoop":
        self.interrupt = StepBoundaryInterrupt.install()
        self.t0 = time.perf_counter()
        return self

    def rate(self) -> float:
        from mdcli.train.distributed import world_size

        return self.seen * world_size() / max(1e-9, time.perf_counter() - self.t0)

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.total):
            self.step = step
            if self.stop_after is not None and step - self.start >= self.stop_after:
                self.checkpoint(step)
                self.stopped = True
                return
            yield step
            if (step + 1) % self.every == 0:
                self.checkpoint(step + 1)
            self.interrupt.check()

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is KeyboardInterrupt and self.interrupt.clean:  # at a step boundary: the state after step + 1
                self.checkpoint(self.step + 1)
        finally:
            self.interrupt.restore()
            for c in self.closers:
                c.close()


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
