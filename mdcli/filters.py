"""Filters of generated spectrograms (`augment --filter`, `sample --filter`): drop what would mislead a classifier.

`--filter NAME[:options]`, repeatable, applied in the order given (each sees what the ones before kept):

- `confidence:CLF[,min=0.5]`: keep a sample only if the classifier CLF (trained on the real training data) gives
  the sample's own label a softmax probability of at least `min` (wrongly labelled or unrecognisable samples).
- `novelty:CLF[,quantile=0.05]`: drop near-copies of the reference (real training) images. In CLF's penultimate
  features, d(x) is the Euclidean distance of a sample to its nearest reference image (any class); the
  threshold is the `quantile` of the real-to-real distances (each reference image to its nearest *other*
  reference image). A sample with d(x) <= threshold is dropped: it is closer to a training image than all but
  that share of the training images are to each other.
- `kinematic[:margin=0.25,quantile=0]`: drop samples whose kinematic features (`mdcli.kinematics`: bandwidth,
  period and its strength, outside-torso power share, torso line; in bins and columns on uncalibrated axes)
  fall outside the range spanned by the reference images of their class (percentiles `quantile` and
  100 - `quantile`), widened by `margin` times its width on both sides; a sample without a period fails where
  at least half of its class's reference images have one (`kinematics.within_ranges`); an image with no
  envelope at all (nothing 20 dB above its floor: blank, pure noise) fails where its class's images have one.

Every filter takes `train=PATH`, the reference (real training) spectrograms; `augment` defaults to its `--data`,
`sample` to the LDM's training data found through the lineage (ldm -> latents -> spectrograms).
Everything is checked (files, classes, image sizes, options) by `prepare`, before any generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import Spectrograms, parent_record
from mdcli.errors import ConfigError, MdcliError

FILTERS = {
    "confidence": {"min": 0.5},
    "novelty": {"quantile": 0.05},
    "kinematic": {"margin": 0.25, "quantile": 0.0},
}
NEEDS_CLASSIFIER = ("confidence", "novelty")


@dataclass
class FilterSpec:
    name: str
    text: str  # as given
    classifier: Path | None = None
    train: Path | None = None
    options: dict = field(default_factory=dict)


def parse_filter(text: str) -> FilterSpec:
    """`NAME[:[FILE,]key=value,...]` -> FilterSpec (a one-line error for anything else)."""
    what = f"--filter {text}"
    name, _, rest = text.partition(":")
    name = name.strip()
    if name not in FILTERS:
        raise ConfigError(f"{what}: unknown filter '{name}'; valid: {', '.join(FILTERS)}")
    spec = FilterSpec(name, text, options=dict(FILTERS[name]))
    for part in [p.strip() for p in rest.split(",") if p.strip()]:
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq:
            if name not in NEEDS_CLASSIFIER or spec.classifier is not None:
                raise ConfigError(f"{what}: '{part}' is not key=value (options of {name}: "
                                  f"{', '.join(['train', *FILTERS[name]])})")
            spec.classifier = Path(part)
            continue
        if key == "train":
            spec.train = Path(value)
            continue
        if key == "classifier" and name in NEEDS_CLASSIFIER:
            spec.classifier = Path(value)
            continue
        if key not in FILTERS[name]:
            raise ConfigError(f"{what}: '{key}' is no option of {name} (options: {', '.join(['train', *FILTERS[name]])})")
        try:
            spec.options[key] = float(value)
        except ValueError:
            raise ConfigError(f"{what}: {key} must be a number, got '{value}'") from None
    o = spec.options
    if name in NEEDS_CLASSIFIER and spec.classifier is None:
        raise ConfigError(f"{what}: {name} needs a classifier, e.g. --filter {name}:clf.h5")
    if name == "confidence" and not 0 <= o["min"] <= 1:
        raise ConfigError(f"{what}: min must be in [0, 1], got {o['min']:g}")
    if name == "novelty" and not 0 <= o["quantile"] < 1:
        raise ConfigError(f"{what}: quantile must be in [0, 1), got {o['quantile']:g}")
    if name == "kinematic" and (o["margin"] < 0 or not 0 <= o["quantile"] < 50):
        raise ConfigError(f"{what}: margin must be >= 0 and quantile in [0, 50), got {o['margin']:g}, {o['quantile']:g}")
    return spec


def parse_filters(texts: list[str] | None) -> list[FilterSpec]:
    return [parse_filter(t) for t in (texts or [])]


@dataclass
class Prepared:
    """A filter ready to run: its reference data and classifier loaded and checked."""

    spec: FilterSpec
    reference: Spectrograms
    reference_path: Path
    model: torch.nn.Module | None = None
    model_names: list[str] | None = None
    state: dict = field(default_factory=dict)  # what the filter computes once from the reference

    def parents(self) -> list[dict]:
        out = [parent_record(self.reference_path)]
        if self.spec.classifier is not None:
            out.append(parent_record(self.spec.classifier))
        return out


def prepare(specs: list[FilterSpec], default_train: Path | None, names: list[str], image_shape: tuple[int, int],
            device: torch.device | str = "cpu") -> list[Prepared]:
    """Load and check every filter's inputs before any generation: reference data of the generated classes and
    image size, classifiers of the reference's classes and image size. -> filters ready for `apply`."""
    from mdcli.artifacts import open_artifact
    from mdcli.models.load import load_classifier

    cache: dict[Path, Spectrograms] = {}
    out = []
    for spec in specs:
        what = f"--filter {spec.text}"
        ref_path = spec.train or default_train
        if ref_path is None:
            raise MdcliError(f"{what}: no reference (real training) data found through the lineage; add train=PATH")
        if ref_path not in cache:
            cache[ref_path] = Spectrograms.load(ref_path)
        ref = cache[ref_path]
        if tuple(ref.spectrograms.shape[1:]) != tuple(image_shape):
            raise MdcliError(f"{what}: reference {ref_path} holds {ref.spectrograms.shape[1]}x{ref.spectrograms.shape[2]} "
                             f"images, the generated ones are {image_shape[0]}x{image_shape[1]}")
        missing = [c for c in names if c not in ref.class_names]
        if missing:
            raise MdcliError(f"{what}: class '{missing[0]}' has no images in the reference {ref_path} "
                             f"({', '.join(ref.class_names)})")
        p = Prepared(spec, ref, Path(ref_path))
        if spec.classifier is not None:
            with open_artifact(spec.classifier, "classifier"):
                pass
            model, attrs = load_classifier(spec.classifier, device)
            cnames = list(attrs["class_names"])
            if sorted(cnames) != sorted(ref.class_names):
                raise MdcliError(f"{what}: {spec.classifier} knows the classes {', '.join(cnames)}, the data has "
                                 f"{', '.join(ref.class_names)}; use a classifier trained on the real training data")
            if tuple(attrs["image_shape"]) != tuple(image_shape):
                raise MdcliError(f"{what}: {spec.classifier} was trained on {tuple(attrs['image_shape'])} images, "
                                 f"the generated ones are {tuple(image_shape)}")
            p.model, p.model_names = model, cnames
        out.append(p)
    return out


