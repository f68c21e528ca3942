"""Blur kernels of Real-ESRGAN's degradation model, made per image and applied to a batch in one grouped conv.

A kernel here is a (K, K) float tensor that sums to 1, K odd; a batch of kernels is (N, K, K), one per image. Kernels
of different sizes share one batch by zero padding to the largest (``pad_to``, 21 in Real-ESRGAN), which changes
nothing in the filtered result.

- :func:`bivariate_kernel`: Gaussian (``beta=1``, ``plateau=False``), generalized Gaussian (other ``beta``) and
  plateau (``plateau=True``) kernels, isotropic (``sigma_x == sigma_y``) or anisotropic (rotated by ``theta``):
  ``exp(-0.5 * q ** beta)`` or ``1 / (1 + q ** beta)`` with ``q = [x y] Sigma^-1 [x y]^T``.
- :func:`sinc_kernel`: the 2-D sinc (circular low-pass, ``cutoff * J1(cutoff * r) / (2 pi r)``) that makes ringing
  and overshoot artefacts.
- :func:`random_kernel`: Real-ESRGAN's draw: a sinc kernel with probability ``sinc_prob``, else one of the six
  families of :data:`KERNEL_TYPES` with the given probabilities.
- :func:`filter2d`: each image convolved with its own kernel, reflect padding.
- :func:`unsharp_mask`: Real-ESRGAN's USM sharpening of HR targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InvalidImageError
from ._common import check_image, check_prob, check_probs, check_range, choice, resolve_generator, uniform

__all__ = [
    "KERNEL_TYPES",
    "bivariate_kernel",
    "sinc_kernel",
    "pulse_kernel",
    "random_kernel",
    "random_sinc_kernel",
    "filter2d",
    "unsharp_mask",
]

#: The kernel families of :func:`random_kernel`, in the order of its ``probs``.
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _check_size(size: int, name: str = "kernel size") -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ConfigError(f"{name} must be a positive odd integer, got {size!r}")


def _as_params(value: float | torch.Tensor, n: int | None, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).flatten()
    if n is not None and t.numel() not in (1, n):
        raise ConfigError(f"{name}: expected one value or one per kernel ({n}), got {t.numel()}")
    return t


def _grid(pad_to: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    ax = torch.arange(pad_to, dtype=torch.float64, device=device) - pad_to // 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def _size_mask(sizes: torch.Tensor, pad_to: int) -> torch.Tensor:
    """(N, pad_to, pad_to) True inside each centred sizes[i] x sizes[i] square."""
    xx, yy = _grid(pad_to, sizes.device)
    r = (sizes.to(torch.float64) // 2).view(-1, 1, 1)
    return (xx.abs() <= r) & (yy.abs() <= r)


def _sizes(size: int | torch.Tensor, n: int | None) -> torch.Tensor:
    s = torch.as_tensor(size).flatten().to(torch.int64)
    if s.numel() == 0 or (n is not None and s.numel() not in (1, n)):
        raise ConfigError(f"kernel size: expected one odd size or one per kernel, got {s.numel()} values")
    if bool(((s < 1) | (s % 2 == 0)).any()):
        raise ConfigError(f"kernel sizes must be positive odd integers, got {s.tolist()}")
    return s


def _normalise(k: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (k / k.sum(dim=(-2, -1), keepdim=True)).to(dtype)


def bivariate_kernel(
    size: int | torch.Tensor,
    sigma_x: float | torch.Tensor,
    sigma_y: float | torch.Tensor | None = None,
    theta: float | torch.Tensor = 0.0,
    *,
    beta: float | torch.Tensor = 1.0,
    plateau: bool | torch.Tensor = False,
    pad_to: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Anisotropic Gaussian, generalized Gaussian or plateau kernels, one per set of parameters.

    With ``q = [x y] Sigma^-1 [x y]^T`` and ``Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``, the kernel is
    ``exp(-0.5 * q ** beta)`` (Gaussian for ``beta = 1``), or ``1 / (1 + q ** beta)`` where ``plateau`` is True;
    then normalised to sum 1.

    Args:
        size: odd side K (or one per kernel; smaller kernels are zero-padded to ``pad_to``).
        sigma_x, sigma_y: standard deviations in pixels along the kernel's own axes (> 0); ``sigma_y`` defaults to
            ``sigma_x`` (isotropic). Numbers or (N,) tensors.
        theta: rotation in radians.
        beta: shape exponent (> 0): < 1 heavier tails, > 1 flatter top.
        plateau: the plateau family instead of the (generalized) Gaussian one, per kernel or for all.
        pad_to: side of the returned kernels (default: the largest ``size``).
        dtype: of the result.

    Returns:
        (N, P, P) kernels on the CPU (N = the number of parameter sets, 1 for plain numbers), each summing to 1.
    """
    sizes = _sizes(size, None)
    sx = _as_params(sigma_x, None, "sigma_x")
    sy = sx if sigma_y is None else _as_params(sigma_y, None, "sigma_y")
    th, be = _as_params(theta, None, "theta"), _as_params(beta, None, "beta")
    pl = torch.as_tensor(plateau).flatten().to(torch.bool)
    n = max(t.numel() for t in (sizes, sx, sy, th, be, pl))
    for name, t in (("size", sizes), ("sigma_x", sx), ("sigma_y", sy), ("theta", th), ("beta", be), ("plateau", pl)):
        if t.numel() not in (1, n):
            raise ConfigError(f"{name}: expected one value or one per kernel ({n}), got {t.numel()}")
    if bool((sx <= 0).any()) or bool((sy <= 0).any()) or not bool(torch.isfinite(torch.cat([sx, sy])).all()):
        raise ConfigError(f"kernel sigmas must be finite and > 0, got sigma_x={sx.tolist()} sigma_y={sy.tolist()}")
    if bool((be <= 0).any()):
        raise ConfigError(f"beta must be > 0, got {be.tolist()}")
    p = int(sizes.max()) if pad_to is None else pad_to
    _check_size(p, "pad_to")
    if int(sizes.max()) > p:
        raise ConfigError(f"pad_to = {p} is smaller than the kernel size {int(sizes.max())}")
    xx, yy = _grid(p)
    c, s = torch.cos(th).view(-1, 1, 1), torch.sin(th).view(-1, 1, 1)
    u = c * xx + s * yy  # coordinates along the kernel's rotated axes
    v = -s * xx + c * yy
    q = (u / sx.view(-1, 1, 1)) ** 2 + (v / sy.view(-1, 1, 1)) ** 2
    qb = q ** be.view(-1, 1, 1)
    k = torch.where(pl.view(-1, 1, 1), 1.0 / (1.0 + qb), torch.exp(-0.5 * qb))
    k = k.expand(n, p, p) * _size_mask(sizes.expand(n), p)
    return _normalise(k, dtype)


