"""Training habits shared by train-ae and train-classifier (and train-ldm later).

Deterministic batches (a permutation per epoch from the seed), warm-up learning rate,
EMA of weights, JSONL metrics, and HDF5 checkpoints holding everything needed for an
exact `--resume`: weights, optimiser states, the torch RNG state and the step.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch
from torch import nn

from mdcli.artifacts import atomic_h5, atomic_path, open_artifact, read_header, write_header
from mdcli.errors import ArtifactError, ConfigError, MdcliError
from mdcli.stages import OptimConfig


def fused_adamw(device: torch.device) -> bool:
    """AdamW's fused kernel runs on CUDA and on CPUs (torch >= 2.4): one pass over all parameters instead of
    a loop of small ops per tensor (the demo's LDM: 1.6 ms a step against 9.0 ms on a 2-core AMD EPYC)."""
    return torch.device(device).type in ("cuda", "cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware: a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def resolve_precision(device: torch.device, precision: str) -> str:
    """`train.precision` on `device` -> what the training forward runs in: "bf16" (autocast) or "fp32"."""
    if precision == "bf16-native":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The training forward's autocast context for `train.precision` on `device` (see OptimConfig)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(device, precision) == "bf16")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise MdcliError("train.device=cuda: no CUDA device is available")
    if name == "cuda" and world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


# -- distributed data parallel (torchrun) --------------------------------------------------------
# Under `torchrun --nproc_per_node=N -m mdcli train-...` every rank draws the same global batch
# (the seeded permutation), takes its own slice of it, and DDP averages the gradients: the run
# follows a single-process run with the same global batch. Only rank 0 writes artifacts and logs.
def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def dist_setup(device: torch.device, batch_size: int) -> None:
    """Join the process group torchrun describes (NCCL on GPU, gloo on CPU); no-op for one process."""
    import torch.distributed as dist

    n = world_size()
    if n == 1 or dist.is_initialized():
        return
    if batch_size % n:
        raise ConfigError(f"train.batch_size={batch_size}: must be divisible by the {n} ranks (it is the global batch)")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def rank_slice(idx: np.ndarray | torch.Tensor):
    """This rank's contiguous share of a global batch (everything when running alone).

    Contiguous, so that gathering the ranks' rows in rank order restores the global batch.
    """
    n, r = world_size(), rank()
    per = len(idx) // n
    return idx[r * per : (r + 1) * per]


def ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap for gradient averaging across ranks (the module itself when running alone)."""
    if world_size() == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    """torch.compile for the training forward; weights stay shared with `module` (saved as usual)."""
    return torch.compile(module) if enabled else module


def dist_teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def set_threads() -> None:
    """Use the machine's cores for intra-op work unless the user pinned OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))


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


class EMA:
    """Bias-corrected exponential moving average of a model's parameters; buffers are copied.

    After step t (0-based) the average is sum_i d^(t-i) (1-d) w_i / (1 - d^(t+1)) over the weights w_i
    after steps 0..t, as Adam corrects its moments: the random initial weights get no share. Without
    the correction they keep d^steps of it (decay 0.999 over 1200 steps: 30 %, zero-initialised output
    layers shrunk by as much). The step comes from the caller, so a resumed run continues exactly."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = (1.0 - self.decay) / (1.0 - self.decay ** (step + 1))  # 1 at step 0: a copy
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), weight)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


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


class JsonlLog:
    """Append-only metrics log, one JSON object a line (flushed each write)."""

    def __init__(self, path: Path | None):
        self.path = path

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        clean = {k: (float(v) if isinstance(v, (torch.Tensor, np.floating)) else v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")

    def keep_until(self, step: int) -> None:
        """On resume: drop the records written after the checkpoint (the resumed run writes them again) and a
        torn last line of a killed run, so the log stays one record per step."""
        if self.path is None or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line)
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(k + "\n" for k in kept))


def batches(x: torch.Tensor, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    for i in range(0, len(x), batch_size):
        yield i, x[i : i + batch_size]


# -- HDF5 state dicts ------------------------------------------------------------------------

def save_state(group: h5py.Group, state: dict[str, torch.Tensor]) -> None:
    for name, t in state.items():
        group.create_dataset(name, data=t.detach().cpu().float().numpy() if t.is_floating_point() else t.detach().cpu().numpy())


def load_state(group: h5py.Group, like: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    out = {}
    for name, ds in group.items():
        t = torch.from_numpy(np.asarray(ds[()]))
        if like is not None and name in like:
            t = t.to(like[name].dtype).reshape(like[name].shape)
        out[name] = t
    return out


def save_optimizer(group: h5py.Group, opt: torch.optim.Optimizer) -> None:
    sd = opt.state_dict()
    group.attrs["param_groups"] = json.dumps(sd["param_groups"])
    st = group.create_group("state")
    for pid, entries in sd["state"].items():
        g = st.create_group(str(pid))
        for k, v in entries.items():
            g.create_dataset(k, data=v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v))


def load_optimizer(group: h5py.Group, opt: torch.optim.Optimizer) -> None:
    state = {}
    for pid, g in group["state"].items():
        state[int(pid)] = {k: torch.from_numpy(np.asarray(ds[()])) for k, ds in g.items()}
    opt.load_state_dict({"state": state, "param_groups": json.loads(group.attrs["param_groups"])})


def save_checkpoint(path: Path, config_yaml: str, seed: int, parents: list[dict], step: int,
                    modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], extra: dict) -> None:
    """Everything for an exact resume, written atomically (kind `checkpoint`); rank 0 only."""
    if not is_main():
        return
    with atomic_h5(path) as f:
        write_header(f, "checkpoint", config_yaml, seed, parents)
        f.attrs["step"] = int(step)
        f.attrs["extra"] = json.dumps(extra)
        for name, m in modules.items():
            save_state(f.create_group(f"modules/{name}"), m.state_dict())
        for name, o in optimizers.items():
            save_optimizer(f.create_group(f"optimizers/{name}"), o)
        f.create_dataset("rng/torch", data=torch.get_rng_state().numpy())
        if torch.cuda.is_available():
            f.create_dataset("rng/cuda", data=torch.cuda.get_rng_state().numpy())


def load_checkpoint(path: Path, config_yaml: str, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], parents: list[dict] | None = None) -> tuple[int, dict]:
    """Restore modules, optimisers and RNG; refuses a checkpoint made with another config or, given the run's
    `parents`, from other input files (compared by content hash, so a moved folder still resumes)."""
    with open_artifact(path, "checkpoint") as f:
        saved = f.attrs["config"]
        saved = saved.decode() if isinstance(saved, bytes) else saved
        if _strip_steps(saved) != _strip_steps(config_yaml):
            raise ArtifactError(f"{path}: checkpoint was made with a different config; resume with the same options")
        if parents is not None:
            _check_parents(path, read_header(f)["parents"], parents)
        for name, m in modules.items():
            m.load_state_dict(load_state(f[f"modules/{name}"], m.state_dict()))
        for name, o in optimizers.items():
            load_optimizer(f[f"optimizers/{name}"], o)
        torch.set_rng_state(torch.from_numpy(f["rng/torch"][()]))
        if torch.cuda.is_available() and "rng/cuda" in f:
            torch.cuda.set_rng_state(torch.from_numpy(f["rng/cuda"][()]))
        return int(f.attrs["step"]), json.loads(f.attrs["extra"])


def _check_parents(path: Path, saved: list[dict], current: list[dict]) -> None:
    """A resumed run must continue on the inputs it started from: the artifact's lineage would otherwise name
    files its weights were only partly trained on."""
    changed = [c["path"] for s, c in zip(saved, current) if s["sha256"] != c["sha256"]]
    if changed or len(saved) != len(current):
        what = changed[0] if changed else ", ".join(c["path"] for c in current)
        raise ArtifactError(f"{path}: checkpoint was trained on other inputs ({what} is not the file it started "
                            "from); resume with the same input files, or drop --resume to start afresh")


def _strip_steps(config_yaml: str) -> str:
    """The total step count may grow on resume; everything else must match."""
    return "\n".join(line for line in config_yaml.splitlines() if not line.strip().startswith("steps:"))


def open_run(output: Path, resume: bool, config_yaml: str, modules: dict, optimizers: dict,
             log, extra: dict, progress=None, parents: list[dict] | None = None) -> tuple[Path, JsonlLog, int, dict]:
    """Checkpoint path, metrics log, start step and saved extras: resumed from OUTPUT.ckpt (made with the same
    config from the same `parents`), or fresh.

    A resumed run moves the progress bar (`progress(n, completed=...)`) to its start step.
    """
    ckpt = checkpoint_path(output)
    jsonl = JsonlLog(log_path(output) if is_main() else None)
    if resume and ckpt.exists():
        start, extra = load_checkpoint(ckpt, config_yaml, modules, optimizers, parents)
        log(f"resumed from {ckpt} at step {start}")
        jsonl.keep_until(start)
        if progress is not None:
            progress(0, completed=start)
        return ckpt, jsonl, start, extra
    if jsonl.path is not None and jsonl.path.exists():
        jsonl.path.unlink()
    return ckpt, jsonl, 0, extra


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


def log_path(output: Path) -> Path:
    return output.with_name(output.stem + ".metrics.jsonl")


def check_finite(loss: torch.Tensor, step: int, ckpt: Path) -> None:
    if not torch.isfinite(loss):
        kept = f"; the last good checkpoint is {ckpt} (--resume)" if ckpt.exists() else ""
        raise MdcliError(f"training diverged: loss is {float(loss.detach())} at step {step}{kept}; lower train.lr or raise train.warmup_steps")
