import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srgan.degradation import (
    BicubicDegradation,
    BlurDownsampleDegradation,
    Compose,
    bicubic_downsample,
    blur_downsample,
    gaussian_blur,
    gaussian_kernel,
    imresize,
    modcrop,
    quantize,
)
from srgan.errors import ConfigError, InvalidImageError


def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _matlab_reference_1d(v: np.ndarray, scale: float) -> np.ndarray:
    """Direct transcription of MATLAB imresize's contributions() for one row (loops, no vectorisation)."""
    n = len(v)
    out_n = math.ceil(n * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros(out_n)
    for u in range(1, out_n + 1):
        x = u / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(x - width / 2)
        ws, idx = [], []
        for j in range(math.ceil(width) + 2):
            i = left + j
            d = x - i
            w = scale * _cubic(scale * d) if scale < 1 else _cubic(d)
            # symmetric padding
            k = i - 1
            while k < 0 or k >= n:
                k = -k - 1 if k < 0 else 2 * n - 1 - k
            ws.append(w)
            idx.append(k)
        ws_a = np.array(ws) / np.sum(ws)
        out[u - 1] = float(np.dot(ws_a, v[idx]))
    return out


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0, 4.0])
def test_imresize_matches_matlab_contributions(scale: float) -> None:
    rng = np.random.default_rng(0)
    img = rng.random((13, 17))
    ref = np.stack([_matlab_reference_1d(row, scale) for row in img])  # along width
    ref = np.stack([_matlab_reference_1d(col, scale) for col in ref.T]).T  # then height
    got = imresize(torch.from_numpy(img)[None, None], scale=scale)[0, 0].numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_constant_image_stays_constant() -> None:
    x = torch.full((2, 3, 16, 20), 0.37)
    torch.testing.assert_close(bicubic_downsample(x, 4), torch.full((2, 3, 4, 5), 0.37))


def test_differs_from_torch_bicubic_without_antialias() -> None:
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    ours = bicubic_downsample(x, 4)
    plain = F.interpolate(x, scale_factor=0.25, mode="bicubic", align_corners=False)
    assert (ours - plain).abs().max() > 1e-3  # antialiasing matters


def test_batched_matches_single_and_unbatched() -> None:
    x = torch.rand(3, 3, 24, 24)
    b = bicubic_downsample(x, 4)
    torch.testing.assert_close(b[1], bicubic_downsample(x[1], 4))
    assert b.shape == (3, 3, 6, 6)


def test_quantize_and_modcrop() -> None:
    x = torch.tensor([-0.1, 0.5, 0.5019, 1.3])
    assert quantize(x).tolist() == pytest.approx([0.0, 128 / 255, 128 / 255, 1.0])
    assert modcrop(torch.zeros(3, 10, 13), 4).shape == (3, 8, 12)


def test_gaussian_kernel() -> None:
    k = gaussian_kernel(1.5)
    assert k.numel() == 11 and float(k.sum()) == pytest.approx(1.0)
    assert torch.equal(k, k.flip(0))
    with pytest.raises(ConfigError):
        gaussian_kernel(0)


def test_blur_downsample_shapes_and_constant() -> None:
    x = torch.full((1, 3, 32, 32), 0.5)
    torch.testing.assert_close(blur_downsample(x, 4, 1.5), torch.full((1, 3, 8, 8), 0.5))
    assert gaussian_blur(torch.rand(2, 3, 9, 9), 1.0).shape == (2, 3, 9, 9)


def test_blur_degradation_seeded_sigma_range() -> None:
    deg = BlurDownsampleDegradation(factor=4, sigma=(0.5, 3.0), quantize=False)
    x = torch.rand(4, 3, 32, 32)
    a = deg(x, generator=torch.Generator().manual_seed(1))
    b = deg(x, generator=torch.Generator().manual_seed(1))
    c = deg(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ConfigError):
        BlurDownsampleDegradation(sigma=(2.0, 1.0))


def test_pipeline_objects_compose() -> None:
    x = torch.rand(2, 3, 32, 32)
    pipe = Compose([BicubicDegradation(factor=2, quantize=False), BicubicDegradation(factor=2)])
    out = pipe(x)
    assert out.shape == (2, 3, 8, 8)
    assert torch.equal(out, quantize(out))  # last step rounds to 8 bits


def test_bad_input() -> None:
    with pytest.raises(InvalidImageError, match="shape"):
        bicubic_downsample(torch.rand(4, 4), 2)
    with pytest.raises(ConfigError):
        imresize(torch.rand(1, 1, 4, 4))
