from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.degradation import gaussian_blur
from srgan.errors import ConfigError, InvalidImageError
from srgan.niqe import NIQE_FEATURES, NiqeParams, _estimate_aggd, _features, _shape_tables, niqe

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


def _gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    t = np.arange(size) - size // 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    w = np.outer(g, g)
    return w / w.sum()


def _texture(height: int = 200, width: int = 296, seed: int = 0) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1]: blurred noise at two scales plus a few edges, a 'natural-ish' image."""
    gen = torch.Generator().manual_seed(seed)
    coarse = gaussian_blur(torch.rand(1, 1, height, width, generator=gen, dtype=torch.float64), 4.0)
    fine = gaussian_blur(torch.rand(1, 1, height, width, generator=gen, dtype=torch.float64), 1.0)
    y = (coarse - coarse.mean()) * 6 + (fine - fine.mean()) * 1.5 + 0.5
    y[..., : height // 3, width // 2 :] += 0.15
    rgb = torch.cat([y, y * 0.9 + 0.05, y * 0.8 + 0.1], dim=1)[0].clamp(0, 1)
    return rgb.permute(1, 2, 0).numpy()


def _y(rgb: np.ndarray) -> np.ndarray:
    return 16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def _fitted_params(rgb: np.ndarray) -> NiqeParams:
    """A 'pristine model' fitted to one image's own features."""
    window = _gaussian_window()
    feats = _features(_y(rgb), window)
    feats = feats[~np.isnan(feats).any(axis=1)]
    return NiqeParams(mu=feats.mean(axis=0), cov=np.cov(feats, rowvar=False), window=window)


def _sample_aggd(rng: np.random.Generator, n: int, alpha: float, beta_l: float, beta_r: float) -> np.ndarray:
    """Draw from the AGGD with density ~ exp(-(|x| / beta)^alpha), beta_l left of 0 and beta_r right of it.

    |x| / beta follows G^(1 / alpha) with G ~ Gamma(1 / alpha); the left side has mass beta_l / (beta_l + beta_r).
    """
    magnitude = rng.gamma(1 / alpha, 1.0, size=n) ** (1 / alpha)
    left = rng.random(n) < beta_l / (beta_l + beta_r)
    return np.where(left, -beta_l * magnitude, beta_r * magnitude)


def test_moment_ratio_table_increases() -> None:
    # The shape search uses a sorted lookup: that equals the reference's argmin only on an increasing table.
    grid, rho, _, _ = _shape_tables()
    assert grid.size == 9801 and grid[0] == pytest.approx(0.2) and grid[-1] == pytest.approx(10.0)
    assert np.all(np.diff(rho) > 0)
    # rho(a) = G(2/a)^2 / (G(1/a) G(3/a)): 1/2 for the Laplacian (a = 1), 2/pi for the Gaussian (a = 2).
    assert rho[np.argmin(np.abs(grid - 1.0))] == pytest.approx(0.5, abs=1e-12)
    assert rho[np.argmin(np.abs(grid - 2.0))] == pytest.approx(2 / math.pi, abs=1e-12)


@pytest.mark.parametrize("alpha", [0.6, 1.0, 2.0, 3.0])
def test_aggd_fit_recovers_symmetric_ggd(alpha: float) -> None:
    rng = np.random.default_rng(1)
    x = _sample_aggd(rng, 200_000, alpha, 0.7, 0.7)
    a, bl, br, mean = _estimate_aggd(x[None])
    assert a[0] == pytest.approx(alpha, rel=0.05)
    assert bl[0] == pytest.approx(0.7, rel=0.03)
    assert br[0] == pytest.approx(0.7, rel=0.03)
    assert abs(mean[0]) < 0.02


def test_aggd_fit_recovers_asymmetric_parameters_batched() -> None:
    rng = np.random.default_rng(2)
    truth = [(0.8, 0.3, 0.6), (1.5, 1.0, 0.5), (2.5, 0.2, 0.25)]
    x = np.stack([_sample_aggd(rng, 200_000, *t) for t in truth])
    a, bl, br, mean = _estimate_aggd(x)
    for i, (alpha, beta_l, beta_r) in enumerate(truth):
        assert a[i] == pytest.approx(alpha, rel=0.06)
        assert bl[i] == pytest.approx(beta_l, rel=0.04)
        assert br[i] == pytest.approx(beta_r, rel=0.04)
        expected_mean = (beta_r - beta_l) * math.gamma(2 / alpha) / math.gamma(1 / alpha)
        assert mean[i] == pytest.approx(expected_mean, abs=0.02 * (beta_l + beta_r))
        assert np.mean(x[i]) == pytest.approx(expected_mean, abs=0.01)  # the sampler agrees with the formula


def test_aggd_fit_without_negative_samples_is_nan_like_the_reference() -> None:
    a, bl, br, _ = _estimate_aggd(np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0]]))
    assert np.isnan(bl).all()
    assert br[0] > 0 and np.isnan(br[1])
    assert a[1] == pytest.approx(0.2)  # argmin over an all-NaN distance picks the first grid point


