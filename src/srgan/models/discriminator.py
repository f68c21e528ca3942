"""SRGAN discriminator (Ledig et al. 2017, Fig. 4)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["Discriminator"]


class Discriminator(nn.Module):
    """VGG-style discriminator: 8 conv layers, LeakyReLU(0.2), BN after all but the first, dense 1024, dense 1.

    Conv widths are ``channels * (1, 1, 2, 2, 4, 4, 8, 8)`` with strides alternating 1, 2. An adaptive average
    pool to ``pool_size x pool_size`` before the dense layers lets it take any crop size (the paper's 96x96 crop
    gives 6x6 feature maps, the default pool size, so at 96x96 it is exactly the paper's network).

    Input: (N, 3, H, W) float RGB in [0, 1], H and W >= 16. Output: (N,) raw logits (no sigmoid).
    """

    def __init__(self, *, channels: int = 64, pool_size: int = 6, hidden: int = 1024) -> None:
        super().__init__()
        if channels < 1 or pool_size < 1 or hidden < 1:
            raise ConfigError(f"channels, pool_size and hidden must be >= 1, got {channels}, {pool_size}, {hidden}")
        layers: list[nn.Module] = []
        in_ch = 3
        for i, mult in enumerate((1, 1, 2, 2, 4, 4, 8, 8)):
            out_ch = channels * mult
            stride = 1 if i % 2 == 0 else 2
            layers.append(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_ch * pool_size * pool_size, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.pool(self.features(x)))
        return out.squeeze(1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the activations after each of the 8 conv stages (for feature-matching losses).

        Input: (N, 3, H, W) float RGB in [0, 1]. Returns ``(logits, features)``: logits (N,) as :meth:`forward`,
        features a list of 8 tensors (N, C_i, H_i, W_i), each taken after a LeakyReLU (``C_i = channels * (1, 1, 2,
        2, 4, 4, 8, 8)[i]``, spatial size halved at every second stage).
        """
        feats: list[torch.Tensor] = []
        h = x
        for layer in self.features:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                # Safe to keep: later in-place LeakyReLUs act on newer conv/BN outputs, never on this tensor.
                feats.append(h)
        out: torch.Tensor = self.classifier(self.pool(h))
        return out.squeeze(1), feats
