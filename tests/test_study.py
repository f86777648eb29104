"""The study driver end to end on the tiny profile: every arm's pipeline, the table, the constructed rows."""

from __future__ import annotations

import json
import os

import pytest

from mdcli.study import main
from tests.conftest import ROOT


@pytest.mark.slow
def test_study_tiny_profile(tiny_data, tmp_path):
    out = tmp_path / "study"
    main(["--profile", str(ROOT / "configs/study/tiny.yaml"), "--dataset", "sim", "--data", str(tiny_data),
          "--out", str(out), "--jobs", "2"])
    res = json.loads((out / "results.json").read_text())
    assert set(res["rows"]) >= {"vae", "vqvae", "vqvae, codes relabelled (global)"}
    vae = res["rows"]["vae"][0]
    assert {"psnr", "fmd", "tstr", "variance_index", "label"} <= set(vae)
    assert res["rows"]["vqvae, codes relabelled (global)"][0]["label"] == "posterior collapse"
    md = (out / "results.md").read_text()
    assert "| vqvae |" in md and "random split" in md
    assert res["jobs"] == 2 and "2 job(s)" in md  # how it ran is part of the record: numbers depend on threads
    # the generator-free fits of `diagnose generation` go to one cache for all arms (reuse itself is tested in
    # test_diagnose; the two arms here run in parallel, so how many of its fits one finds done is not fixed)
    assert len(list((out / "baseline-fits").glob("*.json"))) == 1  # one seed: TRTR (augmentation is diagnose gain's)
    assert {r["generation"]["baseline_fits_reused"] for r in res["raw"].values()} <= {0, 1}
    assert res["rows"]["vae"][0]["trtr"] == res["rows"]["vqvae"][0]["trtr"]
    # the augmentation table: one `diagnose gain` over every arm's samples, the same real/classic baselines
    gain = res["augmentation"]
    assert gain == json.loads((out / "gain.json").read_text())
    rows = gain["results"]["2"]
    assert set(rows) == {"real", "classic", "vae", "vqvae"}
    assert gain["arms"]["vae"]["file"].endswith("vae_s{seed}/samples.h5") and gain["arms"]["vae"]["mode"] == "append"
    assert rows["vae"]["generator_saw_more"] and rows["vae"]["subsets"] == rows["real"]["subsets"]
    assert rows["vae"]["gain"]["verdict"] == "no measurable gain"  # one seed: no interval, never a gain
    assert "Augmentation (`mdcli diagnose gain`" in md and "| 2 | vae* |" in md


def test_study_threads_are_pinned_by_the_profile_and_bad_jobs_refused(tmp_path, capsys):
    import os

    import pytest

    from mdcli.study import parallelism

    assert parallelism({"jobs": 2, "threads": 1}, None) == (2, 1)  # the cpu profile: same numbers on any machine
    assert parallelism({"jobs": 2, "threads": 1}, 4) == (4, 1)  # --jobs overrides the profile, threads stay pinned
    assert parallelism({"jobs": 2, "threads": 1}, 1, 2) == (1, 2)  # how the 2026-11-27 tables were run
    assert parallelism({}, None) == (1, os.cpu_count() or 1)
    out = tmp_path / "study"
    with pytest.raises(SystemExit) as e:
        main(["--profile", str(ROOT / "configs/study/cpu.yaml"), "--dataset", "sim", "--out", str(out), "--jobs", "0"])
    assert e.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not out.exists()