def test_feature_vector_has_36_entries_per_block() -> None:
    feats = _features(_y(_texture(200, 296)), _gaussian_window())
    assert feats.shape == (2 * 3, NIQE_FEATURES)
    assert np.isfinite(feats).all()
    shapes = feats[:, [0, 2, 6, 10, 14, 18, 20, 24, 28, 32]]
    assert ((shapes >= 0.2) & (shapes <= 10.0)).all()


def test_known_answers_zero_for_own_model_and_noise_increases_score() -> None:
    clean = _texture()
    params = _fitted_params(clean)
    assert niqe(clean, params=params) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(3)
    mild = np.clip(clean + rng.normal(0, 0.01, clean.shape), 0, 1)
    strong = np.clip(clean + rng.normal(0, 0.15, clean.shape), 0, 1)
    s_mild, s_strong = niqe(mild, params=params), niqe(strong, params=params)
    assert 0 < s_mild < s_strong


def test_deterministic_and_layout_and_dtype_independent() -> None:
    rgb = _texture(seed=4)
    params = _fitted_params(_texture(seed=5))
    u8 = (rgb * 255).round().astype(np.uint8)
    ref = niqe(u8, params=params)
    assert niqe(u8, params=params) == ref
    assert niqe(u8.astype(np.float64) / 255, params=params) == pytest.approx(ref, abs=1e-9)
    assert niqe(torch.from_numpy(u8).permute(2, 0, 1), params=params) == pytest.approx(ref, abs=1e-9)
    assert niqe(torch.from_numpy(u8).permute(2, 0, 1).float() / 255, params=params) == pytest.approx(ref, abs=1e-9)


def test_crop_border_equals_cropping_first() -> None:
    rgb = _texture(seed=6)
    params = _fitted_params(_texture(seed=7))
    assert niqe(rgb, params=params, crop_border=4) == niqe(rgb[4:-4, 4:-4], params=params)
    assert niqe(rgb, params=params, crop_border=4) != niqe(rgb, params=params)


def test_constant_image_has_no_score() -> None:
    params = _fitted_params(_texture())
    with pytest.raises(InvalidImageError, match="undefined"):
        niqe(np.full((200, 200, 3), 0.5), params=params)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((95, 300, 3)), "at least 96x96"),
        (np.zeros((200, 200)), "RGB image"),
        (np.zeros((200, 200, 4)), "RGB image"),
        (np.zeros((200, 200, 3), dtype=np.int32), "dtype"),
        (np.full((200, 200, 3), np.nan), "NaN"),
    ],
)
def test_bad_images_are_refused(image: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidImageError, match=match):
        niqe(image, params=_fitted_params(_texture()))


def test_bad_crop_border_is_refused() -> None:
    with pytest.raises(ConfigError, match="crop_border"):
        niqe(_texture(), params=_fitted_params(_texture()), crop_border=-1)


def test_params_file_round_trip_and_errors(tmp_path: Path) -> None:
    good = {"mu_pris_param": np.zeros((1, 36)), "cov_pris_param": np.eye(36), "gaussian_window": _gaussian_window()}
    path = tmp_path / "p.npz"
    np.savez(path, **good)
    params = NiqeParams.from_file(path)
    assert params.mu.shape == (36,) and params.cov.shape == (36, 36) and params.window.shape == (7, 7)

    with pytest.raises(ConfigError, match="not found"):
        NiqeParams.from_file(tmp_path / "missing.npz")
    np.savez(path, **{k: v for k, v in good.items() if k != "cov_pris_param"})
    with pytest.raises(ConfigError, match="cov_pris_param"):
        NiqeParams.from_file(path)
    np.savez(path, **{**good, "cov_pris_param": np.eye(35)})
    with pytest.raises(ConfigError, match="36x36"):
        NiqeParams.from_file(path)
    np.savez(path, **{**good, "gaussian_window": np.ones((6, 6))})
    with pytest.raises(ConfigError, match="odd size"):
        NiqeParams.from_file(path)
    np.savez(path, **{**good, "mu_pris_param": np.zeros((1, 18))})
    with pytest.raises(ConfigError, match=r"\(1, 36\)"):
        NiqeParams.from_file(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="cannot read"):
        NiqeParams.from_file(tmp_path / "junk.npz")


def test_reference_params_file_and_noise_direction() -> None:
    data = Path(os.environ.get("SRGAN_TEST_DATA", ROOT))
    if not (data / "niqe_pris_params.npz").is_file() or not (data / "Set5" / "baby.png").is_file():
        pytest.skip(f"no reference data in {data}")
    params = NiqeParams.from_file(data / "niqe_pris_params.npz")
    assert params.window.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(params.window, _gaussian_window(), rtol=1e-6)  # fspecial('gaussian', 7, 7/6)
    photo = np.asarray(Image.open(data / "Set5" / "baby.png").convert("RGB"))[:288, :288] / 255.0
    noisy = np.clip(photo + np.random.default_rng(8).normal(0, 0.1, photo.shape), 0, 1)
    clean_score, noisy_score = niqe(photo, params=params), niqe(noisy, params=params)
    assert 2 < clean_score < noisy_score