def sinc_kernel(
    size: int | torch.Tensor,
    cutoff: float | torch.Tensor,
    *,
    pad_to: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """2-D sinc (ideal circular low-pass) kernels: ``cutoff * J1(cutoff * r) / (2 pi r)``, normalised to sum 1.

    Args:
        size: odd side K, or one per kernel.
        cutoff: angular cutoff frequency in radians per pixel, in (0, pi] (pi keeps everything but ringing);
            a number or an (N,) tensor.
        pad_to: side of the returned kernels (default: the largest ``size``).

    Returns:
        (N, P, P) kernels on the CPU, each summing to 1 (with negative lobes: they ring).
    """
    sizes = _sizes(size, None)
    wc = _as_params(cutoff, None, "cutoff")
    n = max(sizes.numel(), wc.numel())
    if sizes.numel() not in (1, n) or wc.numel() not in (1, n):
        raise ConfigError(f"size and cutoff: expected one value or one per kernel ({n})")
    if bool((wc <= 0).any()) or bool((wc > math.pi + 1e-9).any()):
        raise ConfigError(f"sinc cutoff must be in (0, pi] radians per pixel, got {wc.tolist()}")
    p = int(sizes.max()) if pad_to is None else pad_to
    _check_size(p, "pad_to")
    if int(sizes.max()) > p:
        raise ConfigError(f"pad_to = {p} is smaller than the kernel size {int(sizes.max())}")
    xx, yy = _grid(p)
    r = torch.sqrt(xx**2 + yy**2)
    w = wc.view(-1, 1, 1)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    k = torch.where(r == 0, w**2 / (4 * math.pi), w * torch.special.bessel_j1(w * safe_r) / (2 * math.pi * safe_r))
    k = k.expand(n, p, p) * _size_mask(sizes.expand(n), p)
    return _normalise(k, dtype)


def pulse_kernel(n: int = 1, *, size: int = 21, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, size, size) identity kernels (1 at the centre): filtering with them changes nothing."""
    _check_size(size)
    k = torch.zeros(n, size, size, dtype=dtype)
    k[:, size // 2, size // 2] = 1
    return k


def _draw_sizes(n: int, size_range: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    lo, hi = int(size_range[0]), int(size_range[1])
    steps = (hi - lo) // 2 + 1
    return lo + 2 * torch.randint(0, steps, (n,), generator=generator, device=generator.device).cpu()


def _check_size_range(size_range: Sequence[int], pad_to: int) -> None:
    ok = (
        isinstance(size_range, (tuple, list))
        and len(size_range) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 == 1 for v in size_range)
        and size_range[0] <= size_range[1] <= pad_to
    )
    if not ok:
        raise ConfigError(
            f"kernel_size = {size_range!r} is invalid: expected a (low, high) pair of odd sizes with low <= high "
            f"<= pad_to ({pad_to}), e.g. (7, 21)"
        )


def _beta(n: int, beta_range: Sequence[float], generator: torch.Generator) -> torch.Tensor:
    """Real-ESRGAN's shape draw: uniform in [low, 1) or [1, high) with probability 1/2 each."""
    low_side = uniform(n, 0, 1, generator).cpu() < 0.5
    below = uniform(n, float(beta_range[0]), 1.0, generator).cpu()
    above = uniform(n, 1.0, float(beta_range[1]), generator).cpu()
    return torch.where(low_side, below, above).to(torch.float64)


def random_sinc_kernel(
    n: int,
    *,
    generator: torch.Generator | None = None,
    kernel_size: tuple[int, int] = (7, 21),
    cutoff: tuple[float, float] | None = None,
    pad_to: int = 21,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` sinc kernels of random odd size in ``kernel_size`` and random cutoff (radians per pixel).

    ``cutoff`` defaults to Real-ESRGAN's draw: uniform in [pi/3, pi] for sizes below 13, [pi/5, pi] from 13.
    Returns (n, pad_to, pad_to).
    """
    g = resolve_generator(generator)
    _check_size(pad_to, "pad_to")
    _check_size_range(kernel_size, pad_to)
    if cutoff is not None:
        check_range("cutoff", cutoff, low=1e-6, high=math.pi)
    sizes = _draw_sizes(n, kernel_size, g)
    u = uniform(n, 0.0, 1.0, g).cpu().to(torch.float64)
    if cutoff is None:
        low = torch.where(sizes < 13, math.pi / 3, math.pi / 5).to(torch.float64)
        wc = low + (math.pi - low) * u
    else:
        wc = cutoff[0] + (cutoff[1] - cutoff[0]) * u
    return sinc_kernel(sizes, wc, pad_to=pad_to, dtype=dtype)


def random_kernel(
    n: int,
    *,
    generator: torch.Generator | None = None,
    kernel_size: tuple[int, int] = (7, 21),
    probs: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
    sigma: tuple[float, float] = (0.2, 3.0),
    beta_gaussian: tuple[float, float] = (0.5, 4.0),
    beta_plateau: tuple[float, float] = (1.0, 2.0),
    sinc_prob: float = 0.1,
    pad_to: int = 21,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` random blur kernels, drawn as Real-ESRGAN draws its first-order kernels (defaults: x4plus).

    Each kernel independently: a random odd size in ``kernel_size``; with probability ``sinc_prob`` a sinc kernel
    (:func:`random_sinc_kernel`), else a family from :data:`KERNEL_TYPES` with probabilities ``probs``, sigmas
    uniform in ``sigma`` (the same for both axes for ``*_iso``; independent, rotated by a uniform angle in
    [-pi, pi] for ``*_aniso``), ``beta`` drawn from ``beta_gaussian`` / ``beta_plateau`` (uniform below or above 1
    with probability 1/2 each).

    Returns:
        (n, pad_to, pad_to) kernels on the CPU, each summing to 1. All draws come from ``generator``.
    """
    g = resolve_generator(generator)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive number of kernels, got {n!r}")
    _check_size(pad_to, "pad_to")
    _check_size_range(kernel_size, pad_to)
    check_probs("kernel probs", probs, len(KERNEL_TYPES))
    check_range("sigma", sigma, low=1e-6)
    check_range("beta_gaussian", beta_gaussian, low=1e-3)
    check_range("beta_plateau", beta_plateau, low=1e-3)
    check_prob("sinc_prob", sinc_prob)

    kind = choice(n, probs, g)  # index into KERNEL_TYPES
    sizes = _draw_sizes(n, kernel_size, g)
    sx = uniform(n, sigma[0], sigma[1], g).cpu().to(torch.float64)
    sy = uniform(n, sigma[0], sigma[1], g).cpu().to(torch.float64)
    theta = uniform(n, -math.pi, math.pi, g).cpu().to(torch.float64)
    beta_g = _beta(n, beta_gaussian, g)
    beta_p = _beta(n, beta_plateau, g)
    iso = kind % 2 == 0
    plateau = kind >= 4
    beta = torch.where(kind <= 1, torch.ones_like(beta_g), torch.where(plateau, beta_p, beta_g))
    kernels = bivariate_kernel(
        sizes,
        sx,
        torch.where(iso, sx, sy),
        torch.where(iso, torch.zeros_like(theta), theta),
        beta=beta,
        plateau=plateau,
        pad_to=pad_to,
        dtype=dtype,
    )
    use_sinc = uniform(n, 0.0, 1.0, g).cpu() < sinc_prob
    sinc = random_sinc_kernel(n, generator=g, kernel_size=kernel_size, pad_to=pad_to, dtype=dtype)
    return torch.where(use_sinc.view(-1, 1, 1), sinc, kernels)


def filter2d(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image with its own kernel (one grouped conv for the batch), reflect padding.

    Args:
        x: (N, C, H, W) float, any device.
        kernels: (N, K, K) one per image, or (K, K) for all; K odd. Moved to ``x``'s device and dtype.

    Returns:
        (N, C, H, W), same dtype and device. Where an image is not larger than K // 2 the border is replicated
        instead of reflected.
    """
    x = check_image(x, "filter2d")
    if not isinstance(kernels, torch.Tensor) or kernels.ndim not in (2, 3) or kernels.shape[-1] != kernels.shape[-2]:
        got = tuple(kernels.shape) if isinstance(kernels, torch.Tensor) else type(kernels).__name__
        raise InvalidImageError(f"filter2d: expected kernels (N, K, K) or (K, K), got {got}")
    k = kernels.shape[-1]
    _check_size(k)
    n, c, h, w = x.shape
    if kernels.ndim == 3 and kernels.shape[0] != n:
        raise InvalidImageError(f"filter2d: expected one kernel per image ({n}), got {kernels.shape[0]}")
    weight = kernels.to(device=x.device, dtype=x.dtype)
    # Zero rings common to every kernel (small kernels padded to the batch's size) cost time and change nothing.
    nonzero = (weight.reshape(-1, k, k).abs().amax(dim=0) > 0).nonzero()
    r = int((nonzero - k // 2).abs().max()) if nonzero.numel() else k // 2
    if r < k // 2:
        weight = weight[..., k // 2 - r : k // 2 + r + 1, k // 2 - r : k // 2 + r + 1]
        k = 2 * r + 1
    pad = k // 2
    mode = "reflect" if min(h, w) > pad else "replicate"
    xp = F.pad(x, (pad, pad, pad, pad), mode=mode) if pad else x
    if weight.ndim == 2:
        return F.conv2d(xp, weight.expand(c, 1, k, k), groups=c)
    weight = weight[:, None].expand(n, c, k, k).reshape(n * c, 1, k, k)
    out = F.conv2d(xp.reshape(1, n * c, h + 2 * pad, w + 2 * pad), weight, groups=n * c)
    return out.view(n, c, h, w)


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


def _separable_blur(x: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    c, pad = x.shape[1], k1.numel() // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    out = F.pad(x, (pad, pad, pad, pad), mode=mode)
    out = F.conv2d(out, k1.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, k1.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def unsharp_mask(
    x: torch.Tensor, *, weight: float = 0.5, radius: int = 50, sigma: float | None = None, threshold: float = 10.0
) -> torch.Tensor:
    """Real-ESRGAN's USM sharpening of HR targets (its ``USMSharp`` defaults).

    ``sharp = clamp(x + weight * (x - blur(x)), 0, 1)``, blended back into ``x`` through a soft mask: the blurred
    indicator of pixels where ``|x - blur(x)| * 255 > threshold`` (edges sharpen, flat areas and noise do not).

    Args:
        x: (N, C, H, W) float in [0, 1], any device.
        weight: sharpening amount (>= 0).
        radius: the Gaussian kernel is ``2 * radius + 1`` wide (Real-ESRGAN: 50).
        sigma: its sigma; default OpenCV's for that size, ``0.3 * (radius - 1) + 0.8`` (8.3 for radius 50).
        threshold: in 8-bit levels.

    Returns:
        (N, C, H, W) in [0, 1], same dtype and device.
    """
    x = check_image(x, "unsharp_mask")
    if not (isinstance(weight, (int, float)) and weight >= 0):
        raise ConfigError(f"unsharp_mask weight must be >= 0, got {weight!r}")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ConfigError(f"unsharp_mask radius must be a positive integer, got {radius!r}")
    s = 0.3 * (radius - 1) + 0.8 if sigma is None else sigma
    if not s > 0:
        raise ConfigError(f"unsharp_mask sigma must be > 0, got {sigma!r}")
    k1 = _gaussian_1d(2 * radius + 1, s, x.dtype, x.device)
    residual = x - _separable_blur(x, k1)
    mask = (residual.abs() * 255 > threshold).to(x.dtype)
    soft = _separable_blur(mask, k1)
    sharp = (x + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * x
