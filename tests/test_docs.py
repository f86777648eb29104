"""docs/artifacts.md is the HDF5 schema: files the CLI writes must match its tables both ways.

A name marked `always` in a kind's table must be in every file of that kind; any dataset or attribute
a file has must be listed for its kind (or under "Every artifact"). Also: no link in README.md or
docs/*.md points to a missing file.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from mdcli.cli import app
from mdcli.sim.dataset import PARAM_NAMES
from tests.conftest import ROOT, TINY

DOC = ROOT / "docs" / "artifacts.md"
KINDS = ("spectrograms", "latents", "autoencoder", "classifier", "ldm", "checkpoint")


def _schema() -> dict[str, dict[str, bool]]:
    """{section: {name: always?}} from the tables of docs/artifacts.md."""
    schema: dict[str, dict[str, bool]] = {}
    section = None
    for line in DOC.read_text().splitlines():
        m = re.match(r"#{2,3} (.+)", line)
        if m:
            head = m.group(1).strip()
            names = re.findall(r"`([a-z]+)`", head)
            section = "common" if head == "Every artifact" else (names[0] if len(names) == 1 and names[0] in KINDS else None)
            if section:
                schema.setdefault(section, {})
            continue
        if section and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            for name in re.findall(r"`([^`]+)`", cells[0]):
                schema[section][name] = cells[2] == "always"
    return schema


def _contents(f: h5py.File) -> set[str]:
    """Root attributes, '/dataset' paths and '/path@attr' attributes of a file."""
    found = set(f.attrs)

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.add("/" + name)
        found.update(f"/{name}@{a}" for a in obj.attrs)

    f.visititems(visit)
    return found


def _documented(item: str, names: set[str]) -> bool:
    for n in names:
        if item == n or ("<" in n and item.startswith(n.split("<")[0])):
            return True
    return False


def check(path: Path, extra_required: tuple[str, ...] = ()) -> set[str]:
    schema = _schema()
    with h5py.File(path, "r") as f:
        kind = f.attrs["kind"]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        found = _contents(f)
    table = {**schema["common"], **schema[kind]}
    undocumented = sorted(i for i in found if not _documented(i, set(table)))
    assert not undocumented, f"{path.name} ({kind}) has what docs/artifacts.md does not list: {undocumented}"
    required = [n for n, always in table.items() if always and "<" not in n] + list(extra_required)
    missing = sorted(n for n in required if n not in found)
    assert not missing, f"{path.name} ({kind}) lacks what docs/artifacts.md marks always: {missing}"
    return found


def _ok(args: list[str], quiet: bool = True) -> None:
    res = CliRunner().invoke(app, [*args, "-q"] if quiet else args)
    assert res.exit_code == 0, res.output


def test_schema_tables_parse():
    schema = _schema()
    assert set(schema) == {"common", *KINDS}
    assert {"kind", "schema_version", "parents", "config"} <= set(schema["common"])
    assert schema["spectrograms"]["/spectrograms"] and not schema["spectrograms"]["/iq"]


def test_simulated_spectrograms_match_the_doc(tiny_data):
    found = check(tiny_data)
    params = {i.split("/")[-1] for i in found if i.startswith("/params/")}
    assert params == set(PARAM_NAMES)
    text = DOC.read_text()
    undocumented = [p for p in PARAM_NAMES if f"`{p}`" not in text]
    assert not undocumented, f"physics parameters missing from docs/artifacts.md: {undocumented}"


def test_optional_spectrogram_fields_match_the_doc(tmp_path):
    iq = tmp_path / "iq.h5"
    _ok(["simulate", "--config", str(TINY / "simulate.yaml"), "--targets", "walker", "--n", "2", "--save-iq",
         "--shard", "0/2", "-o", str(iq)])
    check(iq, ("/iq", "/iq@iq_rate_hz", "shard"))
    png, imported = tmp_path / "png", tmp_path / "imported.h5"
    _ok(["export", str(iq), "--format", "png", "-o", str(png)], quiet=False)
    _ok(["import", str(png), "-o", str(imported)])
    check(imported, ("/source_files", "/sequence", "import_transform"))


@pytest.fixture(scope="module")
def chain(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("docs_chain")
    p = {k: d / f"{k}.h5" for k in ("clf", "vq", "vae", "vq_lat", "vae_lat", "ldm", "samples")}
    _ok(["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(tiny_data),
         "--steps", "4", "--stop-after", "2", "-o", str(p["clf"])])
    p["ckpt"] = d / "clf.h5.ckpt"
    assert p["ckpt"].exists()
    check(p["ckpt"])
    _ok(["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(tiny_data),
         "--steps", "4", "--resume", "-o", str(p["clf"])])
    for arch in ("vq", "vae"):
        _ok(["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data), "--arch",
             "vqgan" if arch == "vq" else "vae", "--classifier", str(p["clf"]), "--steps", "12", "-o", str(p[arch])])
        _ok(["encode", "--ae", str(p[arch]), "--data", str(tiny_data), "-o", str(p[f"{arch}_lat"])])
    _ok(["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(p["vq_lat"]), "--steps", "4",
         "-o", str(p["ldm"])])
    _ok(["sample", "--config", str(TINY / "sample.yaml"), "--ldm", str(p["ldm"]), "-n", "1", "--steps", "3",
         "-o", str(p["samples"])])
    return p


@pytest.mark.slow
def test_models_latents_and_samples_match_the_doc(chain):
    for k in ("clf", "vq", "vae", "ldm", "samples"):
        check(chain[k])
    check(chain["vq_lat"], ("/indices",))
    check(chain["vae_lat"], ("/logvar",))


def test_doc_links_resolve():
    broken = []
    for md in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not md.exists():
            continue
        for target in re.findall(r"\]\(([^)#\s]+)", md.read_text()):
            if not re.match(r"[a-z]+:", target) and not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)}: {target}")
    assert not broken, broken
