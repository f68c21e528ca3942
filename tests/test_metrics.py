"""Tests for srgan.metrics: known answers, an independent SSIM reference, and the Set5/Set14 bicubic benchmark."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.degradation import imresize, modcrop, quantize
from srgan.errors import ConfigError, InvalidImageError
from srgan.metrics import PSNR, SSIM, psnr, rgb_to_y, ssim

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------------------------
# rgb_to_y


def test_rgb_to_y_white_black_and_primaries() -> None:
    x = torch.zeros(5, 3, 2, 2, dtype=torch.float64)
    x[1] = 1.0  # white
    x[2, 0] = 1.0  # red
    x[3, 1] = 1.0  # green
    x[4, 2] = 1.0  # blue
    y = rgb_to_y(x)
    assert y.shape == (5, 1, 2, 2)
    expected = [16.0, 235.0, 16.0 + 65.481, 16.0 + 128.553, 16.0 + 24.966]
    for i, value in enumerate(expected):
        torch.testing.assert_close(y[i], torch.full((1, 2, 2), value, dtype=torch.float64))


def test_rgb_to_y_unbatched_keeps_float32() -> None:
    y = rgb_to_y(torch.ones(3, 4, 5))
    assert y.shape == (1, 4, 5)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, torch.full((1, 4, 5), 235.0))


def test_rgb_to_y_rejects_non_rgb() -> None:
    with pytest.raises(InvalidImageError, match="3 channels"):
        rgb_to_y(torch.zeros(1, 4, 8, 8))
    with pytest.raises(InvalidImageError, match="shape"):
        rgb_to_y(torch.zeros(8, 8))


# ---------------------------------------------------------------------------------------------------------------
# PSNR


def test_psnr_rgb_constant_offset_closed_form() -> None:
    hr = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 0.8 + 0.1
    sr = hr + 3.0 / 255  # MSE on the 0..255 scale is exactly 9
    got = psnr(sr, hr, y_channel=False)
    assert got.shape == (2,)
    torch.testing.assert_close(got, torch.full((2,), 10 * math.log10(255**2 / 9), dtype=torch.float64))


def test_psnr_y_constant_offset_closed_form() -> None:
    hr = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 0.8 + 0.1
    sr = hr + 0.01  # Y moves by (65.481 + 128.553 + 24.966) * 0.01 = 2.19 everywhere
    expected = 20 * math.log10(255 / 2.19)
    torch.testing.assert_close(psnr(sr, hr), torch.tensor([expected], dtype=torch.float64))


def test_psnr_identical_is_inf_and_unbatched_is_scalar() -> None:
    x = torch.rand(3, 12, 12)
    out = psnr(x, x.clone())
    assert out.ndim == 0
    assert math.isinf(out.item()) and out.item() > 0


def test_psnr_is_per_image() -> None:
    hr = torch.rand(3, 3, 16, 16)
    sr = (hr + torch.randn_like(hr) * torch.tensor([0.01, 0.05, 0.1]).view(3, 1, 1, 1)).clamp(0, 1)
    batched = psnr(sr, hr)
    singles = torch.stack([psnr(sr[i], hr[i]) for i in range(3)])
    torch.testing.assert_close(batched, singles)
    assert batched[0] > batched[1] > batched[2]


def test_psnr_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(InvalidImageError, match=r"\(1, 3, 8, 8\).*\(1, 3, 8, 9\)"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


@pytest.mark.parametrize("border", [1, 4])
def test_crop_border_removes_exactly_that_many_pixels(border: int) -> None:
    hr = torch.rand(2, 3, 20, 24)
    sr = hr.clone()
    sr[..., :border, :] = 1 - sr[..., :border, :]  # errors only in the outer `border` rows/columns
    sr[..., -border:, :] = 1 - sr[..., -border:, :]
    sr[..., :, :border] = 1 - sr[..., :, :border]
    sr[..., :, -border:] = 1 - sr[..., :, -border:]
    assert torch.isinf(psnr(sr, hr, crop_border=border)).all()
    assert torch.isfinite(psnr(sr, hr, crop_border=border - 1)).all()
    assert torch.isinf(psnr(sr, hr, crop_border=border, y_channel=False)).all()


def test_crop_border_validation() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="crop_border"):
        psnr(x, x, crop_border=-1)
    with pytest.raises(InvalidImageError, match="crop_border=4"):
        psnr(x, x, crop_border=4)


def test_data_range_scales_inputs() -> None:
    hr = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1)
    torch.testing.assert_close(psnr(sr * 255, hr * 255, data_range=255.0), psnr(sr, hr))
    torch.testing.assert_close(ssim(sr * 255, hr * 255, data_range=255.0), ssim(sr, hr))
    with pytest.raises(ConfigError, match="data_range"):
        psnr(sr, hr, data_range=0.0)


def test_round_y_rounds_luma_to_integers() -> None:
    hr = quantize(torch.rand(1, 3, 16, 16, dtype=torch.float64))
    sr = quantize(hr + 0.03 * torch.randn_like(hr))
    y_sr, y_hr = torch.floor(rgb_to_y(sr) + 0.5), torch.floor(rgb_to_y(hr) + 0.5)
    expected = 10 * torch.log10(255.0**2 / (y_sr - y_hr).pow(2).mean())
    torch.testing.assert_close(psnr(sr, hr, round_y=True), expected.view(1))
    assert psnr(sr, hr, round_y=True).item() != pytest.approx(psnr(sr, hr).item(), abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# SSIM


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. (2004) SSIM of two 2-D arrays on the 0..255 scale, written with explicit loops ('valid')."""
    size, sigma = 11, 1.5
    r = size // 2
    window = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            window[i, j] = math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma**2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w = a.shape
    values = []
    for i in range(h - size + 1):
        for j in range(w - size + 1):
            pa, pb = a[i : i + size, j : j + size], b[i : i + size, j : j + size]
            mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
            var_a = (window * (pa - mu_a) ** 2).sum()
            var_b = (window * (pb - mu_b) ** 2).sum()
            cov = (window * (pa - mu_a) * (pb - mu_b)).sum()
            values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def _noisy_pair(h: int = 19, w: int = 23) -> tuple[torch.Tensor, torch.Tensor]:
    hr = torch.rand(3, h, w, dtype=torch.float64)
    sr = (hr + 0.1 * torch.randn_like(hr)).clamp(0, 1)
    return sr, hr


