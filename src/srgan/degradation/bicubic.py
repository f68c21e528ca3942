"""HR -> LR: MATLAB-style bicubic resizing, Gaussian blur + downsampling, the Degradation protocol, seeded pipelines.

All functions take batched float tensors (N, C, H, W) (or (C, H, W)) in [0, 1] on any device and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InvalidImageError

__all__ = [
    "imresize",
    "bicubic_downsample",
    "gaussian_kernel",
    "gaussian_blur",
    "blur_downsample",
    "quantize",
    "modcrop",
    "Degradation",
    "BicubicDegradation",
    "BlurDownsampleDegradation",
    "Compose",
]


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1.0
    outer = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return torch.where(ax <= 1, inner, torch.where(ax <= 2, outer, torch.zeros_like(ax)))


@lru_cache(maxsize=64)
def _resize_matrix(in_size: int, out_size: int, scale: float, antialias: bool) -> torch.Tensor:
    """(out_size, in_size) float64 matrix applying MATLAB ``imresize`` bicubic along one axis.

    Follows MATLAB's ``contributions``: antialiased kernel (widened by 1/scale) when shrinking, and symmetric
    border handling by mirroring out-of-range indices. ``scale`` is the requested factor (MATLAB uses it, not
    ``out_size / in_size``, when they differ because of rounding).
    """
    kernel_width = 4.0
    shrink = antialias and scale < 1
    if shrink:
        kernel_width /= scale
    u = torch.arange(1, out_size + 1, dtype=torch.float64)
    x = u / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(x - kernel_width / 2)
    p = math.ceil(kernel_width) + 2
    idx = left[:, None] + torch.arange(p, dtype=torch.float64)[None, :]  # 1-based
    dist = x[:, None] - idx
    weights = scale * _cubic(dist * scale) if shrink else _cubic(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror indices (symmetric padding): 1..n, n..1, repeating.
    zero_based = (idx - 1).long()
    period = 2 * in_size
    m = torch.remainder(zero_based, period)
    m = torch.where(m >= in_size, period - 1 - m, m)
    mat = torch.zeros(out_size, in_size, dtype=torch.float64)
    mat.scatter_add_(1, m, weights)
    return mat


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor):
        raise InvalidImageError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        return x.unsqueeze(0), True
    if x.ndim == 4:
        return x, False
    raise InvalidImageError(f"expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(x.shape)}")


def imresize(
    x: torch.Tensor,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Bicubic resize with MATLAB ``imresize`` semantics (a = -0.5, antialiasing, symmetric border).

    Args:
        x: (N, C, H, W) or (C, H, W) float tensor, any device.
        scale: resize factor (0.25 to downsample x4). Output size is ``ceil(H * scale)``, as in MATLAB.
        size: explicit (height, width) instead of ``scale``.
        antialias: widen the kernel when shrinking (MATLAB default).

    Returns:
        The resized tensor, same dtype and device, not clamped and not rounded (see :func:`quantize`).
    """
    xb, squeezed = _as_batch(x)
    if (scale is None) == (size is None):
        raise ConfigError("give exactly one of scale= or size=")
    h, w = xb.shape[-2:]
    if scale is not None:
        if scale <= 0:
            raise ConfigError(f"scale must be > 0, got {scale}")
        oh, ow = math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9)
        sh = sw = float(scale)
    else:
        assert size is not None
        oh, ow = size
        if oh < 1 or ow < 1:
            raise ConfigError(f"size must be positive, got {size}")
        sh, sw = oh / h, ow / w
    compute = xb.dtype if xb.dtype in (torch.float32, torch.float64) else torch.float32
    mh = _resize_matrix(h, oh, sh, antialias).to(device=xb.device, dtype=compute)
    mw = _resize_matrix(w, ow, sw, antialias).to(device=xb.device, dtype=compute)
    out = torch.matmul(mh, torch.matmul(xb.to(compute), mw.t()))
    out = out.to(xb.dtype)
    return out.squeeze(0) if squeezed else out


