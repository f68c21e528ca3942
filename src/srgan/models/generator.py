"""SRResNet generator (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a GAN")."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["Generator", "GeneratorConfig", "ResidualBlock", "UpsampleBlock"]

_SCALES = (2, 4, 8)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture hyperparameters of a :class:`Generator`; stored in every checkpoint."""

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        known = {"scale", "num_blocks", "channels"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown generator config keys {sorted(unknown)}; expected a subset of {sorted(known)}. "
                "The checkpoint may come from a newer srgan: upgrade srgan."
            )
        return cls(**{k: int(v) for k, v in data.items()})


class ResidualBlock(nn.Module):
    """3x3 conv, BN, PReLU, 3x3 conv, BN, plus the identity. Shape-preserving: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        return out


class UpsampleBlock(nn.Module):
    """3x3 conv to 4C channels, PixelShuffle(2), PReLU: (N, C, H, W) -> (N, C, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.shuffle(self.conv(x)))
        return out


class Generator(nn.Module):
    """The SRResNet generator.

    9x9 conv + PReLU; ``num_blocks`` residual blocks; 3x3 conv + BN with the long skip; ``log2(scale)`` x2
    PixelShuffle stages; a final 9x9 conv to RGB. The default x4 model has 1.55 M parameters.

    Input: (N, 3, H, W) float RGB in [0, 1]. Output: (N, 3, scale*H, scale*W) float RGB, nominally in [0, 1]
    but *not* clamped (training needs the raw values; inference code clamps).

    Args:
        scale: upscaling factor, one of 2, 4, 8.
        num_blocks: number of residual blocks (paper: 16).
        channels: feature width (paper: 64).
    """

    def __init__(self, *, scale: int = 4, num_blocks: int = 16, channels: int = 64) -> None:
        super().__init__()
        if scale not in _SCALES:
            raise ConfigError(f"scale must be one of {_SCALES}, got {scale!r}")
        if num_blocks < 1 or channels < 1:
            raise ConfigError(f"num_blocks and channels must be >= 1, got {num_blocks} and {channels}")
        self.config = GeneratorConfig(scale=scale, num_blocks=num_blocks, channels=channels)
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.upsample = nn.Sequential(*(UpsampleBlock(channels) for _ in range(int(math.log2(scale)))))
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)
        self.reset_parameters()

    @property
    def scale(self) -> int:
        return self.config.scale

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Generator:
        return cls(scale=config.scale, num_blocks=config.num_blocks, channels=config.channels)

    def reset_parameters(self, *, residual_init_scale: float = 0.1) -> None:
        """Kaiming-normal conv init, with each residual branch's last conv scaled by ``residual_init_scale``.

        Scaling the residual branches down makes every block start close to the identity, which trains deep
        SR networks faster and more stably (as in EDSR/ESRGAN). PReLU slopes start at 0.25 and BN at identity.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.25, mode="fan_in", nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for block in self.body:
            assert isinstance(block, ResidualBlock)
            with torch.no_grad():
                block.conv2.weight.mul_(residual_init_scale)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        out: torch.Tensor = self.tail(self.upsample(feat + self.body_tail(self.body(feat))))
        return out
