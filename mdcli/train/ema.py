"""The exponential moving average of a model's weights (`train.ema_decay`): what the trainers save in place of
the last weights when it is on.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Bias-corrected exponential moving average of a model's parameters; buffers are copied.

    After step t (0-based) the average is sum_i d^(t-i) (1-d) w_i / (1 - d^(t+1)) over the weights w_i
    after steps 0..t, as Adam corrects its moments: the random initial weights get no share. Without
    the correction they keep d^steps of it (decay 0.999 over 1200 steps: 30 %, zero-initialised output
    layers shrunk by as much). The step comes from the caller, so a resumed run continues exactly."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = (1.0 - self.decay) / (1.0 - self.decay ** (step + 1))  # 1 at step 0: a copy
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), weight)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
