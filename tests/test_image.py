"""Tests for srgan._image: PIL / numpy / torch <-> model tensors, and reading files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

from srgan._image import PreparedImage, open_image, pixel_count, prepare, restore
from srgan.errors import ImageTooLargeError, InvalidImageError

RNG_SEED = 0


def _noise(shape: tuple[int, ...], dtype: type = np.uint8, high: int = 256) -> NDArray[Any]:
    return np.random.default_rng(RNG_SEED).integers(0, high, size=shape).astype(dtype)


def _icc(space: bytes) -> bytes:
    """A stand-in ICC profile: 128-byte header whose colour space field (bytes 16..20) is ``space``."""
    return bytes(16) + space + bytes(108)


def _upscale2(prep: PreparedImage[Any]) -> Any:
    rgb = F.interpolate(prep.rgb, scale_factor=2, mode="nearest")
    alpha = None if prep.alpha is None else F.interpolate(prep.alpha, scale_factor=2, mode="nearest")
    return restore(rgb, alpha, prep)


def _up2(array: NDArray[Any]) -> NDArray[Any]:
    return array.repeat(2, axis=0).repeat(2, axis=1)


def _identity(image: Any) -> Any:
    prep = prepare(image)
    return restore(prep.rgb, prep.alpha, prep)


# ------------------------------------------------------------------------------------------------------ PIL modes


def _palette_image(transparent: bool) -> Image.Image:
    image = Image.fromarray(_noise((3, 5), high=4)).convert("L").convert("P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    if transparent:
        image.info["transparency"] = 0
    return image


def _make(mode: str) -> Image.Image:
    """A 5x3 image of ``mode`` with varied pixels."""
    rgba = Image.fromarray(_noise((3, 5, 4)))
    if mode == "P":
        return _palette_image(transparent=False)
    if mode == "P+transparency":
        return _palette_image(transparent=True)
    if mode in ("I;16", "I;16B", "I;16L"):
        return Image.fromarray(_noise((3, 5), np.uint16, 65536)).convert(mode)
    if mode == "I":
        return Image.fromarray(_noise((3, 5), np.int32, 65536))
    if mode == "F":
        return Image.fromarray(np.random.default_rng(RNG_SEED).random((3, 5), dtype=np.float32))
    if mode == "La":
        return rgba.convert("LA").convert("La")
    return rgba.convert(mode)


def _expected(image: Image.Image, out_mode: str) -> NDArray[Any]:
    """What a lossless round trip of ``image`` should give, as an array of the output mode."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(image).astype(np.uint16)
    if image.mode == "P" and "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert(out_mode))


PIL_MODES = [
    ("RGB", "RGB"),
    ("RGBA", "RGBA"),
    ("L", "L"),
    ("LA", "LA"),
    ("P", "RGB"),
    ("P+transparency", "RGBA"),
    ("PA", "RGBA"),
    ("CMYK", "RGB"),
    ("1", "L"),
    ("YCbCr", "RGB"),
    ("I;16", "I;16"),
    ("I;16B", "I;16"),
    ("I;16L", "I;16"),
    ("I", "I;16"),
    ("F", "F"),
    ("La", "LA"),
    ("RGBa", "RGBA"),
]


@pytest.mark.parametrize(("mode", "out_mode"), PIL_MODES)
def test_pil_upscaled_round_trip_keeps_mode_and_content(mode: str, out_mode: str) -> None:
    image = _make(mode)
    prep = prepare(image)
    assert prep.rgb.shape == (1, 3, 3, 5)
    assert prep.rgb.dtype == torch.float32
    assert prep.rgb.is_contiguous()
    assert float(prep.rgb.min()) >= 0.0 and float(prep.rgb.max()) <= 1.0
    assert (prep.alpha is not None) == (out_mode in ("RGBA", "LA"))
    assert prep.grey == (out_mode in ("L", "LA", "I;16", "F"))

    out = _upscale2(prep)

    assert isinstance(out, Image.Image)
    assert out.mode == out_mode
    assert out.size == (10, 6)
    expected = _up2(_expected(image, out_mode))
    if out_mode == "F":
        np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)
    else:
        np.testing.assert_array_equal(np.asarray(out), expected)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_identity_round_trip_is_lossless_for_8_bit_modes(mode: str) -> None:
    image = Image.fromarray(_noise((16, 16, 4))).convert(mode)
    out = _identity(image)
    assert out.mode == mode
    np.testing.assert_array_equal(np.asarray(out), np.asarray(image))


