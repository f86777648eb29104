"""`diagnose gain-pool`: one `diagnose gain` report from several run on disjoint seeds.

A replication is often run in batches (six seeds an evening on a laptop, another six the next). Every number of
`diagnose gain` for a seed depends on that seed alone (its subset, its initial weights, its batches), so reports of
the same comparison on disjoint seeds pool exactly: the per-seed values are concatenated and every mean, spread,
t interval, win count and verdict is computed again over all the seeds. Pooling runs `--seeds 2` and
`--first-seed 2 --seeds 1` gives the report of `--seeds 3`, number for number (tested).

Pooled are only reports of the same comparison: the same training and held-out data (by SHA-256), classes, split,
N, fit, arms, starts and what is kept of them; anything else is a one-line refusal naming the report and the key.
"""

from __future__ import annotations

import json
from pathlib import Path

from mdcli.artifacts import sha256_file
from mdcli.diagnose.gain import _spread, paired_gain
from mdcli.errors import MdcliError

# what must be equal for two reports to be one comparison
SAME = ("train_sha256", "test_sha256", "classes", "split", "test_sequence_gap", "per_class", "fit", "starts",
        "choose_on", "keep", "arms")
# lists with one entry per seed (a row's subsets and inits; a row's starts: chosen, and each start's accuracies)
PER_SEED = {"subsets", "inits", "chosen", "accuracy", "accuracy_train", "accuracy_choice"}
# what each seed's generator / autoencoder / classifier saw: the pooled report keeps the most (a star stays a star)
SAW_MOST = {"generator_saw", "generator_saw_outside_subset", "autoencoder_saw", "classifier_saw"}
SAW_MORE = {"generator_saw_more", "autoencoder_saw_more", "classifier_saw_more"}


def read_gain_report(path: Path) -> dict:
    """A `diagnose gain --json` / `--json-out` report, or a one-line error naming the file."""
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MdcliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MdcliError(f"{path}: not a JSON report ({e})") from None
    missing = [k for k in ("results", "seeds", "per_class", "arms", "fits", *SAME) if not isinstance(report, dict)
               or k not in report]
    if missing:
        raise MdcliError(f"{path}: not a diagnose gain report (no {missing[0]!r}; write one with diagnose gain "
                         "--json-out, from this version of mdcli)")
    return report


def _is_spread(d: dict) -> bool:
    """A mean-over-seeds summary (_spread, or paired_gain with its wins and verdict)."""
    return {"mean", "ci95", "values"} <= set(d)


def _pool(parts: list, where: str, key: str = ""):
    """Pool one node of the reports' trees: summaries again over all seeds, per-seed lists joined, the rest equal."""
    if key in SAW_MORE:
        return any(parts)
    if key in SAW_MOST:
        seen = [p for p in parts if p is not None]
        return max(seen) if seen else None
    if all(p is None for p in parts):
        return None
    if all(isinstance(p, dict) for p in parts):
        if _is_spread(parts[0]):
            values = [v for p in parts for v in p["values"]]
            return paired_gain(values) if "wins" in parts[0] else _spread(values)
        odd = [i for i, p in enumerate(parts) if set(p) != set(parts[0])]
        if odd:
            raise _Differs(where, odd[0])
        return {k: _pool([p[k] for p in parts], f"{where}.{k}", k) for k in parts[0]}
    if key in PER_SEED and all(isinstance(p, list) for p in parts):
        return [v for p in parts for v in p]
    odd = [i for i, p in enumerate(parts) if p != parts[0]]
    if odd:
        raise _Differs(where, odd[0])
    return parts[0]


class _Differs(Exception):
    """Where a report (index `which`) differs from the first in a part no seed enters (`where`: its path in the
    report, e.g. results.20.pre.subsets)."""

    def __init__(self, where: str, which: int):
        super().__init__(where)
        self.where, self.which = where, which


def pool_reports(paths: list[Path]) -> dict:
    """The report of all the seeds of `paths` (diagnose gain reports of one comparison on disjoint seeds), with
    `pooled_from`: each input's path, SHA-256 and seeds."""
    if len(paths) < 2:
        raise MdcliError(f"gain-pool: needs two or more reports to pool, got {len(paths)}")
    reports = [read_gain_report(p) for p in paths]
    first, head = reports[0], paths[0]
    seen: dict[int, Path] = {}
    for path, r in zip(paths, reports):
        for k in SAME:
            if r[k] != first[k]:
                raise MdcliError(f"{path}: its {k} differs from {head}'s; only reports of one comparison pool "
                                 "(the same data, classes, split, N, fit, arms and starts)")
        for s in r["seeds"]:
            if s in seen:
                raise MdcliError(f"{path}: seed {s} is also in {seen[s]}; pooled reports need disjoint seeds "
                                 "(run the next batch with --first-seed)")
            seen[s] = path
    try:
        results = _pool([r["results"] for r in reports], "results")
        reference = _pool([r.get("reference") for r in reports], "reference")
    except _Differs as e:
        raise MdcliError(f"{paths[e.which]}: its {e.where} differs from {head}'s, a part no seed enters") from None
    devices = sorted({r["fits"].get("device") for r in reports}, key=str)
    pooled = dict(first)
    pooled.update(seeds=[s for r in reports for s in r["seeds"]], results=results, reference=reference,
                  fits={**first["fits"], "count": sum(r["fits"]["count"] for r in reports),
                        "device": devices[0] if len(devices) == 1 else "+".join(map(str, devices))},
                  pooled_from=[{"path": str(p), "sha256": sha256_file(p), "seeds": r["seeds"]}
                               for p, r in zip(paths, reports)])
    return pooled
