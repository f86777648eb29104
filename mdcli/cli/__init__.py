"""The `mdcli` command line: thin Typer commands that validate, call the library, and report.

User errors (bad files, options, configs) print one line and exit with code 2.

The commands live in one module per group, each with its own Typer whose commands join the root app
under their own names: `data.py` (simulate, merge, import, export, split, subset, info, plot), `train.py`
(train-classifier, classify, train-ae, train-ldm), `generate.py` (encode, sample, augment), `diagnose.py` (the
`diagnose` sub-app and `report`) and `study.py`; `common.py` holds what they share.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from mdcli import __version__
from mdcli.cli import data, diagnose, generate, study, train
from mdcli.cli.common import console, err_console

# The order of `mdcli -h`: the pipeline, then the data tools, then the diagnostics and the study.
COMMAND_ORDER = ["simulate", "info", "plot", "train-classifier", "classify", "train-ae", "encode", "train-ldm", "sample", "augment",
                 "import", "export", "merge", "split", "subset", "report", "diagnose", "study"]


class _Commands(TyperGroup):
    """The root group: lists its commands in COMMAND_ORDER (the groups register them module by module)."""

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: COMMAND_ORDER.index(n) if n in COMMAND_ORDER else len(COMMAND_ORDER))


app = typer.Typer(
    name="mdcli",
    cls=_Commands,
    help="Radar micro-Doppler data augmentation: simulate, train autoencoders and latent diffusion, diagnose.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for _group in (data.group, train.group, generate.group, diagnose.group, study.group):
    app.add_typer(_group)  # no name: the group's commands join the root under their own names


def _version(value: bool) -> None:
    if value:
        console.print(f"mdcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """mdcli: physics-based micro-Doppler simulation and two-stage generative augmentation.

    Each command reads and writes HDF5 artifacts:
    simulate -> data.h5 -> train-ae -> ae.h5 -> encode -> latents.h5 -> train-ldm -> ldm.h5 -> sample -> samples.h5
    """


def run(argv: Optional[list[str]] = None) -> int:
    """Run `mdcli ARGV` and return its exit code. Click's usage errors (an unknown option, a value of the wrong
    type, a missing option) become one line naming the command and option, exit code 2, like every other user
    error; Typer would print its usage block and a boxed message instead."""
    try:  # Typer >= 0.22 vendors click; older releases use the click package
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:
        from click.exceptions import ClickException, UsageError

    from mdcli.allocator import keep_freed_memory

    keep_freed_memory()
    previous = _term_as_interrupt()
    try:
        rv = app(args=argv, prog_name="mdcli", standalone_mode=False)
    except ClickException as e:
        where = e.ctx.command_path if getattr(e, "ctx", None) is not None else "mdcli"
        message = " ".join(e.format_message().split())
        hint = f" (see '{where} -h')" if isinstance(e, UsageError) else ""
        if message:  # a bare `mdcli` has printed its help already (no_args_is_help)
            err_console.print(f"[bold red]error:[/] {where}: {message}{hint}", highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Abort:
        err_console.print("[yellow]interrupted; no output written[/]")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    # without standalone mode, click returns typer.Exit's code instead of exiting with it
    return rv if isinstance(rv, int) else 0


def _term_as_interrupt():
    """SIGTERM (a batch scheduler's time limit, `timeout`, `docker stop`) ends a run as Ctrl-C does: a trainer
    checkpoints at the next step boundary, temp files and output locks are removed on the way out. Without this
    the process died at once and left its lock, which a rerun on another host cannot tell from a live one.
    Returns the previous handler (None off the main thread, where signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        return None  # (a wrapper that ignores SIGTERM on purpose keeps it ignored)

    def on_term(signum, frame):
        handler = signal.getsignal(signal.SIGINT)  # the step-boundary handler while a trainer runs
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, on_term)


def main(argv: Optional[list[str]] = None) -> None:
    """The entry point (`mdcli`, `python -m mdcli`): run the command and exit with its code."""
    sys.exit(run(argv))
