"""Losses of the autoencoder stage. Each returns per-sample values (B,) unless noted; the loop weights and reduces."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mdcli.errors import MdcliError
from mdcli.ranks import all_mean

# torchvision ImageNet trunks the lpips package expects (torch hub cache file names).
LPIPS_TRUNK_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def reconstruction(x: torch.Tensor, y: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    d = (x - y).abs() if kind == "l1" else (x - y).pow(2)
    return d.flatten(1).mean(1)


def temporal_spectrum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Distance of the temporal-frequency content (B,): per Doppler row, the magnitude of the Hann-windowed
    Fourier transform along time (the row's mean removed), compared as mean |log(1 + |X|) - log(1 + |Y|)|.
    Blind to the phase, so unlike L1 it does not reward averaging an uncertain wing-beat or limb-swing timing into
    a smooth band: losing the modulation's energy at its rate costs, wherever the flashes fall."""
    return (_log_spectrum(x) - _log_spectrum(y)).abs().flatten(1).mean(1)


def _log_spectrum(v: torch.Tensor) -> torch.Tensor:
    """log(1 + |FFT|) along the last axis of the mean-removed, Hann-windowed series (fp32)."""
    v = v.float()
    w = torch.hann_window(v.shape[-1], periodic=False, device=v.device, dtype=torch.float32)
    return torch.log1p(torch.fft.rfft((v - v.mean(-1, keepdim=True)) * w, dim=-1).abs())


ENVELOPE_LEVEL = 0.4  # image units above the median: the kinematic features' envelope level (20 dB at a 50 dB range)
ENVELOPE_SOFTNESS = 0.05  # image units: the width of the soft step at the level


def envelope_occupancy(x01: torch.Tensor, level: torch.Tensor, softness: float = ENVELOPE_SOFTNESS) -> torch.Tensor:
    """Per time column the number of Doppler bins above `level` (B, 1, 1, 1), soft (a sigmoid step of width
    `softness`), of images (B, 1, F, T) in [0, 1] -> (B, T) in bins: the width of what `mdcli.kinematics` calls
    the envelope, differentiable."""
    return torch.sigmoid((x01.float() - level) / softness).sum(-2).flatten(1)


def envelope(x: torch.Tensor, y: torch.Tensor, level: float = ENVELOPE_LEVEL) -> torch.Tensor:
    """Distance of the micro-Doppler envelope (B,), images in the model's [-1, 1]: per column the soft count of
    Doppler bins above the target's envelope level (its median + `level`, image units), compared as the mean
    absolute difference in bins, plus the same phase-blind comparison as `temporal_spectrum` of that count's
    series over time (log(1 + |FFT|) of the mean-removed, Hann-windowed count). The count is what the kinematic
    features threshold (a limb tip or a wing flash that falls under the level is lost to them however small its
    L1 error), and its spectrum is what their period detector sees (the autocorrelation of the envelope is the
    inverse transform of its power spectrum)."""
    xf, yf = (x.float() + 1) / 2, (y.float() + 1) / 2
    lv = yf.flatten(1).median(1).values.view(-1, 1, 1, 1) + level
    ox, oy = envelope_occupancy(xf, lv), envelope_occupancy(yf, lv)
    return (ox - oy).abs().mean(1) + (_log_spectrum(ox) - _log_spectrum(oy)).abs().mean(1)


PROFILE_BANDS, PROFILE_FREQS = 8, 16  # as the `diagnose gain` reference's features (diagnose.gain.profile_features)


