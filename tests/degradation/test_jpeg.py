"""srgan.degradation.jpeg: a JPEG round trip in torch, checked against Pillow's libjpeg encoder and decoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan.degradation import jpeg, jpeg_pillow, quant_tables, rgb_to_ycbcr, ycbcr_to_rgb
from srgan.errors import ConfigError, InvalidImageError


def _photo(width: int, height: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(make_photo(width, height, seed)).permute(2, 0, 1)[None].float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1 / mse))


def _pillow(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Straight Pillow, independent of jpeg_pillow: save 4:2:0 at ``quality`` and decode."""
    arr = (x[0] * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    return torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("quality", [1, 10, 25, 50, 75, 90, 100])
def test_quantisation_tables_are_libjpegs(quality: int) -> None:
    buf = io.BytesIO()
    Image.fromarray(make_photo(16, 16)).save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    written = Image.open(buf).quantization  # type: ignore[attr-defined]
    tables = quant_tables(quality)
    assert tables.shape == (1, 2, 8, 8)
    assert tables[0, 0].flatten().tolist() == list(written[0])
    assert tables[0, 1].flatten().tolist() == list(written[1])


# Measured PSNR (dB) between this module's and Pillow's decoded images, 64x64 / 61x45 photos:
# q10 62.8 / 48.5, q30 57.9 / 49.0, q50 48.0 / 50.8, q75 56.7 / 48.9, q95 48.4 / 47.9.
@pytest.mark.parametrize("quality", [10, 30, 50, 75, 95])
@pytest.mark.parametrize(("width", "height", "seed"), [(64, 64, 0), (61, 45, 1)])
def test_matches_pillow(quality: int, width: int, height: int, seed: int) -> None:
    x = _photo(width, height, seed)
    ours, pillows = jpeg(x, quality), _pillow(x, quality)
    assert _psnr(ours, pillows) > 45.0
    # Far closer to Pillow's result than either is to the original: the same artefacts, not just a similar image.
    assert _psnr(ours, pillows) > _psnr(pillows, x) + 15


def test_per_image_quality_in_a_batch() -> None:
    x = torch.cat([_photo(32, 32, 0), _photo(32, 32, 1), _photo(32, 32, 2)])
    q = torch.tensor([20, 50, 90])
    batched = jpeg(x, q)
    for i in range(3):
        assert torch.equal(batched[i : i + 1], jpeg(x[i : i + 1], int(q[i])))
    assert torch.equal(jpeg(x, [20, 50, 90]), batched)
    assert torch.equal(jpeg_pillow(x, q, workers=2), torch.cat([_pillow(x[i : i + 1], int(q[i])) for i in range(3)]))


def test_lower_quality_loses_more() -> None:
    x = _photo(48, 48)
    psnrs = [_psnr(jpeg(x, q), x) for q in (5, 20, 50, 90)]
    assert psnrs == sorted(psnrs)
    assert psnrs[-1] - psnrs[0] > 5


def test_a_second_round_trip_changes_little() -> None:
    x = _photo(48, 48)
    once = jpeg(x, 60)
    twice = jpeg(once, 60)
    assert _psnr(twice, once) > 40
    assert _psnr(twice, once) > _psnr(once, x) + 10


def test_output_range_grid_dtype_and_shape() -> None:
    x = torch.rand(2, 3, 19, 23, dtype=torch.float64) * 1.2 - 0.1  # out of range values are clamped
    y = jpeg(x, 50)
    assert y.shape == x.shape and y.dtype == torch.float64
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(torch.round(y * 255), y * 255)


def test_colour_conversion_round_trip() -> None:
    rgb = torch.rand(1, 3, 4, 4, dtype=torch.float64) * 255
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-4)
    grey = torch.full((1, 3, 2, 2), 100.0)
    assert torch.allclose(rgb_to_ycbcr(grey), torch.tensor([100.0, 128.0, 128.0]).view(1, 3, 1, 1), atol=1e-3)


@pytest.mark.parametrize("quality", [0, 101, -5, True, 50.0 + 1e9])
def test_bad_quality(quality: object) -> None:
    with pytest.raises(ConfigError, match="quality"):
        jpeg(torch.rand(1, 3, 8, 8), quality)  # type: ignore[arg-type]


def test_quality_count_must_match_the_batch() -> None:
    with pytest.raises(ConfigError, match="one value per image"):
        jpeg(torch.rand(3, 3, 8, 8), torch.tensor([50, 60]))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(3, 8, 8), "batch"),
        (torch.rand(1, 1, 8, 8), "3 channels"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "float"),
        (np.zeros((8, 8, 3)), "torch.Tensor"),
    ],
)
def test_bad_images(x: object, match: str) -> None:
    with pytest.raises(InvalidImageError, match=match):
        jpeg(x, 50)  # type: ignore[arg-type]
