"""Generators of other projects, re-implemented so that their checkpoints load unchanged.

Each class reproduces the original network exactly, with the original parameter names, so
``model.load_state_dict(torch.load(their_file))`` works and gives the original outputs:

* :class:`ClassicSRGANGenerator`: the layout called "srgan-classic" (the most-copied public PyTorch SRGAN
  re-implementation and its forks): shared-slope PReLUs, a ``tanh`` output mapped to [0, 1].
* :class:`MSRResNet`: BasicSR's modified SRResNet: no BatchNorm, ReLU residual blocks, LeakyReLU(0.1), and the
  network's output added to a bilinear upsampling of the input.

:mod:`srgan._peers` detects these layouts from a state dict and builds the matching model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

__all__ = [
    "ClassicResidualBlock",
    "ClassicSRGANConfig",
    "ClassicSRGANGenerator",
    "ClassicUpsample",
    "MSRResNet",
    "MSRResNetConfig",
    "ResidualBlockNoBN",
]

TrunkTail = Literal["prelu", "batchnorm"]


def _config_from_dict(cls: type[Any], data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} keys {sorted(unknown)}; expected a subset of {sorted(known)}. "
            "The checkpoint may come from a newer srgan: upgrade srgan."
        )
    return dict(data)


@dataclass(frozen=True)
class ClassicSRGANConfig:
    """Architecture of a :class:`ClassicSRGANGenerator`.

    Attributes:
        scale: 2, 4 or 8.
        num_blocks: residual blocks (the original: 5, named ``block2`` .. ``block6``).
        channels: feature width (the original: 64).
        trunk_tail: the layer after the trunk's last 3x3 conv (``block7.1`` in the original): ``"prelu"`` in
            older files, ``"batchnorm"`` in newer ones.
    """

    scale: int = 4
    num_blocks: int = 5
    channels: int = 64
    trunk_tail: TrunkTail = "batchnorm"

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassicSRGANConfig:
        d = _config_from_dict(cls, data, {"scale", "num_blocks", "channels", "trunk_tail"})
        tail = d.pop("trunk_tail", "batchnorm")
        if tail not in ("prelu", "batchnorm"):
            raise ConfigError(f"trunk_tail must be 'prelu' or 'batchnorm', got {tail!r}")
        return cls(**{k: int(v) for k, v in d.items()}, trunk_tail=tail)


@dataclass(frozen=True)
class MSRResNetConfig:
    """Architecture of an :class:`MSRResNet` (BasicSR's ``num_block``, ``num_feat`` and ``upscale``).

    Attributes:
        scale: 2, 3 or 4.
        num_blocks: residual blocks (BasicSR's default: 16).
        channels: feature width (BasicSR's default: 64).
    """

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MSRResNetConfig:
        d = _config_from_dict(cls, data, {"scale", "num_blocks", "channels"})
        return cls(**{k: int(v) for k, v in d.items()})


def _check_sizes(num_blocks: int, channels: int) -> None:
    if num_blocks < 1 or channels < 1:
        raise ConfigError(f"num_blocks and channels must be >= 1, got {num_blocks} and {channels}")


class ClassicResidualBlock(nn.Module):
    """conv1, bn1, PReLU (one shared slope), conv2, bn2, plus the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))
        return out


class ClassicUpsample(nn.Module):
    """conv to 4C channels, PixelShuffle(2), PReLU (one shared slope)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.prelu(self.pixel_shuffle(self.conv(x)))
        return out


class ClassicSRGANGenerator(nn.Module):
    """The "srgan-classic" generator, with the original parameter names.

    ``block1`` (9x9 conv + PReLU); residual blocks ``block2`` .. ``block{B+1}``; ``block{B+2}`` (3x3 conv +
    PReLU or BatchNorm); ``block{B+3}``: ``log2(scale)`` x2 PixelShuffle stages and a 9x9 conv to RGB, applied to
    ``block1``'s output plus the trunk's. With the default 5 blocks these are ``block7`` and ``block8``.

    Input: (N, 3, H, W) float RGB in [0, 1] (no normalisation). Output: (N, 3, scale*H, scale*W) float RGB,
    ``(tanh(y) + 1) / 2``, so in [0, 1].

    Args:
        scale: 2, 4 or 8.
        num_blocks: residual blocks.
        channels: feature width.
        trunk_tail: ``"prelu"`` or ``"batchnorm"`` after the trunk's last conv (see :class:`ClassicSRGANConfig`).
    """

    def __init__(
        self, *, scale: int = 4, num_blocks: int = 5, channels: int = 64, trunk_tail: TrunkTail = "batchnorm"
    ) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ConfigError(f"scale must be one of (2, 4, 8), got {scale!r}")
        _check_sizes(num_blocks, channels)
        if trunk_tail not in ("prelu", "batchnorm"):
            raise ConfigError(f"trunk_tail must be 'prelu' or 'batchnorm', got {trunk_tail!r}")
        self.config = ClassicSRGANConfig(scale=scale, num_blocks=num_blocks, channels=channels, trunk_tail=trunk_tail)
        self.block1 = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU())
        self._trunk = [f"block{k}" for k in range(2, num_blocks + 3)]
        for name in self._trunk[:-1]:
            self.add_module(name, ClassicResidualBlock(channels))
        tail_layer: nn.Module = nn.PReLU() if trunk_tail == "prelu" else nn.BatchNorm2d(channels)
        self.add_module(self._trunk[-1], nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), tail_layer))
        self._upsample = f"block{num_blocks + 3}"
        stages: list[nn.Module] = [ClassicUpsample(channels) for _ in range(int(math.log2(scale)))]
        self.add_module(self._upsample, nn.Sequential(*stages, nn.Conv2d(channels, 3, 9, padding=4)))

    @property
    def scale(self) -> int:
        return self.config.scale

    @classmethod
    def from_config(cls, config: ClassicSRGANConfig) -> ClassicSRGANGenerator:
        return cls(
            scale=config.scale, num_blocks=config.num_blocks, channels=config.channels, trunk_tail=config.trunk_tail
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat: torch.Tensor = self.block1(x)
        out = feat
        for name in self._trunk:
            out = self.get_submodule(name)(out)
        y: torch.Tensor = self.get_submodule(self._upsample)(feat + out)
        return (torch.tanh(y) + 1) / 2


class ResidualBlockNoBN(nn.Module):
    """BasicSR's ``ResidualBlockNoBN`` (residual scale 1): x + conv2(relu(conv1(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.conv2(self.relu(self.conv1(x)))
        return out


class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet (``MSRResNet``), with BasicSR's parameter names.

    ``conv_first`` + LeakyReLU(0.1); ``num_blocks`` BN-free residual blocks ``body.{i}``; ``upconv1`` (and
    ``upconv2`` for x4) each followed by PixelShuffle and LeakyReLU(0.1); ``conv_hr`` + LeakyReLU(0.1);
    ``conv_last``. The result is added to a bilinear upsampling of the input.

    Input: (N, 3, H, W) float RGB in [0, 1]. Output: (N, 3, scale*H, scale*W) float RGB, nominally in [0, 1] but
    not clamped.

    Args:
        scale: 2, 3 or 4.
        num_blocks: residual blocks.
        channels: feature width.
    """

    def __init__(self, *, scale: int = 4, num_blocks: int = 16, channels: int = 64) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ConfigError(f"scale must be one of (2, 3, 4), got {scale!r}")
        _check_sizes(num_blocks, channels)
        self.config = MSRResNetConfig(scale=scale, num_blocks=num_blocks, channels=channels)
        self.conv_first = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(channels) for _ in range(num_blocks)))
        if scale == 4:
            self.upconv1 = nn.Conv2d(channels, channels * 4, 3, padding=1)
            self.upconv2: nn.Conv2d | None = nn.Conv2d(channels, channels * 4, 3, padding=1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(channels, channels * scale * scale, 3, padding=1)
            self.upconv2 = None
            self.pixel_shuffle = nn.PixelShuffle(scale)
        self.conv_hr = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_last = nn.Conv2d(channels, 3, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    @property
    def scale(self) -> int:
        return self.config.scale

    @classmethod
    def from_config(cls, config: MSRResNetConfig) -> MSRResNet:
        return cls(scale=config.scale, num_blocks=config.num_blocks, channels=config.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upconv2 is not None:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        result: torch.Tensor = out + base
        return result
