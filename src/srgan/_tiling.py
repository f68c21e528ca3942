"""Tile plans for bounded-memory inference.

A tile's *core* is the part of the input whose output it owns; the model sees the core plus ``pad`` pixels of
real context on each side (clipped at the image border). With ``pad`` at least the generator's receptive radius,
every output pixel is computed from exactly the same input pixels as in an untiled run, so there are no seams.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ConfigError
from .models import ModelConfig
from .models.peers import MSRResNetConfig

__all__ = ["Tile", "receptive_radius", "plan_tiles"]


@dataclass(frozen=True)
class Tile:
    """One tile, in input (LR) pixel coordinates. ``y0:y1, x0:x1`` is the core; ``py0:py1, px0:px1`` the padded
    region fed to the model."""

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int


def receptive_radius(config: ModelConfig) -> int:
    """How many input pixels on each side influence one output pixel of a model of this architecture (rounded up).

    :class:`~srgan.models.Generator` and :class:`~srgan.models.ClassicSRGANGenerator` share one shape of network
    (9x9 head, two 3x3 convs per block, a 3x3 trunk tail, x2 stages, 9x9 tail); :class:`~srgan.models.MSRResNet`
    has 3x3 convs only, and its bilinear skip reaches one input pixel.
    """
    if isinstance(config, MSRResNetConfig):
        r = 1.0 + 2.0 * config.num_blocks + 1.0  # conv_first, the blocks, upconv1 (input resolution)
        r += 0.5 if config.scale == 4 else 0.0  # upconv2 at twice the input resolution
        r += 2.0 / config.scale  # conv_hr and conv_last at output resolution
        return math.ceil(max(r, 1.0))
    r = 4.0  # 9x9 head
    r += 2.0 * config.num_blocks  # two 3x3 convs per residual block
    r += 1.0  # body tail 3x3
    stages = int(math.log2(config.scale))
    r += sum(1.0 / 2**i for i in range(stages))  # each upsample 3x3 conv runs at 2**i times the input resolution
    r += 4.0 / config.scale  # 9x9 tail at output resolution
    radius: int = math.ceil(r)
    return radius


def plan_tiles(height: int, width: int, *, tile: int, pad: int) -> Iterator[Tile]:
    """Split an ``height x width`` input into cores of at most ``tile x tile`` with ``pad`` pixels of context."""
    if tile < 1:
        raise ConfigError(f"tile must be a positive number of input pixels, got {tile}")
    if pad < 0:
        raise ConfigError(f"pad must be >= 0, got {pad}")
    ny, nx = math.ceil(height / tile), math.ceil(width / tile)
    # Even split so that the last tile is not a sliver.
    th, tw = math.ceil(height / ny), math.ceil(width / nx)
    for iy in range(ny):
        y0, y1 = iy * th, min(height, (iy + 1) * th)
        for ix in range(nx):
            x0, x1 = ix * tw, min(width, (ix + 1) * tw)
            yield Tile(y0, y1, x0, x1, max(0, y0 - pad), min(height, y1 + pad), max(0, x0 - pad), min(width, x1 + pad))
