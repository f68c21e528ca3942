"""Sensor noise of Real-ESRGAN's degradation model: Gaussian and Poisson, in colour or grey, per image of a batch.

Every function takes (N, C, H, W) float images in [0, 1] on any device and draws from the caller's
``torch.Generator`` (noise fields are drawn on the image's device: by the generator itself when it lives there,
else by one seeded from it). Sigmas are in units of the [0, 1] range here (Real-ESRGAN's "1..30" is 1/255..30/255).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ._common import check_image, check_prob, check_range, generator_for, resolve_generator, uniform

__all__ = ["add_gaussian_noise", "add_poisson_noise", "add_noise"]

_GREY = (0.299, 0.587, 0.114)
_HALF = (torch.float16, torch.bfloat16)


def _per_image(value: float | torch.Tensor, n: int, name: str, device: torch.device) -> torch.Tensor:
    """A number or (N,) tensor as an (N, 1, 1, 1) float32 tensor on ``device``, checked finite and >= 0."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a number >= 0 or a tensor of one per image, got {value!r}")
    t = torch.as_tensor(value, dtype=torch.float32).detach().flatten().cpu()
    if t.numel() not in (1, n):
        raise ConfigError(f"{name}: expected one value or one per image ({n}), got {t.numel()}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ConfigError(f"{name} must be finite and >= 0, got {t.tolist()}; use 0 for no noise")
    return t.expand(n).to(device).view(n, 1, 1, 1)


def _grey_mask(gray: bool | torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(gray).flatten().to(torch.bool)
    if t.numel() not in (1, n):
        raise ConfigError(f"gray: expected one bool or one per image ({n}), got {t.numel()}")
    return t.expand(n).to(device).view(n, 1, 1, 1)


def add_gaussian_noise(
    x: torch.Tensor,
    sigma: float | torch.Tensor,
    *,
    gray: bool | torch.Tensor = False,
    generator: torch.Generator | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (per image) to each pixel.

    Args:
        x: (N, C, H, W) float in [0, 1], any device.
        sigma: standard deviation in [0, 1] units (e.g. 30 / 255), one number or an (N,) tensor; >= 0.
        gray: the same noise in every channel (luminance noise) instead of independent colour noise; one bool or
            an (N,) bool tensor.
        generator: the source of the noise field.
        clip: clamp the result to [0, 1].

    Returns:
        (N, C, H, W), same dtype and device.
    """
    x = check_image(x, "add_gaussian_noise")
    n = x.shape[0]
    s = _per_image(sigma, n, "sigma", x.device).to(x.dtype)
    grey = _grey_mask(gray, n, x.device)
    g = generator_for(resolve_generator(generator), x.device)
    noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    noise = torch.where(grey, noise[:, :1], noise)  # grey: the first channel's field in every channel
    out = x + s * noise
    return out.clamp(0, 1) if clip else out


def add_poisson_noise(
    x: torch.Tensor,
    scale: float | torch.Tensor,
    *,
    gray: bool | torch.Tensor = False,
    generator: torch.Generator | None = None,
    clip: bool = True,
    peak: float = 255.0,
) -> torch.Tensor:
    """Add Poisson (shot) noise, as Real-ESRGAN does: ``scale * (poisson(x * peak) / peak - x)``.

    The image, rounded to 8 bits, is a photon count with ``peak`` photons at white (Real-ESRGAN uses the next
    power of two above the number of distinct levels, 256 for a photo); its Poisson draw minus the image, times
    ``scale``, is the noise. Its standard deviation at a level ``v`` is ``scale * sqrt(v / peak)``: brighter areas
    are noisier, as on a sensor.

    Args:
        x: (N, C, H, W) float in [0, 1], any device.
        scale: noise strength >= 0 (Real-ESRGAN draws 0.05..3), one number or an (N,) tensor.
        gray: the noise of the BT.601 luma in every channel instead of per channel; one bool or an (N,) tensor.
        generator: the source of the Poisson draws.
        clip: clamp the result to [0, 1].
        peak: photon count of a white pixel (> 0).

    Returns:
        (N, C, H, W), same dtype and device.
    """
    x = check_image(x, "add_poisson_noise")
    if not (isinstance(peak, (int, float)) and peak > 0):
        raise ConfigError(f"peak must be > 0, got {peak!r}")
    n, c, _, _ = x.shape
    s = _per_image(scale, n, "scale", x.device).to(x.dtype)
    grey = _grey_mask(gray, n, x.device)
    g = generator_for(resolve_generator(generator), x.device)
    levels = (torch.round(x.clamp(0, 1) * 255) / 255).to(torch.float32 if x.dtype in _HALF else x.dtype)
    noise = torch.empty_like(levels)
    grey_idx = grey.flatten().nonzero().flatten()
    colour_idx = (~grey.flatten()).nonzero().flatten()
    if colour_idx.numel():
        v = levels.index_select(0, colour_idx)
        noise.index_copy_(0, colour_idx, torch.poisson(v * peak, generator=g) / peak - v)
    if grey_idx.numel():
        v = levels.index_select(0, grey_idx)
        if c == 3:
            v = (v * torch.tensor(_GREY, dtype=v.dtype, device=v.device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        else:
            v = v.mean(dim=1, keepdim=True)
        noise.index_copy_(0, grey_idx, (torch.poisson(v * peak, generator=g) / peak - v).expand(-1, c, -1, -1))
    noise = noise.to(x.dtype)
    out = x + s * noise
    return out.clamp(0, 1) if clip else out


def add_noise(
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    gaussian_prob: float = 0.5,
    sigma: tuple[float, float] = (1 / 255, 30 / 255),
    poisson_scale: tuple[float, float] = (0.05, 3.0),
    gray_prob: float = 0.4,
    clip: bool = True,
) -> torch.Tensor:
    """Real-ESRGAN's random noise step: per image, Gaussian noise with probability ``gaussian_prob``, else Poisson.

    Each image draws its own kind, strength (``sigma`` uniform in the range, [0, 1] units; or the Poisson
    ``poisson_scale``) and whether the noise is grey (probability ``gray_prob``). Defaults: Real-ESRGAN x4plus's
    first order.

    Args:
        x: (N, C, H, W) float in [0, 1], any device.

    Returns:
        (N, C, H, W), same dtype and device.
    """
    x = check_image(x, "add_noise")
    check_prob("gaussian_prob", gaussian_prob)
    check_prob("gray_prob", gray_prob)
    check_range("sigma", sigma, low=0.0, what=" in [0, 1] units (30/255 for Real-ESRGAN's strongest)")
    check_range("poisson_scale", poisson_scale, low=0.0)
    g = resolve_generator(generator)
    n = x.shape[0]
    gaussian = uniform(n, 0.0, 1.0, g).cpu() < gaussian_prob
    sig = uniform(n, sigma[0], sigma[1], g).cpu()
    pscale = uniform(n, poisson_scale[0], poisson_scale[1], g).cpu()
    grey = uniform(n, 0.0, 1.0, g).cpu() < gray_prob
    out = x
    if bool(gaussian.any()):
        idx = gaussian.nonzero().flatten()
        dev = idx.to(x.device)
        out = out.index_copy(
            0, dev, add_gaussian_noise(x.index_select(0, dev), sig[idx], gray=grey[idx], generator=g, clip=clip)
        )
    if not bool(gaussian.all()):
        idx = (~gaussian).nonzero().flatten()
        dev = idx.to(x.device)
        out = out.index_copy(
            0, dev, add_poisson_noise(x.index_select(0, dev), pscale[idx], gray=grey[idx], generator=g, clip=clip)
        )
    return out
