"""The networks on their own: shapes, encode/decode round trip and determinism over architectures and image sizes.

Small widths (the tiny configs' scale) on random inputs; no training, no files.
"""

from __future__ import annotations

import pytest
import torch

from mdcli.config import from_dict
from mdcli.models.classifier import ClassifierNetConfig, SpectrogramClassifier
from mdcli.models.discriminator import DiscConfig, PatchDiscriminator
from mdcli.models.load import build_autoencoder
from mdcli.models.blocks import TimeAttnBlock
from mdcli.models.unet import UNet, UNetConfig
from mdcli.stages import TrainAEConfig

ARCHS = ("vae", "vqvae", "vqgan")
SIZES = ((32, 32), (64, 32))  # (Doppler bins F, time frames T): square and not
TINY_AE = {"model": {"channels": 8, "channel_mult": [1, 2, 2], "num_res_blocks": 1, "attention": True,
                     "latent_channels": 4, "groups": 4},
           "vq": {"codebook_size": 32}}


def _ae(arch: str, seed: int = 0) -> tuple[torch.nn.Module, TrainAEConfig]:
    cfg = from_dict(TrainAEConfig, {**TINY_AE, "arch": arch})
    torch.manual_seed(seed)
    return build_autoencoder(cfg).eval(), cfg


