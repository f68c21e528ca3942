"""SRGAN discriminator (Ledig et al. 2017, Fig. 4), and its :class:`~srgan.models.registry.Architecture`
(``"discriminator"``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._config import MAX_CHANNELS, ArchConfig, check_int
from .registry import Architecture, incompatible, required_shape

__all__ = ["ARCHITECTURE", "Discriminator", "DiscriminatorConfig", "config_from_state_dict"]

_WIDTHS = (1, 1, 2, 2, 4, 4, 8, 8)  # conv widths in multiples of ``channels``; strides alternate 1, 2


@dataclass(frozen=True)
class DiscriminatorConfig(ArchConfig):
    """Architecture hyperparameters of a :class:`Discriminator` (its keyword arguments): ``channels`` 1..1024,
    ``pool_size`` 1..64, ``hidden`` 1..16384."""

    channels: int = 64
    pool_size: int = 6
    hidden: int = 1024

    def __post_init__(self) -> None:
        check_int(self, "channels", high=MAX_CHANNELS)
        check_int(self, "pool_size", high=64)
        check_int(self, "hidden", high=16 * 1024)


class Discriminator(nn.Module):
    """VGG-style discriminator: 8 conv layers, LeakyReLU(0.2), BN after all but the first, dense 1024, dense 1.

    Conv widths are ``channels * (1, 1, 2, 2, 4, 4, 8, 8)`` with strides alternating 1, 2. An adaptive average
    pool to ``pool_size x pool_size`` before the dense layers lets it take any crop size (the paper's 96x96 crop
    gives 6x6 feature maps, the default pool size, so at 96x96 it is exactly the paper's network).

    Input: (N, 3, H, W) float RGB in [0, 1], H and W >= 16. Output: (N,) raw logits (no sigmoid).
    """

    def __init__(self, *, channels: int = 64, pool_size: int = 6, hidden: int = 1024) -> None:
        super().__init__()
        self.config = DiscriminatorConfig(channels=channels, pool_size=pool_size, hidden=hidden)
        layers: list[nn.Module] = []
        in_ch = 3
        for i, mult in enumerate(_WIDTHS):
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

    @classmethod
    def from_config(cls, config: DiscriminatorConfig) -> Discriminator:
        return cls(channels=config.channels, pool_size=config.pool_size, hidden=config.hidden)


# ----------------------------------------------------------------------------- the "discriminator" architecture
def config_from_state_dict(state: Mapping[str, Any]) -> DiscriminatorConfig:
    """Read the architecture of a :class:`Discriminator` from a state dict's keys and shapes."""
    what = "an srgan Discriminator state dict"
    first = required_shape(state, "features.0.weight", what)
    dense = required_shape(state, "classifier.1.weight", what)
    if len(first) != 4 or len(dense) != 2 or first[0] < 1:
        raise incompatible(
            state,
            f"{what} needs features.0.weight of shape (C, 3, 3, 3) and classifier.1.weight of shape (H, F), "
            f"got {first} and {dense}",
        )
    channels = first[0]
    hidden, flat = dense
    pool_size = math.isqrt(flat // (channels * _WIDTHS[-1]))
    if channels * _WIDTHS[-1] * pool_size**2 != flat:
        raise incompatible(state, f"{what} needs classifier.1 to take {channels * _WIDTHS[-1]} x P x P inputs")
    return DiscriminatorConfig(channels=channels, pool_size=pool_size, hidden=hidden)


def _conv_bn_pairs(d: Discriminator) -> Iterator[tuple[nn.Module, str, str]]:
    layers = list(d.features)
    for i in range(len(layers) - 1):
        if isinstance(layers[i + 1], nn.BatchNorm2d):
            yield d.features, str(i), str(i + 1)


ARCHITECTURE: Architecture[DiscriminatorConfig, Discriminator] = Architecture(
    name="discriminator",
    model_class=Discriminator,
    config_class=DiscriminatorConfig,
    summary="srgan.models.Discriminator: features.0.weight, features.2.weight, ..., classifier.1.weight, ...",
    detect=lambda state: "features.0.weight" in state and "classifier.1.weight" in state,
    config_from_state_dict=config_from_state_dict,
    config_to_dict=DiscriminatorConfig.to_dict,
    config_from_dict=DiscriminatorConfig.from_dict,
    build=Discriminator.from_config,
    conv_bn_pairs=_conv_bn_pairs,
    exportable=False,  # a training-time model: srgan exports generators
    kind="discriminator",
)
