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

__all__ = ["Tile", "band_rows", "receptive_radius", "plan_tiles", "plan_padded_tiles"]


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


def _split(length: int, *, side: int, pad: int) -> list[tuple[int, int]]:
    """Cores ``[(start, stop), ...]`` covering ``0:length`` whose padded extent (``pad`` on each side, clipped at the
    ends) is at most ``side``, as few as possible and of nearly equal padded extent: the two end cores are ``pad``
    longer than the inner ones, since they carry context on one side only."""
    if length <= side:
        return [(0, length)]
    inner = side - 2 * pad  # the longest inner core
    if inner < 1:
        raise ConfigError(f"a padded tile side of {side} leaves no core with {pad} pixels of context on each side")
    # Two end cores of up to side - pad, then inner cores of up to side - 2 * pad.
    n = 2 + max(0, math.ceil((length - 2 * (side - pad)) / inner))
    # Equal padded extents: the end cores are core + pad, the inner ones core + 2 * pad.
    sizes = [pad + (length - 2 * pad) // n + (1 if i < (length - 2 * pad) % n else 0) for i in range(n)]
    sizes[1:-1] = [c - pad for c in sizes[1:-1]]
    sizes[-1] += length - sum(sizes)
    bounds, start = [], 0
    for c in sizes:
        bounds.append((start, start + c))
        start += c
    return bounds


def plan_padded_tiles(height: int, width: int, *, side: int, pad: int) -> Iterator[Tile]:
    """Split an ``height x width`` input into as few tiles as possible whose padded regions (the core plus ``pad``
    pixels of context, clipped at the border) are at most ``side x side``: what a memory budget bounds.

    Unlike :func:`plan_tiles` (cores of at most ``tile``), the cores at the image border are ``pad`` longer than the
    inner ones, because they need context on one side only; so the work repeated for context is as small as the
    budget allows. Any plan with ``pad`` >= the receptive radius gives the same output as an untiled run.
    """
    if side < 1 or pad < 0:
        raise ConfigError(f"side must be >= 1 and pad >= 0, got side={side} and pad={pad}")
    rows, cols = _split(height, side=side, pad=pad), _split(width, side=side, pad=pad)
    for y0, y1 in rows:
        for x0, x1 in cols:
            yield Tile(y0, y1, x0, x1, max(0, y0 - pad), min(height, y1 + pad), max(0, x0 - pad), min(width, x1 + pad))


def band_rows(
    tile: Tile, height: int, width: int, *, budget: float, bytes_per_px: float, radius: int
) -> Iterator[Tile]:
    """Split ``tile``'s core into bands of whole rows for a second stage of ``radius`` pixels of context (the
    upsampling layers of a :class:`~srgan.models.registry.StageSplit`): each band's padded region (its rows and
    the core's columns, ``radius`` more on each side, clipped to the ``height x width`` image) uses at most
    ``budget`` bytes at ``bytes_per_px``, and bands have at least 16 core rows.
    """
    if radius < 0 or bytes_per_px <= 0:
        raise ConfigError(f"radius must be >= 0 and bytes_per_px > 0, got {radius} and {bytes_per_px}")
    px0, px1 = max(0, tile.x0 - radius), min(width, tile.x1 + radius)
    rows = max(16, int(budget // (bytes_per_px * (px1 - px0))) - 2 * radius)
    n = math.ceil((tile.y1 - tile.y0) / rows)
    step = math.ceil((tile.y1 - tile.y0) / n)
    for y0 in range(tile.y0, tile.y1, step):
        y1 = min(tile.y1, y0 + step)
        yield Tile(y0, y1, tile.x0, tile.x1, max(0, y0 - radius), min(height, y1 + radius), px0, px1)
