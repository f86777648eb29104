"""Stage configs: typed dataclasses are the source of truth.

A config is resolved in layers: dataclass defaults < YAML file (`--config`) <
`--set key.sub=value` overrides < explicit command-line options. The resolved
config is stored as YAML text in every artifact the stage writes.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mdcli.errors import ConfigError

T = TypeVar("T")


class _PlainLoader(yaml.SafeLoader):
    """safe_load without anchors and aliases: a config is a small tree, and aliases let a few lines expand into
    billions of nodes (the 'billion laughs' file)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in mdcli configs", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse config YAML: plain values only (no tags, no aliases)."""
    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader subclass


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (lists stay lists)."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def valid_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf option of a config dataclass."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += valid_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a YAML value to the annotated type; raise ConfigError naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_t = args[0] if args else Any
        out = [_coerce(v, item_t, f"{key}[{i}]") for i, v in enumerate(value)]
        return out
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        v = int(value) if isinstance(value, int) else int(f)
        if key.rsplit(".", 1)[-1] == "seed" and not 0 <= v < 2**63:
            raise ConfigError(f"{key}: a seed must be between 0 and 2**63 - 1, got {v}")
        return v
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if not math.isfinite(v):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return v
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported option type {tp}")


def from_dict(cls: type[T], data: dict | None, prefix: str = "", root: type | None = None) -> T:
    """Build a config dataclass from a (partial) nested dict; unknown keys are errors."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys: {', '.join(valid_keys(root or cls))}"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            sub = data[f.name]
            base = _field_default(f)
            if base is not None and isinstance(sub, dict):
                # a partial section fills in from the field's own default (e.g. FitConfig.net's 3 stages), not
                # from the nested class's defaults: `--set fit.net.doppler_bins=8` keeps fit.net.channels
                sub = _merge(to_dict(base), sub)
            kwargs[f.name] = from_dict(tp, sub, f"{key}.", root or cls)
        else:
            kwargs[f.name] = _coerce(data[f.name], tp, key)
    return cls(**kwargs)


def _field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default value (its default_factory called), or None when it has none."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(item: str, cls: type) -> dict:
    """`a.b=v` -> {"a": {"b": v}} with v parsed as YAML; unknown keys list the valid ones."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set radar.prf_hz=4000")
    key, raw = item.split("=", 1)
    key = key.strip()
    keys = valid_keys(cls)
    if key not in keys:
        raise ConfigError(f"--set: unknown key '{key}'; valid keys: {', '.join(keys)}")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


# One YAML file may hold the configs of several stages (configs/demo.yaml), one section each.
SECTIONS = {
    "SimulateConfig": "simulate", "TrainClassifierConfig": "train-classifier", "TrainAEConfig": "train-ae",
    "TrainLDMConfig": "train-ldm", "SampleConfig": "sample", "LatentConfig": "diagnose-latent",
    "CollapseThresholds": "diagnose-collapse", "DiffusabilityConfig": "diagnose-diffusability",
    "GenerationConfig": "diagnose-generation", "GainConfig": "diagnose-gain",
    "study": "study",  # the study's profile: read by mdcli.study itself; listed so a file with it is sectioned
    "AugmentConfig": "augment",
}


def _section(loaded: dict, cls: type, path: Path) -> dict:
    """A multi-stage file (every top-level key a stage name) -> this stage's section."""
    if not loaded or not set(loaded) <= set(SECTIONS.values()):
        return loaded
    name = SECTIONS.get(cls.__name__)
    if name not in loaded:
        raise ConfigError(f"--config {path}: has sections {', '.join(loaded)} but none for '{name}'")
    return loaded[name] or {}


def load_config(
    cls: type[T],
    path: Path | None = None,
    overrides: list[str] | None = None,
    options: dict | None = None,
) -> T:
    """Resolve a stage config: defaults < YAML file < --set overrides < explicit options.

    `options` maps dotted keys to values from explicit CLI flags (None = not given).
    """
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--config {path}: file not found")
        try:
            loaded = load_yaml(path.read_text())
        except (UnicodeDecodeError, OSError) as e:
            raise ConfigError(f"--config {path}: cannot read it as a YAML text file ({type(e).__name__})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            problem = getattr(e, "problem", None)
            raise ConfigError(f"--config {path}: not valid YAML{where}" + (f": {problem}" if problem and "alias" in problem else "")) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: expected a mapping of options at the top level")
        loaded = _section(loaded, cls, path)
        data = loaded
        try:
            from_dict(cls, data)  # validate the file alone so errors name it
        except ConfigError as e:
            raise ConfigError(f"--config {path}: {e}") from None
    for item in overrides or []:
        data = _merge(data, parse_override(item, cls))
    for key, value in (options or {}).items():
        if value is None:
            continue
        node = {}
        parts = key.split(".")
        cur = node
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
        data = _merge(data, node)
    cfg = from_dict(cls, data)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg
