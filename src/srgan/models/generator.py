"""SRResNet generator (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a GAN"), and its
:class:`~srgan.models.registry.Architecture` (``"srgan"``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import IncompatibleCheckpointError
from ._config import MAX_BLOCKS, MAX_CHANNELS, ArchConfig, check_int
from ._inplace import InplacePReLU
from ._onednn import FusedResidualBody
from ._subpixel import conv_before_shuffle, prelu_before_shuffle
from .registry import Architecture, SRModel, StageSplit, incompatible

__all__ = [
    "ARCHITECTURE",
    "Generator",
    "GeneratorConfig",
    "ResidualBlock",
    "UpsampleBlock",
    "config_from_state_dict",
    "srresnet_receptive_radius",
    "srresnet_stages",
    "upsampling_activation_values",
]

_SCALES = (2, 4, 8)


@dataclass(frozen=True)
class GeneratorConfig(ArchConfig):
    """Architecture hyperparameters of a :class:`Generator`; stored in every checkpoint.

    Raises:
        ConfigError: ``scale`` not 2, 4 or 8, ``num_blocks`` not in 1..256 or ``channels`` not in 1..1024.
    """

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64

    def __post_init__(self) -> None:
        check_int(self, "scale", allowed=_SCALES)
        check_int(self, "num_blocks", high=MAX_BLOCKS)
        check_int(self, "channels", high=MAX_CHANNELS)


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


class Generator(SRModel):
    """The SRResNet generator.

    9x9 conv + PReLU; ``num_blocks`` residual blocks; 3x3 conv + BN with the long skip; ``log2(scale)`` x2
    PixelShuffle stages; a final 9x9 conv to RGB. The default x4 model has 1.55 M parameters.

    Input: (N, 3, H, W) float RGB in [0, 1]. Output: (N, 3, scale*H, scale*W) float RGB, nominally in [0, 1]
    but *not* clamped (training needs the raw values; inference code clamps).

    Args:
        scale: upscaling factor, one of 2, 4, 8.
        num_blocks: number of residual blocks (paper: 16), at most 256.
        channels: feature width (paper: 64), at most 1024.

    Raises:
        ConfigError: an argument outside these values (see :class:`GeneratorConfig`).
    """

    config: GeneratorConfig

    def __init__(self, *, scale: int = 4, num_blocks: int = 16, channels: int = 64) -> None:
        super().__init__()
        self.config = GeneratorConfig(scale=scale, num_blocks=num_blocks, channels=channels)
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.upsample = nn.Sequential(*(UpsampleBlock(channels) for _ in range(int(math.log2(scale)))))
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)
        self.reset_parameters()

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Generator:
        return cls(scale=config.scale, num_blocks=config.num_blocks, channels=config.channels)

    def reset_parameters(self, *, residual_init_scale: float = 0.1) -> None:
        """Kaiming-normal conv init, with each residual branch's last conv scaled by ``residual_init_scale``.

        Scaling the residual branches down makes every block start close to the identity, which trains deep
        SR networks faster and more stably (as in EDSR/ESRGAN). PReLU slopes start at 0.25 and BN at identity.

        A model built on the ``meta`` device (shapes only, as :func:`srgan.weights.check_architecture` builds it) has
        no values to initialise: skipped, and so is torch's meta ``normal_``, which imports ``torch._dynamo``
        (about 2 s of a fresh ``srgan upscale``).
        """
        if self.tail.weight.is_meta:
            return
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
        return self.reconstruct(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk: (N, 3, H, W) -> (N, channels, H, W) features at input resolution (head, residual blocks, long
        skip). ``forward(x) == reconstruct(features(x))``; tiled inference runs the two in differently sized tiles."""
        feat = self.head(x)
        out: torch.Tensor = feat + self.body_tail(self.body(feat))
        return out

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """The upsampling stages and the tail: (N, channels, H, W) -> (N, 3, scale*H, scale*W)."""
        out: torch.Tensor = self.tail(self.upsample(features))
        return out


# ----------------------------------------------------------------------------- the "srgan" architecture
_BLOCK_RE = re.compile(r"^body\.(\d+)\.")


def config_from_state_dict(state_dict: Mapping[str, Any]) -> GeneratorConfig:
    """Read the architecture of a :class:`Generator` from a state dict's keys and shapes."""
    head = state_dict.get("head.0.weight")
    if not isinstance(head, torch.Tensor):
        sample = ", ".join(map(str, list(state_dict)[:8]))
        raise IncompatibleCheckpointError(
            f"not an srgan Generator state dict: no 'head.0.weight' key (found: {sample}...). "
            "Pass a checkpoint written by srgan (save_pretrained / Trainer)."
        )
    if head.dim() != 4 or tuple(head.shape[1:]) != (3, 9, 9):
        raise incompatible(
            state_dict,
            f"an srgan Generator state dict needs head.0.weight of shape (C, 3, 9, 9), got {tuple(head.shape)}",
        )
    blocks = {int(m.group(1)) for k in state_dict if (m := _BLOCK_RE.match(k))}
    stages = {k.split(".")[1] for k in state_dict if k.startswith("upsample.")}
    return GeneratorConfig(scale=2 ** len(stages), num_blocks=len(blocks), channels=int(head.shape[0]))


def _trunk_radius(num_blocks: int) -> int:
    """Receptive radius of the SRResNet trunk: a 9x9 head, two 3x3 convs per residual block, a 3x3 trunk tail."""
    return 4 + 2 * num_blocks + 1


def _upsampling_radius(scale: int) -> int:
    """Receptive radius (input pixels, rounded up) of the x2 stages (a 3x3 conv each, at 2**i times the input
    resolution) and the 9x9 tail at output resolution."""
    reach = sum(1.0 / 2**i for i in range(int(math.log2(scale)))) + 4.0 / scale
    radius: int = math.ceil(reach)
    return radius


def srresnet_receptive_radius(*, scale: int, num_blocks: int) -> int:
    """Receptive radius (input pixels, rounded up) of the SRResNet shape of network: a 9x9 head, two 3x3 convs per
    residual block, a 3x3 trunk tail, ``log2(scale)`` x2 stages with a 3x3 conv each, a 9x9 tail (the trunk's
    radius is whole, so rounding the upsampling part alone gives the same number)."""
    return _trunk_radius(num_blocks) + _upsampling_radius(scale)


def srresnet_stages(*, scale: int, num_blocks: int, channels: int) -> StageSplit:
    """How an SRResNet-shaped network splits into its trunk (``features``: a 9x9 head, two 3x3 convs per block, a
    3x3 trunk tail) and its upsampling layers (``reconstruct``: a 3x3 conv per x2 stage, the 9x9 tail at output
    resolution), with their radii and peak memory per input pixel.

    The trunk keeps 4 feature maps alive (the long skip, a block's input, its conv and PReLU outputs): 1.0 kB per
    input pixel in fp32 for 64 channels. Inference runs in :func:`srgan.runtime.heap_reuse`, where the heap holds
    freed maps apart from the ones in use: measured 1.8 kB per pixel (a 1024x1024 trunk in fp32), so 7 maps are
    declared. The upsampling layers: 2.5 maps of the widest stage (:func:`upsampling_activation_values`).
    """
    return StageSplit(
        features_radius=_trunk_radius(num_blocks),
        reconstruct_radius=_upsampling_radius(scale),
        features_values_per_pixel=7.0 * channels,
        feature_channels=channels,
        reconstruct_values_per_pixel=upsampling_activation_values(scale=scale, channels=channels),
    )


def upsampling_activation_values(*, scale: int, channels: int) -> float:
    """Peak activation values per input pixel of a network with x2 PixelShuffle stages, from the widest stage:
    2.5 live tensors of ``4 * channels * (scale / 2) ** 2`` values (measured: about 5.1 kB per pixel for the
    default x4 model in bf16, 10 kB in fp32)."""
    return 2.5 * 4 * channels * max(1.0, (scale / 2) ** 2)


def _inference_rewrite(g: Generator) -> None:
    """Inference rewrite (eval mode, after BN folding): the last x2 stage's PReLU and the 9x9 tail run before its
    PixelShuffle, at half the output resolution (:mod:`srgan.models._subpixel`), about 1.4x faster on a CPU; on a CPU
    the residual blocks add into the trunk's map in place (:mod:`srgan.models._onednn`) and the PReLUs that follow a
    conv or a shuffle overwrite its output (:mod:`srgan.models._inplace`). Same output."""
    blocks = [b for b in g.body if isinstance(b, ResidualBlock) and isinstance(b.bn1, nn.Identity)]
    blocks = [b for b in blocks if isinstance(b.bn2, nn.Identity)]  # BatchNorm folded
    if blocks and len(blocks) == len(g.body):
        g.body = FusedResidualBody((b.conv1, b.act, b.conv2) for b in blocks)  # type: ignore[assignment]
    head_act = g.head[1]
    if isinstance(head_act, nn.PReLU):
        g.head[1] = InplacePReLU(head_act)  # on the head conv's fresh output
    for block in g.upsample[:-1]:
        if isinstance(block, UpsampleBlock) and isinstance(block.act, nn.PReLU):
            block.act = InplacePReLU(block.act)  # type: ignore[assignment]  # on the shuffle's fresh output
    last = g.upsample[-1]
    assert isinstance(last, UpsampleBlock)
    g.upsample[-1] = nn.Sequential(last.conv, InplacePReLU(prelu_before_shuffle(last.act, 2)))
    g.tail = conv_before_shuffle(g.tail, 2)  # type: ignore[assignment]


def _conv_bn_pairs(g: Generator) -> Iterator[tuple[nn.Module, str, str]]:
    for block in g.body:
        yield block, "conv1", "bn1"
        yield block, "conv2", "bn2"
    yield g.body_tail, "0", "1"


ARCHITECTURE: Architecture[GeneratorConfig, Generator] = Architecture(
    name="srgan",
    model_class=Generator,
    config_class=GeneratorConfig,
    summary="srgan.models.Generator: head.0.weight, body.0.conv1.weight, ...",
    detect=lambda state: "head.0.weight" in state,
    config_from_state_dict=config_from_state_dict,
    config_to_dict=GeneratorConfig.to_dict,
    config_from_dict=GeneratorConfig.from_dict,
    build=Generator.from_config,
    receptive_radius=lambda c: srresnet_receptive_radius(scale=c.scale, num_blocks=c.num_blocks),
    activation_values_per_pixel=lambda c: upsampling_activation_values(scale=c.scale, channels=c.channels),
    conv_bn_pairs=_conv_bn_pairs,
    inference_rewrite=_inference_rewrite,
    stages=lambda c: srresnet_stages(scale=c.scale, num_blocks=c.num_blocks, channels=c.channels),
)
