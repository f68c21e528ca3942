"""BasicSR's modified SRResNet (``MSRResNet``), with BasicSR's parameter names so that its checkpoints load
unchanged, and its :class:`~srgan.models.registry.Architecture` (``"msrresnet"``).

No BatchNorm, ReLU residual blocks, LeakyReLU(0.1), and the network's output added to a bilinear upsampling of
the input. The layout is documented in ``peer-formats.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._config import MAX_BLOCKS, MAX_CHANNELS, ArchConfig, check_int
from ._onednn import FusedResidualBody
from .generator import upsampling_activation_values
from .registry import Architecture, SRModel, incompatible, required_shape

__all__ = ["ARCHITECTURE", "MSRResNet", "MSRResNetConfig", "ResidualBlockNoBN", "config_from_state_dict"]


@dataclass(frozen=True)
class MSRResNetConfig(ArchConfig):
    """Architecture of an :class:`MSRResNet` (BasicSR's ``num_block``, ``num_feat`` and ``upscale``).

    Attributes:
        scale: 2, 3 or 4.
        num_blocks: residual blocks (BasicSR's default: 16), at most 256.
        channels: feature width (BasicSR's default: 64), at most 1024.
    """

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64

    def __post_init__(self) -> None:
        check_int(self, "scale", allowed=(2, 3, 4))
        check_int(self, "num_blocks", high=MAX_BLOCKS)
        check_int(self, "channels", high=MAX_CHANNELS)


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


class MSRResNet(SRModel):
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

    config: MSRResNetConfig

    def __init__(self, *, scale: int = 4, num_blocks: int = 16, channels: int = 64) -> None:
        super().__init__()
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


# ----------------------------------------------------------------------------- the "msrresnet" architecture
_BODY_RE = re.compile(r"^body\.(\d+)\.conv1\.weight$")


def config_from_state_dict(state: Mapping[str, Any]) -> MSRResNetConfig:
    """Read the architecture of a BasicSR MSRResNet state dict from its keys and shapes.

    Raises:
        IncompatibleCheckpointError: missing or inconsistent keys/shapes, or not RGB in and out.
    """
    what = "a BasicSR MSRResNet state dict"
    first = required_shape(state, "conv_first.weight", what)
    last = required_shape(state, "conv_last.weight", what)
    if len(first) != 4 or len(last) != 4 or first[1] != 3 or last[0] != 3:
        raise incompatible(
            state,
            f"{what} with {first[1] if len(first) > 1 else '?'} input and {last[0] if last else '?'} output channels: "
            "srgan runs RGB models only (3 in, 3 out)",
        )
    channels = first[0]
    blocks = sorted(int(m.group(1)) for k in state if (m := _BODY_RE.match(k)))
    if not blocks or blocks != list(range(len(blocks))):
        raise incompatible(state, f"{what} needs residual blocks body.0, body.1, ... without gaps, got {blocks}")
    up1 = required_shape(state, "upconv1.weight", what)
    if "upconv2.weight" in state:
        scale = 4
    elif up1[0] == channels * 4:
        scale = 2
    elif up1[0] == channels * 9:
        scale = 3
    else:
        raise incompatible(
            state, f"{what} needs upconv1 with 4 or 9 times conv_first's {channels} channels, got {up1[0]}"
        )
    return MSRResNetConfig(scale=scale, num_blocks=len(blocks), channels=channels)


def _receptive_radius(config: MSRResNetConfig) -> int:
    """3x3 convs only; the bilinear skip reaches one input pixel."""
    r = 1.0 + 2.0 * config.num_blocks + 1.0  # conv_first, the blocks, upconv1 (input resolution)
    r += 0.5 if config.scale == 4 else 0.0  # upconv2 at twice the input resolution
    r += 2.0 / config.scale  # conv_hr and conv_last at output resolution
    return math.ceil(max(r, 1.0))


def _inference_rewrite(g: MSRResNet) -> None:
    """Inference rewrite (eval mode): the residual blocks add into the trunk's map in place on a CPU
    (:mod:`srgan.models._onednn`). Same output."""
    blocks = [b for b in g.body if isinstance(b, ResidualBlockNoBN)]
    if blocks and len(blocks) == len(g.body):
        g.body = FusedResidualBody((b.conv1, b.relu, b.conv2) for b in blocks)  # type: ignore[assignment]


ARCHITECTURE: Architecture[MSRResNetConfig, MSRResNet] = Architecture(
    name="msrresnet",
    model_class=MSRResNet,
    config_class=MSRResNetConfig,
    summary="BasicSR's MSRResNet: conv_first.weight, body.0.conv1.weight, ...",
    detect=lambda state: all(f"{k}.weight" in state for k in ("conv_first", "upconv1", "conv_last")),
    config_from_state_dict=config_from_state_dict,
    config_to_dict=MSRResNetConfig.to_dict,
    config_from_dict=MSRResNetConfig.from_dict,
    build=MSRResNet.from_config,
    receptive_radius=_receptive_radius,
    activation_values_per_pixel=lambda c: upsampling_activation_values(scale=c.scale, channels=c.channels),
    conv_bn_pairs=None,  # no BatchNorm
    inference_rewrite=_inference_rewrite,
)
