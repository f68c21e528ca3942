"""Tests for srgan.compare and ``srgan compare``: panels, regions, ground truth, errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan import SRGAN
from srgan.cli import main
from srgan.compare import compare, pick_detailed_region
from srgan.degradation import imresize, quantize
from srgan.errors import ConfigError
from srgan.models import Generator


def test_pick_detailed_region_finds_the_textured_square() -> None:
    arr = np.full((60, 80), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    arr[30:46, 50:66] = rng.integers(0, 256, (16, 16))  # the only detail
    left, top = pick_detailed_region(Image.fromarray(arr), 16)
    assert abs(left - 50) <= 1 and abs(top - 30) <= 1
    with pytest.raises(ConfigError, match="crop size"):
        pick_detailed_region(Image.fromarray(arr), 61)


def test_compare_from_hr_panels(tiny_model: SRGAN) -> None:
    hr = Image.fromarray(make_photo(50, 42, seed=3))  # modcropped to 48x40 for x4
    result = compare(hr, [tiny_model, tiny_model], names=["a", "b"], crop_size=24, zoom=3)
    assert list(result.panels) == ["bicubic", "a", "b", "HR (original)"]
    assert result.lr_size == (12, 10)
    left, top, size = result.box
    assert size == 24 and 0 <= left <= 48 - 24 and 0 <= top <= 40 - 24
    region = (left, top, left + size, top + size)
    # The ground-truth panel is the original's pixels; bicubic and models upscale the protocol's LR image.
    assert np.array_equal(np.asarray(result.panels["HR (original)"]), np.asarray(hr.crop(region)))
    hr_t = torch.from_numpy(np.asarray(hr)[:40, :48].copy()).permute(2, 0, 1).double().unsqueeze(0) / 255
    lr = quantize(imresize(hr_t, scale=0.25))
    lr_img = Image.fromarray((lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert np.array_equal(np.asarray(result.panels["a"]), np.asarray(tiny_model.upscale(lr_img).crop(region)))
    assert all(p.size == (24, 24) for p in result.panels.values())
    n = 4
    assert result.image.size == (n * 72 + (n + 1) * 8, 72 + 16 + 28)
    assert result.image.mode == "RGB"


def test_compare_lr_input_has_no_ground_truth(tiny_model: SRGAN) -> None:
    lr = Image.fromarray(make_photo(12, 10, seed=1)).convert("RGBA")
    result = compare(lr, [tiny_model], from_hr=False, crop=(4, 8, 16), zoom=1)
    assert list(result.panels) == ["bicubic", "model-1"]
    assert result.lr_size == (12, 10) and result.box == (4, 8, 16)
    expected = tiny_model.upscale(lr.convert("RGB")).crop((4, 8, 20, 24))
    assert np.array_equal(np.asarray(result.panels["model-1"]), np.asarray(expected))


def test_compare_errors(tiny_model: SRGAN) -> None:
    img = Image.fromarray(make_photo(16, 16))
    x2 = SRGAN(Generator(scale=2, num_blocks=1, channels=8).eval(), device="cpu", dtype="fp32")
    with pytest.raises(ConfigError, match="at least one model"):
        compare(img, [])
    with pytest.raises(ConfigError, match="same scale"):
        compare(img, [tiny_model, x2])
    with pytest.raises(ConfigError, match="one name per model"):
        compare(img, [tiny_model], names=["a", "b"])
    with pytest.raises(ConfigError, match="does not fit"):
        compare(img, [tiny_model], crop=(10, 0, 8))
    with pytest.raises(ConfigError, match="zoom"):
        compare(img, [tiny_model], zoom=0)


def test_cli_compare_writes_one_picture_per_photo(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(2):
        Image.fromarray(make_photo(40, 32, seed=i)).save(src / f"p{i}.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"junk")
    out = tmp_path / "gallery"
    model = str(tiny_model_dir)
    code = main(["compare", str(src), "--model", model, "--model", model, "-o", str(out), "--crop-size", "16"])
    assert code == 1  # the broken file is reported, the others are written
    assert "broken.jpg" in capsys.readouterr().err
    written = sorted(p.name for p in out.iterdir())
    assert written == ["p0_compare.png", "p1_compare.png"]
    assert Image.open(out / "p0_compare.png").size == (4 * 32 + 5 * 8, 32 + 16 + 28)
    mode = stat.S_IMODE(os.stat(out / "p0_compare.png").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's private 0600

    single = tmp_path / "one.png"
    assert main(["compare", str(src / "p0.png"), "--model", model, "-o", str(single), "-q"]) == 0
    assert Image.open(single).size == (3 * 64 + 4 * 8, 64 + 16 + 28)  # region 32 px (the whole height) x zoom 2
    assert main(["compare", str(src / "p0.png"), "--model", str(tmp_path / "missing.pt"), "-o", str(out)]) == 2


def test_duplicate_names_get_their_own_panels(tiny_model: SRGAN) -> None:
    result = compare(Image.fromarray(make_photo(16, 16)), [tiny_model, tiny_model], names=["m", "m"], zoom=1)
    assert list(result.panels) == ["bicubic", "m", "m (2)", "HR (original)"]
