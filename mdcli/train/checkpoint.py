"""HDF5 checkpoints (`OUTPUT.ckpt`, kind `checkpoint`) holding everything an exact `--resume` needs: weights,
optimiser states, the torch RNG state and the step; `open_run` starts a run afresh or from its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from mdcli.artifacts import atomic_h5, open_artifact, read_header, write_header
from mdcli.errors import ArtifactError, ConfigError
from mdcli.train.distributed import is_main
from mdcli.train.logs import JsonlLog, log_path


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
                    optimizers: dict[str, torch.optim.Optimizer], parents: list[dict] | None = None,
                    input_keys: tuple[str, ...] = ()) -> tuple[int, dict]:
    """Restore modules, optimisers and RNG; refuses a checkpoint made with another config or, given the run's
    `parents`, from other input files (compared by content hash, so a moved folder still resumes). `input_keys`:
    dotted config keys that hold the path of an input among `parents` (compared there by content, not as text)."""
    with open_artifact(path, "checkpoint") as f:
        saved = f.attrs["config"]
        saved = saved.decode() if isinstance(saved, bytes) else saved
        difference = _first_difference(saved, config_yaml, input_keys if parents is not None else ())
        if difference is not None:
            raise ArtifactError(f"{path}: checkpoint was made with a different config ({difference}); "
                                "resume with the same options")
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


def _first_difference(saved: str, current: str, ignore: tuple[str, ...] = ()) -> str | None:
    """The first config key whose value differs, as 'key: SAVED then, NOW now' (dotted for nested sections);
    None when the configs agree but for train.steps (which may grow on resume) and the `ignore`d keys."""
    import yaml

    def flat(d, prefix=""):
        out = {}
        for k, v in (d or {}).items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(yaml.safe_load(saved)), flat(yaml.safe_load(current))
    shown = lambda d, k: d[k] if k in d else "(absent)"  # noqa: E731
    for key in list(a) + [k for k in b if k not in a]:
        if key == "train.steps" or key in ignore:
            continue
        if (key in a) != (key in b) or a.get(key) != b.get(key):
            return f"{key}: {shown(a, key)} then, {shown(b, key)} now"
    return None


def open_run(output: Path, resume: bool, config_yaml: str, modules: dict, optimizers: dict,
             log, extra: dict, progress=None, parents: list[dict] | None = None,
             input_keys: tuple[str, ...] = ()) -> tuple[Path, JsonlLog, int, dict]:
    """Checkpoint path, metrics log, start step and saved extras: resumed from OUTPUT.ckpt (made with the same
    config from the same `parents`), or fresh.

    A resumed run moves the progress bar (`progress(n, completed=...)`) to its start step.
    """
    ckpt = checkpoint_path(output)
    jsonl = JsonlLog(log_path(output) if is_main() else None)
    if resume and ckpt.exists():
        total = _total_steps(config_yaml)
        start, extra = load_checkpoint(ckpt, config_yaml, modules, optimizers, parents, input_keys)
        if total is not None and start > total:  # the artifact would record fewer steps than its weights had
            raise ConfigError(f"--steps {total}: below the checkpoint's step {start} ({ckpt}); resume with at "
                              f"least {start}, or drop --resume to start afresh")
        log(f"resumed from {ckpt} at step {start}")
        jsonl.keep_until(start)
        if progress is not None:
            progress(0, completed=start)
        return ckpt, jsonl, start, extra
    if resume:
        _check_complete(output, config_yaml, parents, input_keys)
        log(f"--resume: no checkpoint {ckpt}; starting afresh")
    if jsonl.path is not None and jsonl.path.exists():
        jsonl.path.unlink()
    return ckpt, jsonl, 0, extra


def _check_complete(output: Path, config_yaml: str, parents: list[dict] | None, input_keys: tuple[str, ...]) -> None:
    """Raise RunComplete when `output` is this run already finished: the same config (train.steps included) from
    the same inputs. A finished run removes its checkpoint, so without this `--resume` trained it again from
    step 0 and replaced the output."""
    from mdcli.errors import RunComplete

    if parents is None:
        return
    try:
        with h5py.File(output, "r") as f:
            header = read_header(f)
        saved = header["config"]
        if not saved or _first_difference(saved, config_yaml, input_keys) is not None:
            return
        if _total_steps(saved) != _total_steps(config_yaml):
            return
        if [p["sha256"] for p in header["parents"]] != [p["sha256"] for p in parents]:
            return
    except Exception:  # noqa: BLE001 - an unreadable or damaged output is not a finished run: train afresh
        return
    raise RunComplete(f"{output}: already trained with this config and these inputs (no checkpoint left); nothing to "
                      "resume, the file is unchanged")


def _total_steps(config_yaml: str) -> int | None:
    """The run's train.steps (None where the config has no train section with steps)."""
    import yaml

    train = (yaml.safe_load(config_yaml) or {}).get("train")
    return int(train["steps"]) if isinstance(train, dict) and "steps" in train else None


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")