def test_identity_round_trip_keeps_every_16_bit_value() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    prep = prepare(image)
    assert prep.bit_depth == 16
    out = restore(prep.rgb, prep.alpha, prep)
    assert out.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(out), values)


def test_alpha_is_kept_separately_and_restored() -> None:
    pixels = _noise((4, 6, 4))
    prep = prepare(Image.fromarray(pixels))
    assert prep.alpha is not None
    assert prep.alpha.shape == (1, 1, 4, 6)
    np.testing.assert_array_equal((prep.alpha[0, 0] * 255).round().numpy().astype(np.uint8), pixels[:, :, 3])
    out = _upscale2(prep)
    np.testing.assert_array_equal(np.asarray(out)[:, :, 3], _up2(pixels[:, :, 3]))


def test_grey_output_is_the_mean_of_the_three_channels() -> None:
    prep = prepare(Image.new("L", (2, 2)))
    rgb = torch.tensor([0.2, 0.4, 0.9]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    out = restore(rgb, None, prep)
    assert out.mode == "L"
    assert np.asarray(out).tolist() == [[128, 128], [128, 128]]  # mean 0.5 -> 127.5 -> 128 (half to even)


def test_integer_outputs_are_clamped_and_rounded_half_to_even() -> None:
    prep = prepare(np.zeros((1, 5, 3), np.uint8))
    values = torch.tensor([-0.5, 0.5 / 255, 1.5 / 255, 2.5 / 255, 2.0])  # below 0, three halves, above 1
    out = restore(values.view(1, 1, 1, 5).expand(1, 3, 1, 5), None, prep)
    assert out[0, :, 0].tolist() == [0, 0, 2, 2, 255]  # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2


def test_icc_profile_is_carried_over() -> None:
    icc = _icc(b"RGB ")
    image = Image.new("RGB", (3, 2))
    image.info["icc_profile"] = icc
    prep = prepare(image)
    assert prep.icc_profile == icc
    assert _upscale2(prep).info["icc_profile"] == icc


def test_cmyk_icc_profile_is_dropped_for_rgb_output() -> None:
    image = Image.new("CMYK", (3, 2))
    image.info["icc_profile"] = _icc(b"CMYK")
    out = _identity(image)
    assert out.mode == "RGB"
    assert "icc_profile" not in out.info


def test_mode_i_above_16_bit_is_refused() -> None:
    image = Image.fromarray(np.array([[0, 70000]], dtype=np.int32))
    with pytest.raises(InvalidImageError, match="70000"):
        prepare(image)


def test_mode_i_negative_values_are_clipped() -> None:
    image = Image.fromarray(np.array([[-5, 300]], dtype=np.int32))
    out = _identity(image)
    assert out.mode == "I;16"
    assert np.asarray(out).tolist() == [[0, 300]]


def test_float_values_outside_unit_range_are_clipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="srgan._image"):
        out = _identity(np.array([[-0.5, 0.25, 255.0]], dtype=np.float32))
    assert out.tolist() == [[0.0, 0.25, 1.0]]
    assert "[-0.5, 255]" in caplog.text


def test_empty_images_are_refused() -> None:
    for image in (Image.new("RGB", (0, 3)), np.zeros((0, 3, 3), np.uint8), torch.zeros(3, 4, 0)):
        with pytest.raises(InvalidImageError, match="no pixels"):
            prepare(image)


def test_unsupported_input_type_is_refused() -> None:
    with pytest.raises(InvalidImageError, match="open_image"):
        prepare("image.png")  # type: ignore[call-overload]


# ------------------------------------------------------------------------------------------------------------ numpy


@pytest.mark.parametrize(
    ("shape", "dtype", "high"),
    [
        ((5, 7), np.uint8, 256),
        ((5, 7, 1), np.uint8, 256),
        ((5, 7, 3), np.uint8, 256),
        ((5, 7, 4), np.uint8, 256),
        ((5, 7, 3), np.uint16, 65536),
        ((5, 7), np.uint16, 65536),
    ],
)
def test_numpy_integer_round_trip_is_lossless(shape: tuple[int, ...], dtype: type, high: int) -> None:
    array = _noise(shape, dtype, high)
    out = _identity(array)
    assert out.dtype == array.dtype
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_float_round_trip_keeps_dtype_and_is_not_rounded(dtype: type) -> None:
    array: NDArray[Any] = np.random.default_rng(RNG_SEED).random((4, 6, 3)).astype(dtype)
    prep = prepare(array)
    out = _upscale2(prep)
    assert out.dtype == dtype
    assert out.shape == (8, 12, 3)
    np.testing.assert_allclose(out, _up2(array), atol=1e-7 if dtype != np.float16 else 0)


def test_numpy_non_contiguous_and_big_endian_inputs_work() -> None:
    base = _noise((8, 10, 3))
    views = [base[::-1], base[:, ::2], np.asfortranarray(base), base.transpose(1, 0, 2)]
    for view in views:
        assert not view.flags.c_contiguous
        np.testing.assert_array_equal(_identity(view), view)
    big_endian = _noise((4, 5), np.uint16, 65536).astype(">u2")
    out = _identity(big_endian)
    assert out.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(out, big_endian)


def test_prepare_copies_the_input() -> None:
    array = np.full((2, 2, 3), 0.5, dtype=np.float32)
    prep = prepare(array)
    prep.rgb.zero_()
    assert float(array.min()) == 0.5


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.int16, np.complex64, np.uint32])
def test_numpy_wrong_dtype_is_refused_with_the_dtype_named(dtype: type) -> None:
    array: NDArray[Any] = np.zeros((4, 4, 3), dtype=dtype)
    with pytest.raises(InvalidImageError, match=f"got {np.dtype(dtype)}"):
        prepare(array)


@pytest.mark.parametrize("shape", [(16,), (2, 4, 4, 3), (4, 4, 2), (4, 4, 5)])
def test_numpy_wrong_shape_is_refused_with_the_shape_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        prepare(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    array: NDArray[Any] = np.zeros((3, 3, 3), np.float32)
    array[1, 1, 1] = bad
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        prepare(array)
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        prepare(torch.from_numpy(array).permute(2, 0, 1))
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        prepare(Image.fromarray(array[:, :, 1]))


# ------------------------------------------------------------------------------------------------------------ torch


@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 5, 7), (4, 5, 7), (1, 3, 5, 7), (2, 4, 5, 7), (2, 1, 5, 7)])
def test_torch_round_trip_keeps_layout_and_dtype(shape: tuple[int, ...]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(RNG_SEED), dtype=torch.float64)
    prep = prepare(x)
    batch = shape[0] if len(shape) == 4 else 1
    assert prep.rgb.shape == (batch, 3, 5, 7)
    assert prep.rgb.dtype == torch.float32
    out = _upscale2(prep)
    assert out.dtype == torch.float64
    assert out.device == x.device
    assert out.shape == (*shape[:-2], 10, 14)
    expected = x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(out, expected, atol=1e-7, rtol=0)


def test_torch_uint8_round_trip_is_lossless() -> None:
    x = torch.from_numpy(_noise((4, 6, 8)))
    out = _identity(x)
    assert out.dtype == torch.uint8
    assert torch.equal(out, x)


def test_torch_float_output_is_not_rounded() -> None:
    x = torch.full((3, 2, 2), 0.123456, dtype=torch.float32)
    assert torch.equal(_identity(x), x)


def test_torch_non_contiguous_inputs_work() -> None:
    base = torch.rand(3, 8, 6, generator=torch.Generator().manual_seed(RNG_SEED))
    for view in (base.transpose(1, 2), base[:, ::2], base.permute(0, 2, 1)[:, 1:, :]):
        assert not view.is_contiguous()
        out = _identity(view)
        assert out.shape == view.shape
        torch.testing.assert_close(out, view, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("x", "named"),
    [
        (torch.zeros(3, 4, 4, dtype=torch.int64), "torch.int64"),
        (torch.zeros(3, 4, 4, dtype=torch.bool), "torch.bool"),
        (torch.zeros(4, 4), r"\(4, 4\)"),
        (torch.zeros(2, 4, 4), r"\(2, 4, 4\)"),
        (torch.zeros(1, 1, 3, 4, 4), r"\(1, 1, 3, 4, 4\)"),
    ],
)
def test_torch_wrong_dtype_or_shape_is_refused(x: torch.Tensor, named: str) -> None:
    with pytest.raises(InvalidImageError, match=named):
        prepare(x)


def test_restore_refuses_mismatched_inputs() -> None:
    prep = prepare(Image.new("RGBA", (2, 2)))
    with pytest.raises(InvalidImageError, match="alpha"):
        restore(prep.rgb, None, prep)
    with pytest.raises(InvalidImageError, match="batch of 2"):
        restore(prep.rgb.repeat(2, 1, 1, 1), prep.alpha.repeat(2, 1, 1, 1) if prep.alpha is not None else None, prep)
    with pytest.raises(InvalidImageError, match="alpha of shape"):
        restore(prep.rgb, torch.zeros(1, 1, 3, 3), prep)


def test_pixel_count_for_every_kind() -> None:
    assert pixel_count(Image.new("RGB", (7, 5))) == (5, 7)
    assert pixel_count(np.zeros((5, 7), np.uint8)) == (5, 7)
    assert pixel_count(np.zeros((5, 7, 3), np.uint8)) == (5, 7)
    assert pixel_count(torch.zeros(3, 5, 7)) == (5, 7)
    assert pixel_count(torch.zeros(2, 3, 5, 7)) == (5, 7)
    with pytest.raises(InvalidImageError):
        pixel_count(np.zeros(5))


# ------------------------------------------------------------------------------------------------------ open_image


def _open_fds() -> int:
    """Number of open file descriptors of this process (0 where /proc is not available)."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_open_image_applies_exif_orientation(tmp_path: Path) -> None:
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, :16] = (255, 0, 0)  # left half red
    pixels[:, 16:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)

    image = open_image(path)

    assert image.size == (16, 32)  # width and height swapped
    top, bottom = image.getpixel((8, 4)), image.getpixel((8, 28))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 50  # the left half (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 50
    assert image.getexif().get(0x0112) is None


def test_open_image_keeps_icc_profile(tmp_path: Path) -> None:
    icc = _icc(b"RGB ")
    path = tmp_path / "icc.png"
    Image.new("RGB", (4, 3), (10, 20, 30)).save(path, icc_profile=icc)
    image = open_image(path)
    assert image.info["icc_profile"] == icc
    assert _identity(image).info["icc_profile"] == icc


def test_open_image_reads_the_first_frame_of_an_animation(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (6, 4), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 3
    fds = _open_fds()

    image = open_image(path)

    assert _open_fds() == fds  # the file is closed although it has more frames
    assert image.size == (6, 4)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert np.asarray(_identity(image)).tolist() == np.asarray(frames[0]).tolist()


def test_open_image_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)  # red
    image = open_image(path)
    assert image.mode == "CMYK"
    out = _upscale2(prepare(image))
    assert out.mode == "RGB" and out.size == (16, 16)
    red = np.asarray(out).astype(int)
    assert (red[:, :, 0] > 230).all() and (red[:, :, 1:] < 25).all()


def test_open_image_palette_png_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    _palette_image(transparent=True).save(path, transparency=0)
    image = open_image(path)
    assert image.mode == "P" and "transparency" in image.info
    out = _upscale2(prepare(image))
    assert out.mode == "RGBA"
    indices = _up2(np.asarray(image))
    np.testing.assert_array_equal(np.asarray(out)[:, :, 3] == 0, indices == 0)


def test_open_image_16_bit_grey_png_keeps_16_bits(tmp_path: Path) -> None:
    values = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    out = _identity(open_image(path))
    assert out.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(out), values)


def _valid_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    Image.fromarray(_noise((64, 64, 3))).save(path)
    return path


def test_open_image_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty") as info:
        open_image(path)
    assert str(path) in str(info.value)


def test_open_image_refuses_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(InvalidImageError, match="not an image") as info:
        open_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_open_image_refuses_a_truncated_file_and_closes_it(tmp_path: Path, name: str) -> None:
    path = _valid_file(tmp_path, name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    fds = _open_fds()
    with pytest.raises(InvalidImageError, match="truncated or corrupt") as info:
        open_image(path)
    assert str(path) in str(info.value)
    assert _open_fds() == fds


def test_open_image_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_image(tmp_path / "missing.png")


@pytest.mark.parametrize("size", [(20, 20), (12, 12)])  # above 2x the limit (error), between 1x and 2x (warning)
def test_open_image_refuses_a_decompression_bomb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    path = tmp_path / "bomb.png"
    Image.new("RGB", size).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageTooLargeError, match="decompression bomb") as info:
        open_image(path)
    assert str(path) in str(info.value)


def test_open_image_max_pixels(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (10, 10)).save(path)
    assert open_image(path, max_pixels=100).size == (10, 10)
    with pytest.raises(ImageTooLargeError, match="max_pixels=99"):
        open_image(path, max_pixels=99)
