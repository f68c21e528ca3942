"""``outscale``: any output scale after the network's x4 (SRGAN.upscale / upscale_tensor / upscale_batch, and
``srgan upscale --outscale``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import make_photo
from srgan import SRGAN
from srgan.cli import main
from srgan.errors import ConfigError, ImageTooLargeError

W, H = 14, 10  # input width and height


def _input(kind: str) -> Any:
    array = make_photo(W, H)
    if kind == "pil":
        return Image.fromarray(array)
    if kind == "numpy":
        return array
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255  # (3, H, W)


def _size(out: Any) -> tuple[int, int]:
    """(width, height) of a PIL image, an (H, W, C) array or a (C, H, W) tensor."""
    if isinstance(out, Image.Image):
        return out.size
    return (out.shape[1], out.shape[0]) if isinstance(out, np.ndarray) else (out.shape[-1], out.shape[-2])


@pytest.mark.parametrize("kind", ["pil", "numpy", "tensor"])
@pytest.mark.parametrize("outscale", [2, 3, 4, 1.5])
def test_output_size_for_every_kind(tiny_model: SRGAN, kind: str, outscale: float) -> None:
    out = tiny_model.upscale(_input(kind), outscale=outscale)
    assert type(out) is type(_input(kind))
    assert _size(out) == (math.floor(W * outscale + 0.5), math.floor(H * outscale + 0.5))
    if kind == "tensor":
        assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("kind", ["pil", "numpy", "tensor"])
def test_outscale_equal_to_the_network_scale_is_the_default_output(tiny_model: SRGAN, kind: str) -> None:
    default = tiny_model.upscale(_input(kind))
    for outscale in (4, 4.0):
        same = tiny_model.upscale(_input(kind), outscale=outscale)
        assert np.array_equal(np.asarray(same), np.asarray(default))


def test_outscale_is_an_antialiased_resize_of_the_network_output(tiny_model: SRGAN) -> None:
    x = _input("tensor")[None]
    x4 = tiny_model.upscale_tensor(x)
    x2 = tiny_model.upscale_tensor(x, outscale=2)
    expected = F.interpolate(x4, size=(2 * H, 2 * W), mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(x2, expected.clamp(0, 1))
    # A batch keeps its length; 1.5 rounds 10 x 1.5 = 15 and 14 x 1.5 = 21.
    batch = tiny_model.upscale_tensor(torch.cat([x, x.flip(-1)]), outscale=1.5)
    assert batch.shape == (2, 3, 15, 21)


def test_alpha_and_grey_follow_the_outscale(tiny_model: SRGAN) -> None:
    rgba = Image.fromarray(np.dstack([make_photo(W, H), np.full((H, W), 200, np.uint8)]), "RGBA")
    out = tiny_model.upscale(rgba, outscale=1.5)
    assert out.mode == "RGBA" and out.size == (21, 15)
    assert np.abs(np.asarray(out)[..., 3].astype(int) - 200).max() <= 1
    grey = tiny_model.upscale(Image.fromarray(make_photo(W, H)[..., 0]), outscale=3)
    assert grey.mode == "L" and grey.size == (3 * W, 3 * H)


def test_upscale_batch_and_files(tiny_model: SRGAN, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(make_photo(W, H)).save(path)
    outs = list(tiny_model.upscale_batch([path, _input("numpy")], outscale=2))
    assert [_size(o) for o in outs] == [(2 * W, 2 * H)] * 2


@pytest.mark.parametrize("bad", [0, -1, -0.5, math.nan, math.inf, True, "2"])
def test_bad_outscale_raises(tiny_model: SRGAN, bad: Any) -> None:
    with pytest.raises(ConfigError, match="outscale"):
        tiny_model.upscale(_input("pil"), outscale=bad)
    with pytest.raises(ConfigError, match="outscale"):
        tiny_model.upscale_tensor(_input("tensor")[None], outscale=bad)
    with pytest.raises(ConfigError, match="outscale"):
        next(tiny_model.upscale_batch([_input("pil")], outscale=bad))


def test_max_output_pixels_counts_the_final_output(tiny_model: SRGAN) -> None:
    image = _input("pil")
    limit = W * H * 16  # the x4 output fits exactly
    assert tiny_model.upscale(image, max_output_pixels=limit).size == (4 * W, 4 * H)
    assert tiny_model.upscale(image, max_output_pixels=limit, outscale=2).size == (2 * W, 2 * H)
    with pytest.raises(ImageTooLargeError, match="112x80"):
        tiny_model.upscale(image, max_output_pixels=limit, outscale=8)


def test_cli_outscale(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(make_photo(W, H)).save(src / "img.png")
    out_file = tmp_path / "two.png"
    args = ["--model", str(tiny_model_dir), "--device", "cpu", "-q"]
    assert main(["upscale", str(src / "img.png"), "-o", str(out_file), "--outscale", "2", *args]) == 0
    assert Image.open(out_file).size == (2 * W, 2 * H)
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-o", str(out), "--outscale", "1.5", *args]) == 0
    assert Image.open(out / "img_x1.5.png").size == (21, 15)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "-o", str(out), "--outscale", "0", *args])
    assert exc.value.code == 2
