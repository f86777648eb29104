"""User-facing errors: anything the user can fix raises `MdcliError`.

The CLI prints the message on one line and exits with code 2, without a traceback.
"""


class MdcliError(Exception):
    """An error caused by the user's input (file, option, config), with an actionable message."""


class ConfigError(MdcliError):
    """A config file, `--set` override or option value is invalid."""


class ArtifactError(MdcliError):
    """An HDF5 artifact is missing, unreadable, truncated, of the wrong kind or too new."""


class RunComplete(Exception):
    """`--resume` of a training run whose output is already written with the same config and inputs: nothing to
    do (exit 0, the output untouched); a job loop that resubmits with --resume ends instead of retraining."""
