"""`mdcli classify`: label spectrograms with one trained classifier or an ensemble of several.

An ensemble predicts with the mean of its members' class probabilities: the `--keep ensemble` recipe of
`diagnose gain` (e.g. six pretraining draws, each fine-tuned on the same few measured windows with
`train-classifier --init`), which needs no windows beyond the ones it trains on. When the spectrograms carry labels
among the classifiers' classes, the report scores them: accuracy, macro-F1, per-class recall, the confusion matrix,
and each member alone beside the ensemble. `save_labelled` turns the prediction into a spectrograms file (pseudo-labels:
the predicted class as the label, the probabilities as per-window parameters, optionally only the windows the
ensemble is confident about), which `train-classifier --extra` and every other command read like measured data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import Spectrograms, sha256_file
from mdcli.data.batches import model_images
from mdcli.errors import MdcliError
from mdcli.metrics import macro_f1
from mdcli.models.classifier import class_logits, softmax

BATCH = 128


def load_members(paths: list[Path], shape: tuple[int, int], data_path: Path, device: str) -> tuple[list, list[str]]:
    """The classifiers in `paths` (one set of classes, in one order, all trained on `shape` images), or a one-line
    error naming the file that differs."""
    from mdcli.models.load import load_classifier

    members, names = [], None
    for p in paths:
        model, attrs = load_classifier(p, device)
        if tuple(attrs["image_shape"]) != tuple(shape):
            raise MdcliError(f"--classifier {p}: trained on images {tuple(int(v) for v in attrs['image_shape'])}, "
                             f"{data_path} holds {tuple(shape)}")
        own = [str(c) for c in attrs["class_names"]]
        if names is None:
            names = own
        elif own != names:
            raise MdcliError(f"--classifier {p}: its classes ({', '.join(own)}) differ from {paths[0]}'s "
                             f"({', '.join(names)}); an ensemble averages one set of classes in one order")
        members.append(model)
    return members, names


def classify(data_path: Path, paths: list[Path], min_confidence: float = 0.0, output: Path | None = None) -> dict:
    """Class probabilities of every spectrogram in `data_path` under each classifier in `paths`, their mean (the
    prediction), and, when the file's classes are among the classifiers', the scores. -> the report (JSON-ready).

    min_confidence: the windows whose mean probability of the predicted class reaches it are `kept`; the report
    scores those too (`scored.kept`), so a threshold's precision is measured. output: the kept windows written
    there, pseudo-labelled (`save_labelled`)."""
    if not 0.0 <= min_confidence < 1.0:
        raise MdcliError(f"--min-confidence: in [0, 1) (the mean probability a kept window's predicted class needs), "
                         f"got {min_confidence}")
    if not paths:
        raise MdcliError("--classifier: give one classifier, or several for an ensemble")
    if len(set(map(str, paths))) < len(paths):
        raise MdcliError("--classifier: the same file twice (an ensemble's members are different classifiers)")
    data = Spectrograms.load(data_path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    members, names = load_members(paths, data.spectrograms.shape[1:], data_path, device)
    x = model_images(data)
    probs = np.stack([softmax(class_logits(m, x, BATCH)) for m in members])  # (members, N, classes)
    mean = probs.mean(0)
    pred = mean.argmax(1)
    confidence = mean.max(1)
    kept = confidence >= min_confidence
    report = {
        "data": str(data_path), "data_sha256": sha256_file(data_path),
        "classifiers": [{"path": str(p), "sha256": sha256_file(p)} for p in paths],
        "classes": names, "count": int(len(pred)),
        "predicted": [names[i] for i in pred], "probabilities": mean.tolist(),
        "predicted_counts": {c: int((pred == i).sum()) for i, c in enumerate(names)},
        "min_confidence": float(min_confidence), "kept": int(kept.sum()),
        "kept_counts": {c: int((pred[kept] == i).sum()) for i, c in enumerate(names)},
    }
    if output is not None:
        save_labelled(data, mean, kept, names, report, output)
    own = [str(c) for c in data.class_names]
    outside = [c for c in own if c not in names]
    if outside:
        report["scored"] = {"reason": f"class '{outside[0]}' of {data_path} is not among the classifiers' classes"}
        return report
    y = np.array([names.index(c) for c in own])[data.labels]
    k = len(names)
    confusion = np.zeros((k, k), int)
    np.add.at(confusion, (y, pred), 1)
    present = [i for i in range(k) if (y == i).any()]
    report["scored"] = {
        "accuracy": float((pred == y).mean()), "macro_f1": macro_f1(pred, y, k),
        "recall": {names[i]: float(confusion[i, i] / confusion[i].sum()) for i in present},
        "confusion": confusion.tolist(),  # rows: true class, columns: predicted, in `classes` order
        "members": [float((p.argmax(1) == y).mean()) for p in probs],
        # the windows at or above --min-confidence: how often their pseudo-label is right
        "kept": {"count": int(kept.sum()), "accuracy": float((pred[kept] == y[kept]).mean()) if kept.any() else None},
    }
    return report


def labelled(data: Spectrograms, mean: np.ndarray, kept: np.ndarray, names: list[str]) -> Spectrograms:
    """The `kept` windows of `data`, labelled with the class of highest `mean` probability (in the classifiers' class
    order `names`). params gain `confidence` (that probability), `probability_<class>` for each class, and
    `label_before` (the window's own label in the file's class order, see the attrs `class_names_before`)."""
    out = data.select(np.flatnonzero(kept))
    probs = np.asarray(mean[kept], dtype=np.float64)
    out.params = dict(out.params) | {"confidence": probs.max(1), "label_before": data.labels[kept].astype(np.float64)}
    out.params |= {f"probability_{c}": probs[:, i] for i, c in enumerate(names)}
    out.labels, out.class_names = probs.argmax(1).astype(np.int64), list(names)
    return out


def save_labelled(data: Spectrograms, mean: np.ndarray, kept: np.ndarray, names: list[str], report: dict,
                  output: Path) -> None:
    """Write `labelled(...)` to `output` (atomically), with the classifiers and the threshold as its config and
    the data and the classifiers as its parents; an empty selection is refused (nothing written)."""
    import yaml

    from mdcli.artifacts import parent_record

    if not kept.any():
        raise MdcliError(f"--min-confidence {report['min_confidence']}: no window of {report['data']} reaches it "
                         f"(highest {mean.max():.3f}); nothing written")
    config = yaml.safe_dump({"classify": {"classifiers": [c["path"] for c in report["classifiers"]],
                                          "min_confidence": report["min_confidence"]}}, sort_keys=False)
    parents = [parent_record(report["data"])] + [parent_record(c["path"]) for c in report["classifiers"]]
    labelled(data, mean, kept, names).save(output, config, 0, parents, attrs={
        "class_names_before": json.dumps([str(c) for c in data.class_names]),
        "pseudo_labels": "classify: the mean class probability's argmax"})