def profile(x: torch.Tensor, y: torch.Tensor, bands: int = PROFILE_BANDS, freqs: int = PROFILE_FREQS) -> torch.Tensor:
    """Distance of the Doppler profile (B,), images in the model's [-1, 1]: per Doppler row the mean and the
    standard deviation over time, and per band of Doppler rows log(1 + |temporal spectrum|) at 1..`freqs` cycles
    per window of the band's mean, each compared as a mean absolute difference, summed. The statistics of the
    `diagnose gain` reference (what identifies a person in few windows: where the power lies along Doppler, how
    much each row varies, how each band repeats), on the image's [0, 1] scale; blind to when things happen."""
    xf, yf = (x.float()[:, 0] + 1) / 2, (y.float()[:, 0] + 1) / 2  # (B, F, T)

    def stats(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sl = torch.stack([b.mean(1) for b in torch.tensor_split(v, min(bands, v.shape[1]), dim=1)], 1)
        spec = torch.fft.rfft(sl - sl.mean(-1, keepdim=True), dim=-1).abs()[..., 1 : freqs + 1]
        return v.mean(2), v.std(2, unbiased=False), torch.log1p(spec)

    return sum((a - b).abs().flatten(1).mean(1) for a, b in zip(stats(xf), stats(yf)))


def _unit(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Normalise feature vectors to unit length along channels (LPIPS, Zhang et al. 2018)."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


class DomainPerceptual(nn.Module):
    """LPIPS-style distance in the feature space of a spectrogram classifier (train-classifier).

    d(x, y) = sum_l mean_{h,w} || f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)| ||^2 over the classifier's stages,
    with uniform channel weights (no ImageNet weights needed).
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.net = classifier.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the feature net stays in eval mode
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.between(self.net.features(x), self.net.features(y))

    @staticmethod
    def between(feats_x: list[torch.Tensor], feats_y: list[torch.Tensor]) -> torch.Tensor:
        """The distance from feature maps already computed by the classifier's `features`."""
        d = 0.0
        for fx, fy in zip(feats_x, feats_y):
            d = d + (_unit(fx) - _unit(fy)).pow(2).sum(1).mean((1, 2))
        return d


class LPIPSPerceptual(nn.Module):
    """The `lpips` package's metric on single-channel spectrograms (repeated to 3 channels, in [-1, 1])."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)).flatten()


def lpips_trunk_path(net: str, weights: str | Path | None) -> Path:
    """Where the ImageNet trunk must be: the given path, else the torch hub cache."""
    if weights:
        return Path(weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_TRUNK_FILES[net]


def check_lpips_trunk(net: str, weights: str | Path | None, weights_option: bool = True) -> Path:
    """The ImageNet trunk file for lpips-<net>, or MdcliError saying where to put it (nothing is downloaded).

    weights_option=False for callers without `--perceptual-weights` (the study runner): the remedy
    then names only the torch hub cache.
    """
    path = lpips_trunk_path(net, weights)
    if not path.is_file():
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        remedy = (f"copy torchvision's file into {hub} or pass --perceptual-weights PATH (nothing is downloaded)"
                  if weights_option else f"copy torchvision's file into {hub} (the torch hub cache; nothing is downloaded)")
        raise MdcliError(f"--perceptual lpips-{net}: ImageNet weights '{LPIPS_TRUNK_FILES[net]}' not found at {path}; "
                         f"{remedy}, or use --perceptual domain")
    return path


def build_lpips(net: str, weights: str | Path | None = None, pnet_rand: bool = False) -> LPIPSPerceptual:
    """LPIPS with its linear layers from the package and the trunk from a local file; never downloads.

    pnet_rand=True keeps a random trunk (for tests; the distance is then not perceptual).
    """
    import lpips

    if net not in LPIPS_TRUNK_FILES:
        raise MdcliError(f"--perceptual lpips-{net}: unknown network; use lpips-vgg or lpips-alex")
    trunk_state = None
    if not pnet_rand:
        path = check_lpips_trunk(net, weights)
        try:
            with warnings.catch_warnings():  # a refused pickle is our one error line, not torch's warning too
                warnings.simplefilter("ignore")
                trunk_state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise MdcliError(f"--perceptual-weights {path}: not a readable torch weights file ({type(e).__name__})") from None
    # pretrained=False: no linear layers loaded by lpips itself; pnet_rand=True: no torchvision download.
    with warnings.catch_warnings():  # torchvision's notice about the `pretrained` argument lpips uses
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=False, net=net, pnet_rand=True, verbose=False)
    lin = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    model.load_state_dict(torch.load(lin, map_location="cpu", weights_only=True), strict=False)
    if trunk_state is not None:
        load_lpips_trunk(model.net, trunk_state, path)
    return LPIPSPerceptual(model)


def load_lpips_trunk(trunk: nn.Module, state: dict, path: Path) -> None:
    """Copy torchvision `features.<i>.*` weights into lpips' slice modules (which keep the indices)."""
    own = trunk.state_dict()
    mapped = {}
    for key in own:
        _, idx, param = key.split(".", 2)  # slice<k>.<i>.<param>
        src = f"features.{idx}.{param}"
        if src not in state:
            raise MdcliError(f"--perceptual-weights {path}: missing '{src}'; expected torchvision {type(trunk).__name__} weights")
        if state[src].shape != own[key].shape:
            raise MdcliError(f"--perceptual-weights {path}: '{src}' has shape {tuple(state[src].shape)}, expected {tuple(own[key].shape)}")
        mapped[key] = state[src]
    trunk.load_state_dict(mapped)


def gan_d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Discriminator loss on patch logits (scalar)."""
    if kind == "hinge":
        return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
    return 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())


def gan_g_loss(fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Generator loss on patch logits of reconstructions (scalar)."""
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


def adaptive_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, output: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = 1e4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """lambda = ||grad_w L_rec|| / (||grad_w L_G|| + 1e-4) at the decoder's last layer w, clamped (Esser et al.
    2021, eq. 7) -> (lambda, dL_rec/d output, dL_G/d output).

    Each loss is backpropagated once, to the decoder `output` only; the last layer's gradients follow from those
    through that one layer (grad_w L = J_w^T grad_output L). The caller then backpropagates the generator once
    from `output` with dL_rec/d output + lambda dL_G/d output, so the perceptual network and the discriminator are
    each traversed once a step, not twice as when lambda is taken from the losses themselves.
    """
    g_rec_out = torch.autograd.grad(rec_loss, output, retain_graph=True)[0]
    g_gan_out = torch.autograd.grad(g_loss, output, retain_graph=True)[0]
    g_rec = torch.autograd.grad(output, last_layer, grad_outputs=g_rec_out, retain_graph=True)[0]
    g_gan = torch.autograd.grad(output, last_layer, grad_outputs=g_gan_out, retain_graph=True)[0]
    # under DDP, the global batch's gradients (every rank then uses the weight one process would)
    g_rec, g_gan = all_mean(torch.stack([g_rec, g_gan]))
    lam = (g_rec.norm() / (g_gan.norm() + 1e-4)).clamp(0.0, max_weight).detach()
    return lam, g_rec_out, g_gan_out