def _images(size: tuple[int, int], n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, *size, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # model range [-1, 1]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_autoencoder_shapes_round_trip_and_determinism(arch, size):
    ae, cfg = _ae(arch)
    x = _images(size)
    enc = ae.encode(x)
    f = cfg.model.downsample_factor
    # the latent shape train-ae records in the artifact's attrs (and encode/sample rely on)
    latent_shape = [cfg.model.latent_channels, size[0] // f, size[1] // f]
    assert list(enc.latent.shape) == [2, *latent_shape]
    if arch == "vae":
        assert enc.logvar.shape == enc.latent.shape
    else:
        assert enc.indices.shape == (2, *latent_shape[1:])
        assert int(enc.indices.min()) >= 0 and int(enc.indices.max()) < cfg.vq.codebook_size
        # decode quantises the latent (straight through: equal up to rounding)
        assert torch.allclose(ae.decode_indices(enc.indices), ae.decode(enc.latent), atol=1e-5)
    recon = ae.decode(enc.latent)
    assert recon.shape == x.shape and torch.isfinite(recon).all()
    out = ae(x, sample=False)
    assert out.recon.shape == x.shape and out.loss.ndim == 0

    again, _ = _ae(arch)  # the same seed builds the same network, which maps the same input to the same output
    assert torch.equal(again.encode(x).latent, enc.latent) and torch.equal(again.decode(enc.latent), recon)
    other, _ = _ae(arch, seed=1)
    assert not torch.equal(other.encode(x).latent, enc.latent)


@pytest.mark.parametrize("time_factor", [1, 2])
@torch.no_grad()
def test_autoencoder_with_less_time_compression(time_factor):
    """model.time_factor < f: the latent keeps more columns than rows (the first levels halve both axes, the later
    ones Doppler only); decoding restores the image size; the weights have the square model's shapes, so only the
    config tells them apart."""
    cfg = from_dict(TrainAEConfig, {**TINY_AE, "arch": "vqgan", "model": {**TINY_AE["model"], "time_factor": time_factor}})
    torch.manual_seed(0)
    ae = build_autoencoder(cfg).eval()
    x = _images((32, 64))
    enc = ae.encode(x)
    assert cfg.model.factors == (4, time_factor)
    assert list(enc.latent.shape) == [2, 4, 32 // 4, 64 // time_factor]
    assert ae.decode(enc.latent).shape == x.shape
    torch.manual_seed(0)
    square = build_autoencoder(from_dict(TrainAEConfig, {**TINY_AE, "arch": "vqgan"})).eval()
    assert {k: v.shape for k, v in square.state_dict().items()} == {k: v.shape for k, v in ae.state_dict().items()}
    assert list(square.encode(x).latent.shape) == [2, 4, 32 // 4, 64 // 4]
    # time_factor = f is the square model (0 means f)
    cfg_f = from_dict(TrainAEConfig, {**TINY_AE, "arch": "vqgan", "model": {**TINY_AE["model"], "time_factor": 4}})
    torch.manual_seed(0)
    assert torch.equal(build_autoencoder(cfg_f).eval().encode(x).latent, square.encode(x).latent)


@pytest.mark.parametrize("bad", [3, 8])
def test_time_factor_must_be_a_power_of_two_up_to_f(bad):
    from mdcli.errors import ConfigError

    with pytest.raises(ConfigError, match="model.time_factor"):
        from_dict(TrainAEConfig, {**TINY_AE, "model": {**TINY_AE["model"], "time_factor": bad}}).validate()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("time_levels", [[], [0, 1]], ids=["attn", "time-attn"])
@torch.no_grad()
def test_unet_keeps_the_latent_shape_and_is_class_conditional(size, time_levels):
    f = 4  # the tiny autoencoder's downsampling: the UNet sees latents
    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=16, channel_mult=[1, 2], num_res_blocks=1, attention_levels=[1], groups=4,
                           time_attention_levels=time_levels), in_channels=4, n_classes=3).eval()
    assert sum(isinstance(m, TimeAttnBlock) for m in unet.modules()) == (0 if not time_levels else 2 * (1 + 2))  # per level: 1 down, 2 up
    z = _images((size[0] // f, size[1] // f), n=3)[:, :1].repeat(1, 4, 1, 1)
    t = torch.tensor([0, 500, 999])
    y = torch.tensor([0, 1, 2])
    assert torch.equal(unet(z, t, y), torch.zeros_like(z))  # zero-initialised output layer: starts at 0
    for p in unet.parameters():  # as if trained a little: no zero-initialised layer hides the conditioning
        p.add_(0.05 * torch.randn_like(p))
    out = unet(z, t, y)
    assert out.shape == z.shape and torch.isfinite(out).all()
    null = torch.full_like(y, unet.n_classes)  # the null class of classifier-free guidance
    assert not torch.allclose(unet(z, t, null), out)
    assert not torch.allclose(unet(z, t, (y + 1) % 3), out)
    assert torch.equal(unet(z, t, y), out)


@torch.no_grad()
def test_unet_kinematic_condition_steers_and_drops_with_the_null_class():
    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=16, channel_mult=[1, 2], num_res_blocks=1, attention_levels=[1], groups=4),
                in_channels=4, n_classes=3, n_cond=4).eval()
    z, t, y = torch.randn(3, 4, 8, 8), torch.tensor([10, 500, 900]), torch.tensor([0, 1, 2])
    a, b = torch.rand(3, 4), torch.rand(3, 4)
    for p in unet.parameters():  # as if trained a little: no zero-initialised layer hides the conditioning
        p.add_(0.05 * torch.randn_like(p))
    assert not torch.allclose(unet(z, t, y, a), unet(z, t, y, b))  # the condition steers it
    b_near = a.clone()
    b_near[:, 1] += 0.01  # a period 1 % of log2(width) longer: a different embedding
    assert not torch.allclose(unet(z, t, y, a), unet(z, t, y, b_near))
    null = torch.full_like(y, 3)
    assert torch.equal(unet(z, t, null, a), unet(z, t, null, b))  # guidance's unconditional branch drops it
    with pytest.raises(ValueError, match="conditioned on 4 kinematic scalars, got none"):
        unet(z, t, y)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@torch.no_grad()
def test_classifier_logits_and_features(size):
    channels = [8, 16, 32]
    torch.manual_seed(0)
    clf = SpectrogramClassifier(ClassifierNetConfig(channels=channels, groups=4), n_classes=5).eval()
    x = _images(size, n=3)
    assert clf(x).shape == (3, 5)
    feats = clf.features(x)
    assert [fm.shape[1] for fm in feats] == channels
    assert [tuple(fm.shape[2:]) for fm in feats] == [(size[0] >> i, size[1] >> i) for i in (1, 2, 2)]  # no pool after the last
    assert clf.embed(x).shape == (3, channels[-1])


@torch.no_grad()
def test_doppler_bins_keep_where_along_doppler_and_stay_blind_to_time():
    """net.doppler_bins k: the head sees C x k features, the mean over time in k Doppler slices. A blob moved along
    Doppler (by a multiple of the net's stride, away from the borders) leaves the global mean nearly unchanged but
    moves the binned features; moved along time, both stay nearly unchanged."""
    channels = [8, 16, 32]

    def blob(row: int, col: int) -> torch.Tensor:
        x = -torch.ones(1, 1, 64, 64)
        x[..., row : row + 4, col : col + 4] = 1.0
        return x

    base, doppler, time = blob(24, 24), blob(32, 24), blob(24, 32)
    change = {}
    for k in (0, 8):
        torch.manual_seed(0)
        clf = SpectrogramClassifier(ClassifierNetConfig(channels=channels, groups=4, doppler_bins=k), 3).eval()
        e = clf.embed(base)
        assert e.shape == (1, channels[-1] * max(k, 1)) and clf(base).shape == (1, 3)
        change[k] = [float((clf.embed(x) - e).norm() / e.norm()) for x in (doppler, time)]
    # a 4 x 4 blob on a flat image moves little of the (mostly background) features: compare the changes
    assert change[0][0] < 0.005 and change[0][1] < 0.005, change
    assert change[8][0] > 20 * change[0][0] and change[8][0] > 20 * change[8][1], change


def _conv_out(n: int, stride: int) -> int:
    return (n + 2 * 1 - 4) // stride + 1  # kernel 4, padding 1


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("layers", [2, 3])
@torch.no_grad()
def test_discriminator_patch_logits(size, layers):
    torch.manual_seed(0)
    disc = PatchDiscriminator(DiscConfig(layers=layers, channels=8)).eval()
    strides = [2] + [2 if i < layers else 1 for i in range(1, layers + 1)] + [1]
    expect = list(size)
    for s in strides:
        expect = [_conv_out(n, s) for n in expect]
    logits = disc(_images(size))
    assert logits.shape == (2, 1, *expect) and min(expect) >= 1


@torch.no_grad()
def test_time_attention_starts_as_identity_and_its_bias_picks_a_time_offset():
    """TimeAttnBlock: the identity at initialisation; with content-blind scores (q = k = 0) and a bias peaked at
    offset -p, each column receives the value p columns earlier in its own Doppler row (the sign and indexing of
    the relative offsets), and the rows do not mix."""
    torch.manual_seed(0)
    block = TimeAttnBlock(8, groups=4, heads=2, max_offset=16).eval()
    x = torch.randn(2, 8, 5, 12)
    assert torch.equal(block(x), x)
    p = 3
    block.qkv.weight.zero_()
    block.qkv.bias.zero_()
    block.qkv.weight[16:, :, 0, 0] = torch.eye(8)  # v = norm(x); q = k = 0
    block.proj.weight[:, :, 0, 0] = torch.eye(8)
    block.bias.fill_(-1e4)
    block.bias[:, block.max_offset - p] = 0.0  # key p columns before the query
    out = block(x) - x
    v = block.norm(x)
    torch.testing.assert_close(out[..., p:], v[..., :-p], atol=1e-5, rtol=0)  # row r from row r, p columns back
    # the first p columns have no key at -p: every key is equally far from the bias peak, so they get their row's mean
    torch.testing.assert_close(out[..., :p], v.mean(-1, keepdim=True).expand(-1, -1, -1, p), atol=1e-5, rtol=0)


def test_ldm_config_refuses_attention_levels_the_unet_lacks():
    from mdcli.config import from_dict
    from mdcli.errors import ConfigError
    from mdcli.stages import TrainLDMConfig

    for key in ("attention_levels", "time_attention_levels"):
        with pytest.raises(ConfigError, match=f"unet.{key}: \\[2\\] outside the UNet's levels 0-1"):
            from_dict(TrainLDMConfig, {"unet": {"channel_mult": [1, 2], key: [2]}}).validate()
