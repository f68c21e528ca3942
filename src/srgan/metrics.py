"""Full-reference image quality metrics: PSNR and SSIM as super-resolution papers report them.

The defaults follow the benchmark protocol of the SR literature: compare on the Y channel of ITU-R BT.601 YCbCr
on the [16, 235] scale after removing ``crop_border`` pixels (the scale factor) on each side. SSIM is the one of
Wang et al. (2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering.
Everything is computed in float64.

Y is kept in floating point by default (``round_y=False``): on 8-bit images this reproduces the reference bicubic
x4 figures Set5 28.43 dB / 0.8113 and Set14 26.09 dB / 0.7050. ``round_y=True`` rounds Y to integers as MATLAB's
``rgb2ycbcr`` does on uint8 input, which gives the older tables' Set5 28.42 dB / 0.810.

Inputs are float tensors (N, C, H, W) or (C, H, W) in [0, ``data_range``] (default [0, 1]). For numbers that
match published tables, quantize both images to 8 bits first (:func:`srgan.degradation.quantize`), as saving the
super-resolved image to a PNG file does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .degradation import gaussian_kernel
from .errors import ConfigError, InvalidImageError

__all__ = [
    "rgb_to_y",
    "psnr",
    "ssim",
    "PSNR",
    "SSIM",
]

# ITU-R BT.601 luma for RGB in [0, 1], on the [16, 235] "studio swing" scale (MATLAB rgb2ycbcr).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0
_PEAK = 255.0
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _check_image(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise InvalidImageError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise InvalidImageError(f"{name}: expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.is_complex():
        raise InvalidImageError(f"{name}: expected a real tensor, got dtype {x.dtype}")


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma Y of ITU-R BT.601 YCbCr, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (MATLAB ``rgb2ycbcr``).

    Args:
        x: (N, 3, H, W) or (3, H, W) RGB tensor in [0, 1].

    Returns:
        (N, 1, H, W) or (1, H, W) Y in [16, 235] (not rounded), computed in float64 and returned in the dtype of
        ``x`` when it is a floating-point tensor, float64 otherwise.
    """
    _check_image(x, "x")
    channel_dim = x.ndim - 3
    if x.shape[channel_dim] != 3:
        raise InvalidImageError(f"expected an RGB tensor with 3 channels, got shape {tuple(x.shape)}")
    work = x.to(torch.float64) if x.device.type != "mps" else x.cpu().to(torch.float64)
    r, g, b = work.unbind(channel_dim)
    y = (_Y_OFFSET + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b).unsqueeze(channel_dim)
    out_dtype = x.dtype if x.is_floating_point() else torch.float64
    return y.to(device=x.device, dtype=out_dtype) if out_dtype != torch.float64 else y


def _check_options(crop_border: int, data_range: float) -> None:
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ConfigError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    if not data_range > 0:
        raise ConfigError(f"data_range must be > 0, got {data_range!r}")


