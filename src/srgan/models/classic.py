"""The "srgan-classic" generator (the most-copied public PyTorch SRGAN re-implementation and its forks), with the
original parameter names so that its checkpoints load unchanged, and its
:class:`~srgan.models.registry.Architecture` (``"srgan-classic"``).

Shared-slope PReLUs, no input normalisation, a ``tanh`` output mapped to [0, 1]. The layout is documented in
``peer-formats.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError
from ._config import MAX_BLOCKS, MAX_CHANNELS, ArchConfig, check_int
from ._inplace import InplacePReLU
from ._onednn import FusedResidualBody
from ._subpixel import conv_before_shuffle, prelu_before_shuffle
from .generator import srresnet_receptive_radius, srresnet_stages, upsampling_activation_values
from .registry import Architecture, SRModel, incompatible, required_shape

__all__ = [
    "ARCHITECTURE",
    "ClassicResidualBlock",
    "ClassicSRGANConfig",
    "ClassicSRGANGenerator",
    "ClassicUpsample",
    "TrunkTail",
    "config_from_state_dict",
]

TrunkTail = Literal["prelu", "batchnorm"]


@dataclass(frozen=True)
class ClassicSRGANConfig(ArchConfig):
    """Architecture of a :class:`ClassicSRGANGenerator`.

    Attributes:
        scale: 2, 4 or 8.
        num_blocks: residual blocks (the original: 5, named ``block2`` .. ``block6``), at most 256.
        channels: feature width (the original: 64), at most 1024.
        trunk_tail: the layer after the trunk's last 3x3 conv (``block7.1`` in the original): ``"prelu"`` in
            older files, ``"batchnorm"`` in newer ones.
    """

    scale: int = 4
    num_blocks: int = 5
    channels: int = 64
    trunk_tail: TrunkTail = "batchnorm"

    def __post_init__(self) -> None:
        check_int(self, "scale", allowed=(2, 4, 8))
        check_int(self, "num_blocks", high=MAX_BLOCKS)
        check_int(self, "channels", high=MAX_CHANNELS)
        if self.trunk_tail not in ("prelu", "batchnorm"):
            raise ConfigError(f"trunk_tail must be 'prelu' or 'batchnorm', got {self.trunk_tail!r}")


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


class ClassicSRGANGenerator(SRModel):
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

    config: ClassicSRGANConfig

    def __init__(
        self, *, scale: int = 4, num_blocks: int = 5, channels: int = 64, trunk_tail: TrunkTail = "batchnorm"
    ) -> None:
        super().__init__()
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

    @classmethod
    def from_config(cls, config: ClassicSRGANConfig) -> ClassicSRGANGenerator:
        return cls(
            scale=config.scale, num_blocks=config.num_blocks, channels=config.channels, trunk_tail=config.trunk_tail
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk: (N, 3, H, W) -> (N, channels, H, W), ``block1``'s output plus the residual blocks'."""
        feat: torch.Tensor = self.block1(x)
        out = feat
        for name in self._trunk:
            out = self.get_submodule(name)(out)
        return feat + out

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """The upsampling stages and the 9x9 conv: (N, channels, H, W) -> (N, 3, scale*H, scale*W) in [0, 1]."""
        y: torch.Tensor = self.get_submodule(self._upsample)(features)
        return (torch.tanh(y) + 1) / 2


# ----------------------------------------------------------------------------- the "srgan-classic" architecture
_BLOCK_RE = re.compile(r"^block(\d+)\.conv1\.weight$")


def config_from_state_dict(state: Mapping[str, Any]) -> ClassicSRGANConfig:
    """Read the architecture of an "srgan-classic" state dict from its keys and shapes.

    Raises:
        IncompatibleCheckpointError: missing or inconsistent keys/shapes (the message says which).
    """
    what = "an 'srgan-classic' state dict"
    shape = required_shape(state, "block1.0.weight", what)
    if len(shape) != 4 or shape[1:] != (3, 9, 9):
        raise incompatible(state, f"{what} needs block1.0.weight of shape (C, 3, 9, 9), got {shape}")
    channels = shape[0]
    blocks = sorted(int(m.group(1)) for k in state if (m := _BLOCK_RE.match(k)))
    if blocks != list(range(2, len(blocks) + 2)):
        raise incompatible(state, f"{what} needs residual blocks block2, block3, ... without gaps, got {blocks}")
    n = len(blocks)
    tail, up = f"block{n + 2}", f"block{n + 3}"
    required_shape(state, f"{tail}.0.weight", what)
    trunk_tail: TrunkTail
    if f"{tail}.1.running_mean" in state:
        trunk_tail = "batchnorm"
    elif required_shape(state, f"{tail}.1.weight", what) == (1,):
        trunk_tail = "prelu"
    else:
        raise incompatible(state, f"{what} needs {tail}.1 to be a PReLU (weight (1,)) or a BatchNorm2d")
    stages = 0
    while f"{up}.{stages}.conv.weight" in state:
        stages += 1
    final = required_shape(state, f"{up}.{stages}.weight", what)
    if stages not in (1, 2, 3) or final[:2] != (3, channels):
        raise incompatible(
            state, f"{what} needs 1 to 3 upsampling stages {up}.i.conv and a final conv {up}.{stages} to RGB"
        )
    return ClassicSRGANConfig(scale=2**stages, num_blocks=n, channels=channels, trunk_tail=trunk_tail)