def test_study_unknown_arm_is_refused_before_any_work(tmp_path, capsys):
    import pytest

    out = tmp_path / "study"
    with pytest.raises(SystemExit) as e:
        main(["--profile", str(ROOT / "configs/study/cpu.yaml"), "--dataset", "sim", "--out", str(out), "--arms", "vqgan,nope"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--arms: unknown nope" in err and "vqgan-ema" in err  # extra_arms are offered too
    assert not out.exists()
    with pytest.raises(SystemExit) as e:  # seed 1 is the study judge itself: not another judge
        main(["--profile", str(ROOT / "configs/study/cpu.yaml"), "--dataset", "sim", "--out", str(out), "--judges", "2,1"])
    assert e.value.code == 2 and "seed 1 the study judge's" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_study_resumes_finished_arms_and_stages_and_refuses_another_profile(tiny_data, tmp_path, capsys, monkeypatch):
    import pytest

    from mdcli.study import file_sha256

    given = file_sha256(tiny_data)
    out = tmp_path / "study"
    args = ["--profile", str(ROOT / "configs/study/tiny.yaml"), "--dataset", "sim", "--data", str(tiny_data),
            "--out", str(out), "--arms", "vae", "--jobs", "1", "--judges", "2", "--threads", "1"]
    main(args)
    first = json.loads((out / "results.json").read_text())
    assert first["reused"] == [] and first["complete"]
    # one more judge (seed 2, the judge's recipe) scores the samples in its own feature space
    extra = first["judges"]["vae_s0"]["judge_s2"]
    assert extra["fmd"] > 0 and extra["fmd"] != first["raw"]["vae_s0"]["generation"]["fmd"]
    assert "judge_s2" in extra["judge"] and "| vae |" in (out / "results.md").read_text().split("more judges")[1]
    assert "2 of 2 |" in (out / "results.md").read_text()  # the only arm is lowest on both pairs (study judge, judge 2) x seed 0
    d = out / "vae_s0"
    stamp = {f: (d / f).stat().st_mtime_ns for f in ("ae.h5", "latents.h5")} | {"judge": (out / "judge.h5").stat().st_mtime_ns}
    judge2 = (out / "judges" / "judge_s2.h5").stat().st_mtime_ns

    main(args)  # everything was finished: nothing is trained again
    again = json.loads((out / "results.json").read_text())
    assert again["reused"] == ["vae_s0"] and again["rows"] == first["rows"] and again["judges"] == first["judges"]
    assert (out / "judges" / "judge_s2.h5").stat().st_mtime_ns == judge2
    assert "1 of 1 arm-seeds reused" in (out / "results.md").read_text()
    # the from-scratch wall time is carried, not replaced by the reuse run's few seconds
    assert first["runs"] == 1 and first["total_wall_s"] == first["wall_s"]
    assert again["runs"] == 2 and again["total_wall_s"] == pytest.approx(first["wall_s"] + again["wall_s"])
    assert f"{again['total_wall_s'] / 60:.1f} min over the 2 runs that built it" in (out / "results.md").read_text()

    # killed after the autoencoder: the LDM onward runs again, the autoencoder and shared judge are kept,
    # and the numbers are those of the uninterrupted run (1 thread: deterministic)
    for f in ("result.json", "ldm.h5", "samples.h5", "samples.png", "generation.json"):
        (d / f).unlink()
    main(args)
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["reused"] == [] and resumed["rows"] == first["rows"]
    assert {f: (d / f).stat().st_mtime_ns for f in ("ae.h5", "latents.h5")} | {"judge": (out / "judge.h5").stat().st_mtime_ns} == stamp
    assert (d / "ldm.h5").exists() and set(json.loads((d / "seconds.json").read_text())) >= {"ae.h5", "ldm.h5", "generation.json"}

    # a model replaced by hand in the arm folder (here: the LDM's file changed) makes every stage after it
    # stale: the samples and diagnoses are made again from it, nothing before it is
    import h5py

    with h5py.File(d / "ldm.h5", "a") as h:
        h.attrs["note"] = "retrained by hand"
    kept = {f: (d / f).stat().st_mtime_ns for f in ("ae.h5", "latents.h5", "ldm.h5")}
    samples = (d / "samples.h5").stat().st_mtime_ns
    main(args)
    redone = json.loads((out / "results.json").read_text())
    assert redone["reused"] == [] and redone["rows"] == first["rows"]  # the same weights: the same numbers
    assert {f: (d / f).stat().st_mtime_ns for f in kept} == kept and (d / "samples.h5").stat().st_mtime_ns != samples

    # the same OUT with another budget is refused before any work, naming what differs
    other = tmp_path / "other.yaml"
    other.write_text((ROOT / "configs/study/tiny.yaml").read_text().replace("steps: 8", "steps: 9", 1))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([*args[:1], str(other), *args[2:]])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {out}: holds a study made with a different profile" in err
    # and another thread count too (the numbers depend on it)
    with pytest.raises(SystemExit) as e:
        main([*args[:-1], "2"])
    assert e.value.code == 2 and "different threads" in capsys.readouterr().err
    # and other code: results of the code before a fix are not reused
    import mdcli

    monkeypatch.setattr(mdcli, "code_digest", lambda: "0" * 16)
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and "different code" in capsys.readouterr().err
    assert file_sha256(tiny_data) == given  # the user's --data is read, never rewritten


def test_study_key_records_the_cpus_bf16_only_for_a_bf16_native_profile(tmp_path):
    """A bf16-native profile trains in bf16 on one CPU kind and in fp32 on another: the key tells them apart, so
    a study begun on one kind is refused (not mixed) when resumed on the other; an fp32 profile resumes anywhere."""
    import torch
    import yaml

    from mdcli.study import check_resumable, study_key, write_json
    from mdcli.train.precision import native_bf16

    cpu = yaml.safe_load((ROOT / "configs/study/cpu.yaml").read_text())
    assert cpu["train-ae"]["train"]["precision"] == cpu["train-ldm"]["train"]["precision"] == "bf16-native"
    key = study_key(cpu, "sim", None, tmp_path, 1)
    assert key["native_bf16"] is native_bf16(torch.device("cpu"))
    tiny = yaml.safe_load((ROOT / "configs/study/tiny.yaml").read_text())
    assert "native_bf16" not in study_key(tiny, "sim", None, tmp_path, 1)
    out = tmp_path / "study"
    out.mkdir()
    write_json(out / "study.json", {"key": key | {"native_bf16": not key["native_bf16"]}})
    assert "different native_bf16" in check_resumable(out, key, {})


def test_study_records_are_strict_json(tmp_path):
    """results.json / result.json hold metrics that can be NaN (the 2x-down equivariance of a model without
    one): they are written as null, which jq and JSON.parse read, and the table shows a dash for them."""
    import numpy as np

    from mdcli.study import table, write_json

    write_json(tmp_path / "r.json", {"eq": np.float32("nan"), "fmd": np.float64(1.5), "vals": np.array([1.0, np.inf])})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"eq": None, "fmd": 1.5, "vals": [1.0, None]}
    assert not list(tmp_path.glob(".*.tmp"))
    md = table({"vae": [{"psnr": 20.0, "eq_half_psnr": None}]})
    assert md.splitlines()[-1].startswith("| vae | 20 | – |")  # PSNR, then the SSIM it lacks


@pytest.mark.slow
def test_study_lpips_vgg_variant_reads_the_trunk_from_the_hub_cache(tiny_data, tmp_path, monkeypatch, capsys):
    """`--perceptual lpips-vgg` (the report's setting) is one option: with VGG16 weights where torch.hub keeps them
    (here a random trunk saved under TORCH_HOME, standing in for torchvision's ImageNet file) every stage runs
    offline and the autoencoder records which perceptual loss it trained with; without them the study is refused
    before any work, naming the missing file."""
    import h5py
    import pytest
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    from mdcli.losses import LPIPS_TRUNK_FILES

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])  # VGG16's convolutional trunk, all LPIPS reads of the file
    args = ["--profile", str(ROOT / "configs/study/tiny.yaml"), "--dataset", "sim", "--data", str(tiny_data),
            "--arms", "vqvae", "--perceptual", "lpips-vgg", "--jobs", "1"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the mdcli subprocesses inherit it
    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "absent")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"--perceptual lpips-vgg: ImageNet weights '{LPIPS_TRUNK_FILES['vgg']}' not found" in err
    assert str(tmp_path / "torch") in err and not (tmp_path / "absent").exists()

    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, ckpt / LPIPS_TRUNK_FILES["vgg"])
    out = tmp_path / "study"
    main([*args, "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    assert "lpips-vgg" in (out / "results.md").read_text()
    assert res["rows"]["vqvae"][0]["label"] in {"healthy", "codebook collapse", "posterior collapse"}
    with h5py.File(out / "vqvae_s0" / "ae.h5", "r") as f:
        assert "lpips-vgg" in f.attrs["config"]


def test_a_folder_the_study_did_not_make_is_not_overwritten(tmp_path):
    """--out holding train.h5 (or clf.h5 ...) without the study's record is refused before anything is written (the
    study would have replaced them: same kind, no --force needed); the user's own --data inside --out is read, not
    written, and does not count. A failed stage is one line naming the command (was a RuntimeError traceback)."""
    from mdcli.errors import MdcliError
    from mdcli.study import StageFailed, check_resumable, mdcli

    out = tmp_path / "proj"
    out.mkdir()
    (out / "data.h5").write_bytes(b"the user's data")
    assert check_resumable(out, {"k": 1}, {}, data=out / "data.h5") is None
    (out / "train.h5").write_bytes(b"the user's training part")
    why = check_resumable(out, {"k": 1}, {}, data=out / "data.h5")
    assert why == f"--out {out}: holds train.h5 but no study.json (not a study's folder); choose another --out, or move them"
    assert "data.h5, train.h5" in check_resumable(out, {"k": 1}, {})
    with pytest.raises(StageFailed) as e:
        mdcli("split", str(tmp_path / "missing.h5"), "--train-out", str(tmp_path / "a.h5"))
    assert isinstance(e.value, MdcliError) and "\n" not in str(e.value)
    assert str(e.value).startswith(f"mdcli split {tmp_path / 'missing.h5'} --train-out {tmp_path / 'a.h5'} failed (exit 2): ")


def test_a_stopped_study_stops_its_stages(tiny_data, tmp_path):
    """SIGTERM to a study: the running stage (here a trainer in a worker thread) gets SIGTERM, checkpoints at its
    step boundary and leaves no lock; no new stage starts while the study stops; the study ends with
    KeyboardInterrupt (exit 130 from the CLI). Before, the pool ran every queued arm-seed after the signal."""
    import signal
    import threading
    import time

    from mdcli import study

    out = tmp_path / "clf.h5"
    ckpt = tmp_path / "clf.h5.ckpt"
    seen: dict = {}

    def stage():
        try:
            study.mdcli("train-classifier", "--config", str(ROOT / "configs/tiny/train-classifier.yaml"), "--data",
                        str(tiny_data), "-o", str(out), "--set", "train.steps=100000", "--set", "train.checkpoint_every=1", "-q")
        except study.StageFailed as e:
            seen["stage"] = str(e)
        try:
            study.mdcli("split", str(tiny_data), "--train-out", str(tmp_path / "a.h5"), "--test-out", str(tmp_path / "b.h5"))
        except study.StageFailed as e:
            seen["next"] = str(e)

    @study.stops_its_stages
    def fake_study():
        worker = threading.Thread(target=stage)
        worker.start()
        try:
            deadline = time.time() + 120
            while not ckpt.exists() and time.time() < deadline:
                time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)  # the signal ends this wait
        finally:
            worker.join(120)

    with pytest.raises(KeyboardInterrupt):
        fake_study()
    assert "failed (exit 130)" in seen["stage"] and "interrupted: checkpoint" in seen["stage"], seen
    assert seen["next"].endswith("not started, the study is stopping") and not (tmp_path / "a.h5").exists()
    assert ckpt.exists() and not out.exists() and not (tmp_path / ".clf.h5.lock").exists()
    assert not study._stopping.is_set()  # the next study starts its stages again


def test_prepare_reuses_only_what_a_finished_prepare_made(tmp_path, monkeypatch):
    """The shared data and classifiers are reused when study.json says a prepare finished (as every study.json an
    older mdcli wrote, which came last); one marked unfinished (a kill mid-prepare) makes them again."""
    from pathlib import Path

    from mdcli import study

    calls: list[str] = []

    def fake(*args, stdout=None, env=None):
        calls.append(args[0])
        for flag in ("-o", "--train-out", "--test-out"):
            if flag in args:
                Path(args[args.index(flag) + 1]).write_bytes(b"made")

    monkeypatch.setattr(study, "mdcli", fake)
    spec, out, key = {"split": {"sim": {"mode": "random", "test_fraction": 0.3}}}, tmp_path / "s", {"k": 1}
    run = lambda: study.prepare(ROOT / "configs/study/tiny.yaml", spec, "sim", out, None, tmp_path, {}, key)  # noqa: E731
    run()
    assert sorted(calls) == ["simulate", "split", "train-classifier", "train-classifier"]
    assert json.loads((out / "study.json").read_text()) == {"key": key}
    calls.clear()
    run()
    assert calls == []
    study.write_json(out / "study.json", {"key": key, "prepared": False})
    run()
    assert sorted(calls) == ["simulate", "split", "train-classifier", "train-classifier"]


def test_an_interrupted_study_says_its_finished_stages_stay(tmp_path, monkeypatch, capsys):
    """Ctrl-C / SIGTERM of `mdcli study`: exit 130 and a line saying the folder keeps what finished (the generic
    "no output written" of the other commands would be wrong for a study, which resumes)."""
    import mdcli.study
    from mdcli.cli import run

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mdcli.study, "run_study", stopped)
    out = tmp_path / "s"
    assert run(["study", "--profile", str(ROOT / "configs/study/tiny.yaml"), "--dataset", "sim", "--out", str(out)]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert f"interrupted: {out} keeps every finished stage; run the same command to resume" in err
    assert "no output written" not in err