def _prepare(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    crop_border: int,
    y_channel: bool,
    round_y: bool,
    data_range: float,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate, batch, crop and convert both images to float64 on the 0..255 scale (Y or all channels)."""
    _check_image(sr, "sr")
    _check_image(hr, "hr")
    if sr.shape != hr.shape:
        raise InvalidImageError(
            f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}; "
            "crop the ground truth to the output size first (see srgan.degradation.modcrop)"
        )
    _check_options(crop_border, data_range)
    squeezed = sr.ndim == 3
    pair = []
    for x in (sr, hr):
        xb = x.unsqueeze(0) if squeezed else x
        if xb.device.type == "mps":  # no float64 on Apple GPUs
            xb = xb.cpu()
        xb = xb.to(torch.float64) / data_range
        h, w = xb.shape[-2:]
        if 2 * crop_border >= min(h, w):
            raise InvalidImageError(f"crop_border={crop_border} leaves no pixel of a {h}x{w} image")
        if crop_border:
            xb = xb[..., crop_border : h - crop_border, crop_border : w - crop_border]
        if y_channel:
            xb = rgb_to_y(xb)
            if round_y:
                xb = torch.floor(xb + 0.5)  # MATLAB rounds half away from zero; Y > 0
        else:
            xb = xb * _PEAK
        pair.append(xb)
    return pair[0], pair[1], squeezed


def psnr(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    round_y: bool = False,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10 log10(255^2 / MSE)`` on the 0..255 scale.

    Args:
        sr: (N, C, H, W) or (C, H, W) float tensor in [0, ``data_range``], the restored image.
        hr: the ground truth, same shape.
        crop_border: pixels removed from each side before comparing (the SR scale factor in benchmarks).
        y_channel: compare the BT.601 Y channel (C must be 3, RGB); otherwise all channels scaled to 0..255.
        round_y: round Y to integers, as MATLAB's ``rgb2ycbcr`` does on uint8 images. The default (float Y)
            reproduces the reference bicubic figures; see the module docstring. Only used with ``y_channel=True``.
        data_range: the value of white in the inputs (1.0 for [0, 1], 255.0 for 0..255 values).

    Returns:
        (N,) float64 tensor of PSNR values in dB (a 0-d tensor for (C, H, W) input) on the inputs' device (on the
        CPU for Apple ``mps`` tensors, which lack float64); ``inf`` for identical images.

    Raises:
        InvalidImageError: the shapes differ, are not 3-D/4-D, or nothing is left after ``crop_border``.
        ConfigError: ``crop_border`` < 0 or ``data_range`` <= 0.
    """
    a, b, squeezed = _prepare(
        sr, hr, crop_border=crop_border, y_channel=y_channel, round_y=round_y, data_range=data_range
    )
    mse = (a - b).pow(2).mean(dim=(1, 2, 3))
    out = 10.0 * torch.log10(_PEAK**2 / mse)
    return out.squeeze(0) if squeezed else out


def _ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM map of two (N, C, H, W) float64 images on the 0..255 scale; 'valid' filtering, (N, C, H-10, W-10)."""
    c = a.shape[1]
    k = gaussian_kernel(_SSIM_SIGMA, size=_SSIM_WINDOW, dtype=torch.float64).to(a.device)
    kh = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    kv = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kh, groups=c), kv, groups=c)

    c1 = (_SSIM_K1 * _PEAK) ** 2
    c2 = (_SSIM_K2 * _PEAK) ** 2
    mu_a, mu_b = filt(a), filt(b)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = filt(a * a) - mu_aa
    var_b = filt(b * b) - mu_bb
    cov = filt(a * b) - mu_ab
    return ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))


def ssim(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    round_y: bool = False,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, as the MATLAB ``ssim_index`` reference computes it.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering (no padding), mean of the
    SSIM map; on RGB (``y_channel=False``) the mean over channels too. No automatic downsampling.

    Args:
        sr: (N, C, H, W) or (C, H, W) float tensor in [0, ``data_range``], the restored image.
        hr: the ground truth, same shape. After cropping, H and W must be at least 11.
        crop_border: pixels removed from each side before comparing (the SR scale factor in benchmarks).
        y_channel: compare the BT.601 Y channel (C must be 3, RGB); otherwise all channels scaled to 0..255.
        round_y: round Y to integers as MATLAB's ``rgb2ycbcr`` does on uint8 images. Only with ``y_channel``.
        data_range: the value of white in the inputs (1.0 for [0, 1], 255.0 for 0..255 values).

    Returns:
        (N,) float64 tensor of SSIM values in [-1, 1] (a 0-d tensor for (C, H, W) input); 1 for identical images.

    Raises:
        InvalidImageError: the shapes differ, are not 3-D/4-D, or the cropped image is smaller than 11x11.
        ConfigError: ``crop_border`` < 0 or ``data_range`` <= 0.
    """
    a, b, squeezed = _prepare(
        sr, hr, crop_border=crop_border, y_channel=y_channel, round_y=round_y, data_range=data_range
    )
    h, w = a.shape[-2:]
    if min(h, w) < _SSIM_WINDOW:
        raise InvalidImageError(
            f"SSIM needs at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after cropping, got {h}x{w} "
            f"(crop_border={crop_border})"
        )
    out = _ssim_map(a, b).mean(dim=(1, 2, 3))
    return out.squeeze(0) if squeezed else out


class _FullReferenceMetric(nn.Module):
    """Shared constructor of :class:`PSNR` and :class:`SSIM` (the options of :func:`psnr` / :func:`ssim`)."""

    def __init__(
        self, *, crop_border: int = 0, y_channel: bool = True, round_y: bool = False, data_range: float = 1.0
    ) -> None:
        super().__init__()
        _check_options(crop_border, data_range)
        self.crop_border = crop_border
        self.y_channel = y_channel
        self.round_y = round_y
        self.data_range = data_range

    def extra_repr(self) -> str:
        return (
            f"crop_border={self.crop_border}, y_channel={self.y_channel}, round_y={self.round_y}, "
            f"data_range={self.data_range}"
        )


class PSNR(_FullReferenceMetric):
    """Module form of :func:`psnr` with the same keyword-only options: ``PSNR(crop_border=4)(sr, hr)`` -> (N,) dB."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) pair in [0, data_range] -> (N,) float64 PSNR in dB."""
        return psnr(
            sr,
            hr,
            crop_border=self.crop_border,
            y_channel=self.y_channel,
            round_y=self.round_y,
            data_range=self.data_range,
        )


class SSIM(_FullReferenceMetric):
    """Module form of :func:`ssim` with the same keyword-only options: ``SSIM(crop_border=4)(sr, hr)`` -> (N,)."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) pair in [0, data_range] -> (N,) float64 SSIM."""
        return ssim(
            sr,
            hr,
            crop_border=self.crop_border,
            y_channel=self.y_channel,
            round_y=self.round_y,
            data_range=self.data_range,
        )
