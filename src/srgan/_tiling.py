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
from .models import ModelConfig, registry

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
    """How many input pixels on each side influence one output pixel of a model of this architecture (rounded up),
    as its registered :class:`~srgan.models.registry.Architecture` declares.

    Raises:
        ConfigError: not the config of a registered generator architecture.
    """
    arch = registry.for_config(config)
    if arch.receptive_radius is None:
        raise ConfigError(f"{arch.name!r} models are not tiled: they are not generators")
    radius: int = arch.receptive_radius(config)
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