@torch.no_grad()
def _classify(model, x01: np.ndarray, bs: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """-> (penultimate features, softmax probabilities) of images in [0, 1]."""
    from mdcli.data.batches import to_model

    device = next(model.parameters()).device
    feats, probs = [], []
    for i in range(0, len(x01), bs):
        xb = to_model(torch.from_numpy(np.ascontiguousarray(x01[i : i + bs], dtype=np.float32))[:, None]).to(device)
        f = model.embed(xb).float()
        feats.append(f.double().cpu().numpy())
        probs.append(torch.softmax(model.head(f).float(), 1).cpu().numpy())
    if not feats:
        return np.zeros((0, 0)), np.zeros((0, 0))
    return np.concatenate(feats), np.concatenate(probs)


def _labels_in(names_from: list[str], labels: np.ndarray, names_to: list[str]) -> np.ndarray:
    remap = np.array([names_to.index(c) for c in names_from], dtype=np.int64)
    return remap[np.asarray(labels, dtype=np.int64)] if len(labels) else np.zeros(0, np.int64)


def _keep(p: Prepared, data: Spectrograms) -> tuple[np.ndarray, str, dict]:
    """-> (keep mask, the rule in words, numbers behind it) of one filter on `data`."""
    from mdcli import kinematics as kin
    from mdcli.diagnose.stats import nearest_distances

    name, o, ref = p.spec.name, p.spec.options, p.reference
    x = data.spectrograms
    if name == "confidence":
        _, probs = _classify(p.model, x)
        y = _labels_in(data.class_names, data.labels, p.model_names)
        prob = probs[np.arange(len(y)), y] if len(y) else np.zeros(0)
        return prob >= o["min"], f"classifier probability of the own label < {o['min']:g}", {
            "median_probability": float(np.median(prob)) if len(prob) else None}
    if name == "novelty":
        if "threshold" not in p.state:
            f_ref, _ = _classify(p.model, ref.spectrograms)
            d_rr = nearest_distances(f_ref, f_ref, exclude_self=True) if len(f_ref) > 1 else np.zeros(1)
            p.state.update(f_ref=f_ref, threshold=float(np.quantile(d_rr, o["quantile"])))
        thr = p.state["threshold"]
        if not len(x):
            return np.zeros(0, bool), "", {"threshold": thr}
        f_gen, _ = _classify(p.model, x)
        d = nearest_distances(f_gen, p.state["f_ref"])
        return d > thr, (f"near copy: classifier-feature distance to the nearest training image <= {thr:.4g} "
                         f"(the {o['quantile']:g} quantile of real-to-real distances)"), {
            "threshold": thr, "median_distance": float(np.median(d))}
    # kinematic
    axes = {"doppler": ref.doppler_hz, "time": ref.time_s, "calibrated": ref.axes_calibrated,
            "dynamic_range_db": float(ref.dynamic_range_db)}
    if "ranges" not in p.state:
        q = o["quantile"]
        p.state["ranges"] = kin.class_ranges(kin.features(ref.spectrograms, **axes), ref.labels,
                                             len(ref.class_names), (q, 100.0 - q))
    if not len(x):
        return np.zeros(0, bool), "", {}
    k = kin.features(x, **axes)
    y = _labels_in(data.class_names, data.labels, list(ref.class_names))
    ranges = p.state["ranges"]
    ok = kin.within_ranges(k, y, ranges, margin=o["margin"])
    # within_ranges skips undefined features; an image with no envelope at all (nothing above the level: blank or
    # pure noise) has none defined, so it fails wherever the class's real images have a bandwidth
    has_env = np.array([np.isfinite(ranges[int(c)]["bandwidth"][0]) for c in y], bool)
    no_env = ~np.isfinite(k.bandwidth) & has_env
    return ok & ~no_env, (f"kinematic features outside the class's real range (+-{o['margin']:g} of its width), "
                          "no envelope, or no period where the class has one"), {"no_envelope": int(no_env.sum())}


def apply(filters: list[Prepared], data: Spectrograms) -> tuple[np.ndarray, list[dict]]:
    """Run the filters in order on `data` -> (indices kept, one report per filter: checked, dropped, why)."""
    keep = np.arange(len(data))
    reports = []
    for p in filters:
        sub = data.select(keep)
        ok, why, numbers = _keep(p, sub)
        dropped_by_class = {c: int(((sub.labels == i) & ~ok).sum()) for i, c in enumerate(data.class_names)
                            if ((sub.labels == i) & ~ok).any()}
        reports.append({"filter": p.spec.name, "spec": p.spec.text, "options": dict(p.spec.options),
                        "reference": str(p.reference_path),
                        "classifier": str(p.spec.classifier) if p.spec.classifier else None,
                        "checked": int(len(sub)), "dropped": int((~ok).sum()), "dropped_per_class": dropped_by_class,
                        "reason": why, **numbers})
        keep = keep[ok]
    return keep, [_finite(r) for r in reports]


def _finite(obj):
    """Strict JSON values: a non-finite number becomes None."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def print_table(console, reports: list[dict], total: int) -> None:
    from rich.table import Table

    table = Table(title=f"filters ({total} generated)")
    for col in ("filter", "checked", "dropped", "kept", "why dropped"):
        table.add_column(col, justify="right" if col in ("checked", "dropped", "kept") else "left")
    for r in reports:
        table.add_row(r["spec"], str(r["checked"]), str(r["dropped"]), str(r["checked"] - r["dropped"]), r["reason"])
    console.print(table)


def check_filter_files(prepared: list[Prepared], output: Path) -> None:
    """A filter's classifier or reference data may not be the output."""
    from mdcli.outputs import check_outputs

    inputs = {}
    for i, p in enumerate(prepared):
        inputs[f"--filter {p.spec.text} (reference)"] = p.reference_path
        if p.spec.classifier is not None:
            inputs[f"--filter {p.spec.text} (classifier)"] = p.spec.classifier
    check_outputs({"--output": (output, None)}, inputs)


def ldm_training_data(ldm_path: Path) -> Path | None:
    """The spectrograms an LDM was trained on, through its lineage (ldm -> latents -> spectrograms), if unchanged."""
    from mdcli.artifacts import parent_of

    lat = parent_of(Path(ldm_path), "latents")
    return parent_of(lat, "spectrograms") if lat is not None else None


def prepare_for_sample(texts: list[str], cfg, ldm_path: Path, output: Path) -> list[Prepared]:
    """`sample --filter`: parse and prepare the filters against the LDM's classes and image size."""
    from mdcli.artifacts import load_model

    specs = parse_filters(texts)
    _, attrs, _ = load_model(ldm_path, "ldm")
    names = list(cfg.classes or attrs["class_names"])
    shape = (len(attrs["doppler_hz"]), len(attrs["time_s"]))
    default = ldm_training_data(ldm_path) if any(s.train is None for s in specs) else None
    prepared = prepare(specs, default, names, shape)
    check_filter_files(prepared, output)
    return prepared


def check_kept(keep: np.ndarray, reports: list[dict], n: int, what: str) -> None:
    """Refuse to write an empty file: which filter left nothing, and that nothing was written."""
    if len(keep):
        return
    last = next((r["filter"] for r in reports if r["checked"] and r["checked"] == r["dropped"]), None)
    who = f" (the '{last}' filter dropped every one it checked)" if last else ""
    raise MdcliError(f"--filter: the filters kept none of the {n} {what}{who}; nothing written. Loosen a filter "
                     "(e.g. a lower min=) or generate more")


def sample_filtered(cfg, ldm_path: Path, output: Path, ae_path: Path | None, prepared: list[Prepared],
                    progress=None) -> tuple[Spectrograms, list[dict]]:
    """`sample` with filters: generate, drop, write the kept samples with the filter reports in `filters`."""
    import json

    from mdcli.config import to_yaml
    from mdcli.sample import generate

    data, parents, _ = generate(cfg, ldm_path, ae_path, progress, output)
    keep, reports = apply(prepared, data)
    check_kept(keep, reports, len(data), "samples")
    kept = data.select(keep)
    extra = [r for p in prepared for r in p.parents() if r["sha256"] not in {q["sha256"] for q in parents}]
    seen: set[str] = set()
    parents = [r for r in parents + extra if not (r["sha256"] in seen or seen.add(r["sha256"]))]
    kept.save(output, to_yaml(cfg), cfg.seed, parents,  # the config stays SampleConfig's; the filters are in `filters`
              {"filters": json.dumps(reports), "generated_before_filters": int(len(data))})
    return kept, reports
