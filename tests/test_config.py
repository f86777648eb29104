from __future__ import annotations

import pytest

from mdcli.config import load_config, parse_override, to_yaml, valid_keys
from mdcli.errors import ConfigError
from mdcli.sim.config import SimulateConfig


def test_layers_defaults_file_set_options(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("n_per_class: 5\nradar:\n  prf_hz: 3000\n")
    cfg = load_config(SimulateConfig, f, ["radar.prf_hz=5000", "targets=walker,bird"], {"n_per_class": 7, "seed": None})
    assert cfg.radar.prf_hz == 5000.0 and isinstance(cfg.radar.prf_hz, float)
    assert cfg.targets == ["walker", "bird"]
    assert cfg.n_per_class == 7  # explicit option beats the file
    assert cfg.seed == 0  # None means "not given"
    assert cfg.radar.carrier_hz == 24e9  # default kept


def test_unknown_set_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        parse_override("radar.prfhz=3", SimulateConfig)
    msg = str(e.value)
    assert "radar.prfhz" in msg and "radar.prf_hz" in msg and "walker.speed_mps" in msg


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("radar:\n  nope: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*radar\.nope.*valid keys"):
        load_config(SimulateConfig, f)


@pytest.mark.parametrize("item,match", [
    ("n_per_class=abc", "integer"), ("n_per_class=2.5", "integer"), ("radar.prf_hz=fast", "number"),
    ("save_iq=maybe", "true/false"), ("scene.snr_db=[30, 10]", "low <= high"), ("n_per_class=0", "at least 1"),
    ("targets=walker,tank", "unknown target 'tank'"), ("processing.window=nosuch", "unknown window"),
    ("walker.speed_mps=[1, 4]", "relative velocity"), ("noequals", "key=value"),
])
def test_bad_values_are_rejected(item, match):
    with pytest.raises(ConfigError, match=match):
        load_config(SimulateConfig, None, [item])


def test_invalid_yaml_and_missing_file(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("radar: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml.*not valid YAML"):
        load_config(SimulateConfig, f)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(SimulateConfig, tmp_path / "nope.yaml")


def test_yaml_round_trip(tmp_path):
    cfg = load_config(SimulateConfig, None, ["radar.prf_hz=6000", "drone.n_rotors=[4]"])
    f = tmp_path / "r.yaml"
    f.write_text(to_yaml(cfg))
    assert load_config(SimulateConfig, f) == cfg
    assert "processing.image_size" in valid_keys(SimulateConfig)


@pytest.mark.parametrize("name", ["demo.yaml", "study/cpu.yaml", "study/gpu.yaml", "study/tiny.yaml"])
def test_shipped_multi_stage_configs_load_every_section(name):
    """Every stage section of the shipped pipeline/study configs is valid for its stage."""
    from pathlib import Path

    import yaml

    from mdcli.config import SECTIONS
    from mdcli.diagnose.diffusability import DiffusabilityConfig
    from mdcli.diagnose.gain import GainConfig
    from mdcli.diagnose.generation import GenerationConfig
    from mdcli.diagnose.latent import CollapseThresholds, LatentConfig
    from mdcli.sample import SampleConfig
    from mdcli.stages import TrainAEConfig, TrainClassifierConfig, TrainLDMConfig

    classes = {c.__name__: c for c in (SimulateConfig, TrainClassifierConfig, TrainAEConfig, TrainLDMConfig, SampleConfig,
                                       LatentConfig, CollapseThresholds, DiffusabilityConfig, GenerationConfig, GainConfig)}
    path = Path(__file__).resolve().parents[1] / "configs" / name
    sections = set(yaml.safe_load(path.read_text())) - {"study"}
    assert sections and sections <= set(SECTIONS.values())
    for cls_name, section in SECTIONS.items():
        if section in sections:
            extra = {"loss.classifier": "clf.h5"} if section == "train-ae" else None  # given on the command line
            load_config(classes[cls_name], path, None, extra)  # raises ConfigError on a bad key or value


def test_a_partial_section_fills_in_from_the_fields_own_default():
    """`--set fit.net.doppler_bins=8` keeps diagnose gain's 3-stage net (FitConfig.net's default), and
    `--set train.steps=5` keeps train-classifier's learning rate and hold-out (its train default), rather than
    the nested classes' own defaults (4 stages; OptimConfig's lr 2e-4)."""
    from mdcli.config import load_config
    from mdcli.diagnose.gain import GainConfig
    from mdcli.stages import TrainClassifierConfig

    g = load_config(GainConfig, None, ["fit.net.doppler_bins=8"])
    assert g.fit.net.channels == [16, 32, 64] and g.fit.net.doppler_bins == 8
    c = load_config(TrainClassifierConfig, None, ["train.steps=5"])
    assert c.train.steps == 5 and c.train.lr == 1e-3 and c.train.val_fraction == 0.2 and c.train.weight_decay == 1e-4


def test_guidance_without_a_null_class_is_refused_before_the_probe_trains():
    """diagnose diffusability's probe LDM: cfg_scale other than 1 with cfg_dropout 0 is a config error (sample
    would refuse it only after the probe had trained)."""
    from mdcli.config import load_config
    from mdcli.diagnose.diffusability import DiffusabilityConfig

    with pytest.raises(ConfigError, match="cfg_scale 1.5: guidance needs ldm.diffusion.cfg_dropout > 0"):
        load_config(DiffusabilityConfig, None, ["cfg_scale=1.5", "ldm.diffusion.cfg_dropout=0"])
    assert load_config(DiffusabilityConfig, None, ["cfg_scale=1", "ldm.diffusion.cfg_dropout=0"]).cfg_scale == 1
    assert load_config(DiffusabilityConfig, None, ["cfg_scale=1.5"]).ldm.diffusion.cfg_dropout > 0


def test_the_shipped_pretraining_config_trains_the_gain_fits_network():
    """configs/gait/pretrain-virtual.yaml (the init arm's classifier) has the network and optimiser of diagnose
    gain's fits with fit.net.doppler_bins=8, so an init arm differs from `real` by its start alone."""
    from pathlib import Path

    from mdcli.diagnose.gain import GainConfig
    from mdcli.stages import TrainClassifierConfig

    root = Path(__file__).resolve().parents[1] / "configs"
    pre = load_config(TrainClassifierConfig, root / "gait" / "pretrain-virtual.yaml")
    fit = load_config(GainConfig, root / "study" / "cpu.yaml", ["fit.net.doppler_bins=8"]).fit
    t = pre.train
    assert pre.net == fit.net and not pre.time_shift
    assert (t.batch_size, t.lr, t.weight_decay, t.warmup_steps) == (fit.batch_size, fit.lr, fit.weight_decay, fit.warmup_steps)
    assert (t.schedule, t.grad_clip, t.ema_decay) == ("constant", 0, 0)  # fit_classifier: constant rate, no clip, no EMA