def bicubic_downsample(x: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """MATLAB-style bicubic downsampling by an integer ``factor``: (N, C, H, W) -> (N, C, H/f, W/f) (ceil)."""
    if factor < 1:
        raise ConfigError(f"factor must be >= 1, got {factor}")
    return imresize(x, scale=1.0 / factor)


def quantize(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Clamp to [0, 1] and round to ``levels`` steps (8-bit by default), as saving to an image file does."""
    return torch.round(x.clamp(0, 1) * levels) / levels


def modcrop(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Crop the bottom/right edges so H and W are multiples of ``factor``."""
    h, w = x.shape[-2:]
    return x[..., : h - h % factor, : w - w % factor]


def gaussian_kernel(sigma: float, *, size: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian kernel of odd ``size`` (default ``2*ceil(3*sigma)+1``)."""
    if sigma <= 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise ConfigError(f"kernel size must be a positive odd number, got {size}")
    t = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding. (N, C, H, W) -> same shape."""
    xb, squeezed = _as_batch(x)
    k = gaussian_kernel(sigma, dtype=xb.dtype).to(xb.device)
    c = xb.shape[1]
    pad = k.numel() // 2
    mode = "reflect" if min(xb.shape[-2:]) > pad else "replicate"
    out = F.pad(xb, (pad, pad, pad, pad), mode=mode)
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out.squeeze(0) if squeezed else out


def blur_downsample(x: torch.Tensor, factor: int = 4, sigma: float = 1.5) -> torch.Tensor:
    """The SRGAN paper's degradation: Gaussian blur, then keep every ``factor``-th pixel.

    (N, C, H, W) -> (N, C, floor(H/f), floor(W/f)). Sampling starts at ``factor // 2`` so the LR grid is centred.
    """
    if factor < 1:
        raise ConfigError(f"factor must be >= 1, got {factor}")
    blurred = gaussian_blur(x, sigma)
    off = factor // 2
    h, w = blurred.shape[-2:]
    return blurred[..., off : h - (h % factor) : factor, off : w - (w % factor) : factor]


class Degradation(Protocol):
    """Anything that maps an HR batch (N, C, H, W) in [0, 1] to an LR batch."""

    def __call__(self, hr: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


class BicubicDegradation:
    """MATLAB-style bicubic downsampling by ``factor``, optionally rounded to 8 bits (the benchmark protocol)."""

    def __init__(self, *, factor: int = 4, quantize: bool = True) -> None:
        if factor < 1:
            raise ConfigError(f"factor must be >= 1, got {factor}")
        self.factor = factor
        self.quantize = quantize

    def __call__(self, hr: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        lr = bicubic_downsample(hr, self.factor)
        return quantize(lr) if self.quantize else lr

    def __repr__(self) -> str:
        return f"BicubicDegradation(factor={self.factor}, quantize={self.quantize})"


class BlurDownsampleDegradation:
    """Gaussian blur then decimation by ``factor``.

    ``sigma`` may be a number or a (low, high) range; with a range each image of the batch gets its own sigma,
    drawn from ``generator`` so that pipelines are reproducible.
    """

    def __init__(self, *, factor: int = 4, sigma: float | tuple[float, float] = 1.5, quantize: bool = True) -> None:
        if factor < 1:
            raise ConfigError(f"factor must be >= 1, got {factor}")
        lo, hi = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
        if not 0 < lo <= hi:
            raise ConfigError(f"sigma must be > 0 (and low <= high for a range), got {sigma!r}")
        self.factor = factor
        self.sigma = (float(lo), float(hi))
        self.quantize = quantize

    def __call__(self, hr: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        xb, squeezed = _as_batch(hr)
        lo, hi = self.sigma
        if lo == hi:
            lr = blur_downsample(xb, self.factor, lo)
        else:
            sig = torch.rand(xb.shape[0], generator=generator) * (hi - lo) + lo
            lr = torch.cat([blur_downsample(xb[i : i + 1], self.factor, float(s)) for i, s in enumerate(sig)])
        lr = quantize(lr) if self.quantize else lr
        return lr.squeeze(0) if squeezed else lr

    def __repr__(self) -> str:
        return f"BlurDownsampleDegradation(factor={self.factor}, sigma={self.sigma}, quantize={self.quantize})"


class Compose:
    """Apply degradations in order; the seeded ``generator`` is passed to each."""

    def __init__(self, steps: Sequence[Degradation]) -> None:
        self.steps = list(steps)

    def __call__(self, hr: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        out = hr
        for step in self.steps:
            out = step(out, generator=generator)
        return out

    def __repr__(self) -> str:
        return f"Compose({self.steps!r})"