def test_ssim_matches_loop_reference_on_y() -> None:
    sr, hr = _noisy_pair()
    weights = np.array([65.481, 128.553, 24.966])
    y_sr = 16 + np.tensordot(weights, sr.numpy(), axes=1)
    y_hr = 16 + np.tensordot(weights, hr.numpy(), axes=1)
    assert ssim(sr, hr).item() == pytest.approx(_reference_ssim(y_sr, y_hr), abs=1e-10)


def test_ssim_rgb_is_channel_mean_of_reference() -> None:
    sr, hr = _noisy_pair(15, 13)
    expected = np.mean([_reference_ssim(sr[c].numpy() * 255, hr[c].numpy() * 255) for c in range(3)])
    assert ssim(sr, hr, y_channel=False).item() == pytest.approx(expected, abs=1e-10)


def test_ssim_identical_is_one() -> None:
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(ssim(x, x.clone()), torch.ones(2, dtype=torch.float64))


def test_ssim_symmetric_and_below_one_for_noise() -> None:
    sr, hr = _noisy_pair()
    forward, backward = ssim(sr, hr), ssim(hr, sr)
    assert forward.item() == pytest.approx(backward.item(), abs=1e-12)
    assert 0 < forward.item() < 0.99


def test_ssim_of_constant_images_closed_form() -> None:
    a, b = 0.25, 0.75  # Y = 16 + 219 * value; all variances are 0, only the luminance term is left
    ya, yb = 16 + 219 * a, 16 + 219 * b
    c1 = (0.01 * 255) ** 2
    expected = (2 * ya * yb + c1) / (ya**2 + yb**2 + c1)
    got = ssim(torch.full((1, 3, 12, 12), a), torch.full((1, 3, 12, 12), b))
    torch.testing.assert_close(got, torch.tensor([expected], dtype=torch.float64))


def test_ssim_needs_a_full_window() -> None:
    x = torch.rand(1, 3, 16, 16)
    ssim(x, x, crop_border=2)  # 12x12 left: fine
    with pytest.raises(InvalidImageError, match="11x11"):
        ssim(x, x, crop_border=3)


# ---------------------------------------------------------------------------------------------------------------
# Module forms


def test_modules_delegate_to_functions() -> None:
    sr, hr = _noisy_pair(24, 24)
    sr, hr = sr.unsqueeze(0), hr.unsqueeze(0)
    for kwargs in ({}, {"crop_border": 4, "y_channel": False}, {"round_y": True}):
        torch.testing.assert_close(PSNR(**kwargs)(sr, hr), psnr(sr, hr, **kwargs))
        torch.testing.assert_close(SSIM(**kwargs)(sr, hr), ssim(sr, hr, **kwargs))
    assert "crop_border=4" in repr(PSNR(crop_border=4))


def test_module_options_are_keyword_only_and_validated() -> None:
    with pytest.raises(TypeError):
        PSNR(4)  # type: ignore[call-arg]
    with pytest.raises(ConfigError):
        SSIM(crop_border=-2)


# ---------------------------------------------------------------------------------------------------------------
# Benchmark protocol: bicubic x4 on Set5 / Set14 (skipped when the data is absent)

# Reference bicubic x4 PSNR-Y / SSIM-Y (float Y, border 4), established with the MATLAB evaluation code.
_BICUBIC_X4 = {"Set5": (28.43, 0.8113), "Set14": (26.09, 0.7050)}


def _load_rgb(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))  # Set14's bridge.png is mode L
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float64) / 255


@pytest.mark.parametrize("name", sorted(_BICUBIC_X4))
def test_bicubic_x4_benchmark_matches_published_numbers(name: str) -> None:
    folder = DATA / name
    paths = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not paths:
        pytest.skip(f"{folder} not found")
    psnrs, ssims = [], []
    for path in paths:
        hr = modcrop(_load_rgb(path), 4)
        lr = quantize(imresize(hr, scale=0.25))
        sr = quantize(imresize(lr, scale=4))
        psnrs.append(psnr(sr, hr, crop_border=4).item())
        ssims.append(ssim(sr, hr, crop_border=4).item())
    ref_psnr, ref_ssim = _BICUBIC_X4[name]
    assert float(np.mean(psnrs)) == pytest.approx(ref_psnr, abs=0.01)
    assert float(np.mean(ssims)) == pytest.approx(ref_ssim, abs=0.0005)
