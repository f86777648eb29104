"""What the command groups share: the consoles, the option types, the user-error path (`user_errors`), the
output guard (`writes`), and the checks and writers every command calls."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from mdcli.errors import MdcliError
from mdcli.jsonio import strict_json

console = Console()
err_console = Console(stderr=True)

SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Train/validation split: random | blocked (contiguous recording runs held out; use for measured data).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file (see configs/).")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key, e.g. --set radar.prf_hz=8000 (repeatable)."),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and write nothing.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output that is not of the kind this command writes.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")]
PlotDirOpt = Annotated[Optional[Path], typer.Option("--plot", file_okay=False, help="Write PNG figures into this folder.")]
CompileOpt = Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the training forward (GPU; the first steps compile).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint beside the output (OUTPUT.ckpt).")]
StepsOpt = Annotated[Optional[int], typer.Option(help="Optimiser steps.")]
StopAfterOpt = Annotated[
    Optional[int],
    typer.Option("--stop-after", min=1, help="Train at most this many steps in this run, checkpoint, and exit (for time-sliced jobs)."),
]

FilterOpt = Annotated[Optional[list[str]], typer.Option("--filter", help="Drop generated samples: confidence:CLF[,min=0.5] | novelty:CLF[,quantile=0.05] | kinematic[:margin=0.25] (repeatable; train=PATH sets the reference data).")]
SamplerOpt = Annotated[Optional[str], typer.Option(help="ddpm | ddim | dpmpp-2m | dpmpp-2m-sde")]
EtaOpt = Annotated[Optional[float], typer.Option(help="DDIM noise: 0 deterministic, 1 = DDPM posterior.")]
CfgScaleOpt = Annotated[Optional[float], typer.Option("--cfg-scale", help="Classifier-free guidance scale (1: off).")]

# The options many commands share, by parameter name: a command lists them as plain parameters
# (`config=None, set_=None, quiet=False`) and `@shared_options` gives each its declaration here.
SHARED_OPTIONS = {"config": ConfigOpt, "set_": SetOpt, "dry_run": DryRunOpt, "quiet": QuietOpt, "force": ForceOpt,
                  "as_json": JsonOpt, "plot_dir": PlotDirOpt, "split": SplitOpt, "compile_": CompileOpt,
                  "resume": ResumeOpt, "stop_after": StopAfterOpt, "steps": StepsOpt, "sampler": SamplerOpt, "eta": EtaOpt,
                  "cfg_scale": CfgScaleOpt, "filter_": FilterOpt}


def shared_options(fn):
    """Annotate each unannotated parameter of a command with its option from SHARED_OPTIONS (in place, so the order
    of the options in `-h` stays the order of the parameters); an unannotated parameter of another name is a
    programming error, raised at import."""
    import inspect

    inner = inspect.unwrap(fn)
    for p in inspect.signature(inner).parameters.values():
        if p.annotation is inspect.Parameter.empty:
            if p.name not in SHARED_OPTIONS:
                raise TypeError(f"{inner.__name__}: parameter '{p.name}' has no annotation and is not a shared option")
            inner.__annotations__[p.name] = SHARED_OPTIONS[p.name]
    return fn


def command(group: typer.Typer, name: str | None = None, prefix: str = "", **kwargs):
    """Register a command on `group` (`name` and the other arguments of `Typer.command`; `prefix` names the command
    group of a subcommand, e.g. "diagnose") with its shared options, its examples from mdcli/cli/examples.py as the
    `-h` epilog, and the user-error path: MdcliError is one line and exit 2."""
    from mdcli.cli.examples import epilog

    def deco(fn):
        leaf = name or fn.__name__.lower().replace("_", "-")  # Typer's name for a command named by its function
        full = f"{prefix} {leaf}" if prefix else leaf
        return group.command(name, epilog=epilog(full), **kwargs)(user_errors(shared_options(fn)))

    return deco


def user_errors(fn):
    """Turn MdcliError into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MdcliError as e:
            from rich.markup import escape

            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # "[low, high]" stays
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted; no output written[/]")
            raise typer.Exit(130) from None

    return wrapper


# Options that name what a command writes; every other path option is one of its inputs.
OUTPUT_OPTIONS = {"output": "--output", "train_out": "--train-out", "test_out": "--test-out", "preview": "--preview",
                  "keep": "--keep", "json_out": "--json-out", "md_out": "--md-out",
                  "rest": "--rest"}
NOT_INPUTS = {"plot_dir", "baseline_cache", "run"}  # folders a command writes into, or reads and writes


def writes(**kinds):
    """Guard a command's outputs: `@writes(output="spectrograms", preview="png")` names each output option and the
    kind it writes (a callable of the options for kinds that depend on them). Before the command runs, an output
    equal to any input, two equal outputs, or an existing output of another kind (without --force) is one line and
    exit 2; while it runs, each output is locked against a second writer."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from mdcli.outputs import guard_outputs

            if kwargs.get("dry_run"):
                return fn(*args, **kwargs)
            outputs, inputs = {}, {}
            for name, value in kwargs.items():
                if name in kinds and isinstance(value, Path):
                    kind = kinds[name](kwargs) if callable(kinds[name]) else kinds[name]
                    outputs[OUTPUT_OPTIONS.get(name, name)] = (value, kind)
                elif name not in NOT_INPUTS and name not in OUTPUT_OPTIONS:
                    paths = value if isinstance(value, list) else [value]
                    for i, p in enumerate(paths):
                        if isinstance(p, Path) and p.is_file():
                            opt = "--" + name.replace("_", "-").rstrip("-")
                            inputs[opt if len(paths) == 1 else f"{opt}[{i}]"] = p
            with guard_outputs(outputs, inputs, bool(kwargs.get("force"))):
                return fn(*args, **kwargs)

        return wrapper

    return deco



def _output_path(path: Path, option: str = "--output") -> Path:
    if path.exists() and path.is_dir():
        raise MdcliError(f"{option} {path}: is a folder, expected a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path



def _print_config(text: str) -> None:
    from rich.syntax import Syntax

    console.print(Syntax(text, "yaml", background_color="default"))



def _check_input(path: Path, option: str) -> None:
    if not path.exists():
        raise MdcliError(f"{option} {path}: file not found")


def _require(path: Path, kind: str, option: str | None = None) -> None:
    """Fail early (one line, exit 2) unless `path` is a readable artifact of `kind`; the message starts with
    `option` when given (which option named the wrong file)."""
    from mdcli.artifacts import open_artifact

    try:
        with open_artifact(path, kind):
            pass
    except MdcliError as e:
        if option is None:
            raise
        raise type(e)(f"{option} {e}") from None



def _write_json(report: dict, default=float) -> None:
    """`--json` output: strict JSON (see strict_json); `default` converts what JSON has no type for."""
    sys.stdout.write(json.dumps(strict_json(report, default), indent=2, allow_nan=False) + "\n")


def _write_json_file(report: dict, path: Path, option: str = "--json-out") -> None:
    """`--json-out FILE`: the `--json` report written to `path` atomically (a killed run leaves no half file)."""
    from mdcli.artifacts import atomic_path

    with atomic_path(_output_path(path, option)) as tmp:
        tmp.write_text(json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n")
