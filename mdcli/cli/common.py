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
                  "keep": "--keep", "json_out": "--json-out", "md_out": "--md-out"}
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


ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output that is not of the kind this command writes.")]


def _output_path(path: Path) -> Path:
    if path.exists() and path.is_dir():
        raise MdcliError(f"--output {path}: is a folder, expected a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path



def _print_config(text: str) -> None:
    from rich.syntax import Syntax

    console.print(Syntax(text, "yaml", background_color="default"))



def _check_input(path: Path, option: str) -> None:
    if not path.exists():
        raise MdcliError(f"{option} {path}: file not found")


def _require(path: Path, kind: str) -> None:
    """Fail early (one line, exit 2) unless `path` is a readable artifact of `kind`."""
    from mdcli.artifacts import open_artifact

    with open_artifact(path, kind):
        pass



def _write_json(report: dict, default=float) -> None:
    """`--json` output: strict JSON (see strict_json); `default` converts what JSON has no type for."""
    sys.stdout.write(json.dumps(strict_json(report, default), indent=2, allow_nan=False) + "\n")
