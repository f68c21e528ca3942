"""Random resizing of Real-ESRGAN's degradation model: up, down or kept, by area, bilinear or bicubic resampling.

The whole batch is resized together (a batch is one tensor, so every image has one size), as in Real-ESRGAN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ._common import check_image, check_probs, check_range, one_choice, resolve_generator, uniform

__all__ = ["RESIZE_MODES", "resize", "random_resize"]

#: The resampling filters of :func:`resize` (``torch.nn.functional.interpolate`` modes, no antialiasing, as
#: Real-ESRGAN uses them).
RESIZE_MODES = ("area", "bilinear", "bicubic")


def resize(x: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize a batch to ``size`` = (height, width) with ``mode`` in :data:`RESIZE_MODES`.

    Args:
        x: (N, C, H, W) float, any device.
        size: output (height, width), each >= 1.
        mode: ``"area"`` (box average; like nearest when enlarging), ``"bilinear"`` or ``"bicubic"`` (half-pixel
            centres, no antialiasing: shrinking aliases, as in Real-ESRGAN).

    Returns:
        (N, C, size[0], size[1]), same dtype and device; bicubic may overshoot [0, 1] (not clamped).
    """
    x = check_image(x, "resize")
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    oh, ow = int(size[0]), int(size[1])
    if oh < 1 or ow < 1:
        raise ConfigError(f"resize size must be positive, got {tuple(size)}")
    if (oh, ow) == tuple(x.shape[-2:]):
        return x
    if mode == "area":
        return F.interpolate(x, size=(oh, ow), mode="area")
    return F.interpolate(x, size=(oh, ow), mode=mode, align_corners=False)


def random_resize(
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.15, 1.5),
    probs: Sequence[float] = (0.2, 0.7, 0.1),
    modes: Sequence[str] = RESIZE_MODES,
    base: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Real-ESRGAN's random resize: up, down or keep with ``probs``, then a factor and a mode.

    Up draws the factor uniform in [1, scale[1]], down in [scale[0], 1], keep is 1; the mode is uniform among
    ``modes``. The output size is ``int(base * factor)`` (at least 1), ``base`` being the current (H, W) by default;
    Real-ESRGAN's second order resizes relative to the final LR size instead (pass it as ``base``).

    Args:
        x: (N, C, H, W) float, any device.
        generator: the source of the draws.
        scale: (low, high) with 0 < low <= 1 <= high. Defaults: Real-ESRGAN x4plus's first order.
        probs: weights of (up, down, keep).
        modes: resampling filters to choose from.
        base: the (H, W) the factor applies to.

    Returns:
        The resized batch, same dtype and device.
    """
    x = check_image(x, "random_resize")
    check_range("scale", scale, low=1e-3)
    if not scale[0] <= 1.0 <= scale[1]:
        raise ConfigError(f"scale = {scale!r} is invalid: expected low <= 1 <= high (down to low, up to high)")
    check_probs("resize probs (up, down, keep)", probs, 3)
    if not modes or any(m not in RESIZE_MODES for m in modes):
        raise ConfigError(f"resize modes must be a non-empty selection of {RESIZE_MODES}, got {modes!r}")
    g = resolve_generator(generator)
    direction = one_choice(probs, g)
    u = float(uniform(1, 0.0, 1.0, g)[0])
    factor = 1 + (scale[1] - 1) * u if direction == 0 else scale[0] + (1 - scale[0]) * u if direction == 1 else 1.0
    mode = modes[one_choice([1.0] * len(modes), g)]
    bh, bw = base if base is not None else x.shape[-2:]
    return resize(x, (max(1, int(bh * factor)), max(1, int(bw * factor))), mode)