def _inference_rewrite(g: ClassicSRGANGenerator) -> None:
    """Inference rewrite (eval mode, after BN folding): the last x2 stage's PReLU and the 9x9 conv run before its
    PixelShuffle (:mod:`srgan.models._subpixel`); on a CPU the residual blocks add into the trunk's map in place
    (:mod:`srgan.models._onednn`: the first block's name holds all of them, the others become identities) and the
    PReLUs that follow a conv or a shuffle overwrite its output (:mod:`srgan.models._inplace`). Same output."""
    names = g._trunk[:-1]
    blocks = [g.get_submodule(name) for name in names]
    if blocks and all(
        isinstance(b, ClassicResidualBlock) and isinstance(b.bn1, nn.Identity) and isinstance(b.bn2, nn.Identity)
        for b in blocks
    ):
        fused = FusedResidualBody((b.conv1, b.prelu, b.conv2) for b in blocks if isinstance(b, ClassicResidualBlock))
        g.add_module(names[0], fused)
        for name in names[1:]:
            g.add_module(name, nn.Identity())
    if isinstance(g.block1[1], nn.PReLU):
        g.block1[1] = InplacePReLU(g.block1[1])  # on the head conv's fresh output
    up = g.get_submodule(g._upsample)
    assert isinstance(up, nn.Sequential)
    for stage in up[:-2]:
        if isinstance(stage, ClassicUpsample) and isinstance(stage.prelu, nn.PReLU):
            stage.prelu = InplacePReLU(stage.prelu)  # type: ignore[assignment]  # on the shuffle's fresh output
    last, conv = up[-2], up[-1]
    assert isinstance(last, ClassicUpsample) and isinstance(conv, nn.Conv2d)
    up[-2] = nn.Sequential(last.conv, InplacePReLU(prelu_before_shuffle(last.prelu, 2)))
    up[-1] = conv_before_shuffle(conv, 2)


def _conv_bn_pairs(g: ClassicSRGANGenerator) -> Iterator[tuple[nn.Module, str, str]]:
    for name in g._trunk[:-1]:
        block = g.get_submodule(name)
        yield block, "conv1", "bn1"
        yield block, "conv2", "bn2"
    if g.config.trunk_tail == "batchnorm":
        yield g.get_submodule(g._trunk[-1]), "0", "1"


ARCHITECTURE: Architecture[ClassicSRGANConfig, ClassicSRGANGenerator] = Architecture(
    name="srgan-classic",
    model_class=ClassicSRGANGenerator,
    config_class=ClassicSRGANConfig,
    summary="ClassicSRGANGenerator: block1.0.weight, block2.conv1.weight, ...",
    detect=lambda state: "block1.0.weight" in state and any(_BLOCK_RE.match(k) for k in state),
    config_from_state_dict=config_from_state_dict,
    config_to_dict=ClassicSRGANConfig.to_dict,
    config_from_dict=ClassicSRGANConfig.from_dict,
    build=ClassicSRGANGenerator.from_config,
    # The same shape of network as srgan's Generator: 9x9 head, two 3x3 convs per block, 3x3 trunk tail, x2
    # stages, 9x9 tail.
    receptive_radius=lambda c: srresnet_receptive_radius(scale=c.scale, num_blocks=c.num_blocks),
    activation_values_per_pixel=lambda c: upsampling_activation_values(scale=c.scale, channels=c.channels),
    conv_bn_pairs=_conv_bn_pairs,
    inference_rewrite=_inference_rewrite,
    stages=lambda c: srresnet_stages(scale=c.scale, num_blocks=c.num_blocks, channels=c.channels),
)
