"""A corpus of bad and unusual inputs, each with a defined outcome through the public API and the CLI.

Every case either upscales correctly (checked against a well-formed equivalent input, or the generator itself) or
raises a named error that is an :class:`~srgan.errors.SRGANError` and the fitting built-in, whose message says what
was wrong (and, for files, names the file and what to do).
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from conftest import make_photo
from srgan import SRGAN, Generator
from srgan.cli import main
from srgan.errors import ConfigError, ImageTooLargeError, InvalidImageError, SRGANError

Check = Callable[[SRGAN, Any, Any], None]


@dataclass(frozen=True)
class Case:
    """One input: ``make(folder)`` writes a file (returns its path) or builds an array / tensor / PIL image.

    Exactly one of ``error`` (with ``match``, a regex the message must contain) and ``check`` is set.
    """

    id: str
    make: Callable[[Path], Any]
    error: type[SRGANError] | None = None
    match: str = ""
    check: Check | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def model() -> SRGAN:
    torch.manual_seed(0)
    return SRGAN(Generator(num_blocks=1, channels=8).eval(), device="cpu", dtype="fp32")


def _photo(width: int = 12, height: int = 10, seed: int = 0) -> np.ndarray:
    return make_photo(width, height, seed=seed)


# --------------------------------------------------------------------------------------------------- file makers


def _saved(name: str, image: Callable[[], Image.Image], **save: Any) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        image().save(path, **save)
        return path

    return make


def _written(name: str, data: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data())
        return path

    return make


def _truncated(fmt: str) -> Callable[[], bytes]:
    def data() -> bytes:
        import io

        buffer = io.BytesIO()
        Image.fromarray(_photo(64, 64)).save(buffer, format=fmt)
        return buffer.getvalue()[: len(buffer.getvalue()) // 2]

    return data


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` RGB pixels but holds almost no data (costs nothing to write)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _palette_with_transparency() -> Image.Image:
    indices = np.zeros((8, 12), np.uint8)
    indices[:, 6:] = 1  # left half: index 0 (transparent), right half: index 1 (opaque green)
    image = Image.fromarray(indices, "P")
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    return image


def _frames() -> list[Image.Image]:
    return [Image.fromarray(_photo(12, 10, seed=i)) for i in range(3)]


def _animated(name: str, **save: Any) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        frames = _frames()
        path = folder / name
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0, **save)
        with Image.open(path) as check:
            assert getattr(check, "n_frames", 1) == 3
        return path

    return make


def _exif_rotated(folder: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    path = folder / "exif_rotated.jpg"
    Image.fromarray(_photo(16, 8)).save(path, exif=exif, quality=95)
    return path


# ------------------------------------------------------------------------------------------------------- checks


def _same_as(reference: Callable[[Any], Any], mode: str | None = None) -> Check:
    """The output equals the upscale of ``reference(source)``, a well-formed version of the same pixels."""

    def check(model: SRGAN, source: Any, out: Any) -> None:
        expected = model.upscale(reference(source))
        if mode is not None:
            assert out.mode == mode
        if isinstance(expected, torch.Tensor):
            torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
        else:
            assert np.asarray(out).dtype == np.asarray(expected).dtype
            np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))

    return check


def _as_pil(mode: str) -> Callable[[Path], Image.Image]:
    def read(path: Path) -> Image.Image:
        with Image.open(path) as image:
            converted: Image.Image = image.convert(mode)
        return converted

    return read


def _as_array(dtype: type) -> Callable[[Path], np.ndarray]:
    def read(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image).astype(dtype)

    return read


def _first_frame(path: Path) -> Image.Image:
    return _as_pil("RGB")(path)


def _upright(path: Path) -> Image.Image:
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        assert upright.size == (8, 16)
        return upright


def _generator_output(model: SRGAN, source: Any, out: Any) -> None:
    """A tiny image (1 pixel wide or high) gives what the generator itself computes, tiled or not."""
    pixels = np.asarray(_as_pil("RGB")(source))
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = model.generator(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    got = np.asarray(out).astype(np.float64)
    assert got.shape == (pixels.shape[0] * 4, pixels.shape[1] * 4, 3)
    assert np.abs(got - expected).max() <= 0.5 + 1e-3  # the same values, rounded to 8 bits
    torch.testing.assert_close(model.upscale_tensor(x, tile=1), model.upscale_tensor(x), atol=1e-5, rtol=0)


def _grey_with_alpha(model: SRGAN, source: Path, out: Image.Image) -> None:
    assert out.mode == "LA" and out.size == (48, 40)
    grey = model.upscale(_as_pil("L")(source))
    np.testing.assert_array_equal(np.asarray(out.getchannel("L")), np.asarray(grey))
    alpha = np.asarray(model.upscale(_as_pil("LA")(source)))[..., 1]
    np.testing.assert_array_equal(np.asarray(out.getchannel("A")), alpha)


def _transparent_left_half(model: SRGAN, source: Path, out: Image.Image) -> None:
    assert out.mode == "RGBA" and out.size == (48, 32)
    rgba = np.asarray(out)
    assert rgba[:, :20, 3].max() <= 5 and rgba[:, 28:, 3].min() >= 250
    np.testing.assert_array_equal(rgba, np.asarray(model.upscale(_as_pil("RGBA")(source))))


def _given(array_or_tensor: Any) -> Callable[[Path], Any]:
    return lambda _: array_or_tensor


def _contiguous(x: Any) -> Any:
    return x.contiguous() if isinstance(x, torch.Tensor) else np.ascontiguousarray(x)


# -------------------------------------------------------------------------------------------------------- corpus

FILE_CASES = [
    # Broken files: named errors that say what to do.
    Case("zero-byte.png", _written("zero.png", lambda: b""), InvalidImageError, r"empty file \(0 bytes\).*again"),
    Case("truncated.png", _written("cut.png", _truncated("PNG")), InvalidImageError, "truncated or corrupt.*again"),
    Case("truncated.jpg", _written("cut.jpg", _truncated("JPEG")), InvalidImageError, "truncated or corrupt.*again"),
    Case(
        "text-named.png",
        _written("notes.png", lambda: b"just some text\n"),
        InvalidImageError,
        "not an image format.*convert it",
    ),
    # Huge declared sizes: refused from the header, before decoding anything.
    Case(
        "bomb-over-pillow-limit",
        _written("bomb.png", lambda: _png_header_only(100_000, 100_000)),
        ImageTooLargeError,
        "decompression bomb.*MAX_IMAGE_PIXELS",
    ),
    Case(
        "bomb-in-pillow-warning-range",  # between 1x and 2x Pillow's limit: refused too, even without our limit
        _written("bomb.png", lambda: _png_header_only(12_000, 12_000)),
        ImageTooLargeError,
        "decompression bomb.*MAX_IMAGE_PIXELS",
        kwargs={"max_output_pixels": None},
    ),
    Case(
        "output-over-max_output_pixels",  # 25 M input pixels (under Pillow's limit), 400 M output pixels
        _written("big.png", lambda: _png_header_only(5000, 5000)),
        ImageTooLargeError,
        r"x4 output would be 20000x20000 = 400000000 pixels, more than max_output_pixels=268435456.*larger",
    ),
    # Unusual but valid files: correct upscales.
    Case("1x1.png", _saved("one.png", lambda: Image.new("RGB", (1, 1), (200, 30, 90))), check=_generator_output),
    Case("1x9.png", _saved("row.png", lambda: Image.fromarray(_photo(9, 1))), check=_generator_output),
    Case("9x1.png", _saved("column.png", lambda: Image.fromarray(_photo(1, 9))), check=_generator_output),
    Case(
        "cmyk.jpg",
        _saved("cmyk.jpg", lambda: Image.fromarray(_photo()).convert("CMYK"), quality=95),
        check=_same_as(_as_pil("RGB"), mode="RGB"),
    ),
    Case(
        "palette-transparency.png",
        _saved("palette.png", _palette_with_transparency, transparency=0),
        check=_transparent_left_half,
    ),
    Case("LA.png", _saved("la.png", lambda: Image.fromarray(_photo()).convert("LA")), check=_grey_with_alpha),
    Case(
        "I;16.png",
        _saved("grey16.png", lambda: Image.fromarray((np.arange(120).reshape(10, 12) * 541).astype(np.uint16))),
        check=_same_as(_as_array(np.uint16), mode="I;16"),
    ),
    Case(
        "I.tif",
        _saved("int32.tif", lambda: Image.fromarray((np.arange(120).reshape(10, 12) * 541).astype(np.int32))),
        check=_same_as(_as_array(np.uint16), mode="I;16"),
    ),
    Case(
        "F.tif",
        _saved("float.tif", lambda: Image.fromarray(np.linspace(0, 1, 120, dtype=np.float32).reshape(10, 12))),
        check=_same_as(_as_array(np.float32), mode="F"),
    ),
    Case("animated.gif", _animated("animated.gif"), check=_same_as(_first_frame, mode="RGB")),
    Case("animated.webp", _animated("animated.webp", lossless=True), check=_same_as(_first_frame, mode="RGB")),
    Case("exif-rotated.jpg", _exif_rotated, check=_same_as(_upright, mode="RGB")),
]

_NAN = torch.full((3, 4, 5), 0.5)
_NAN[1, 2, 3] = float("nan")
_NON_CONTIGUOUS: dict[str, Any] = {
    "tensor-permuted": torch.rand(10, 12, 3).permute(2, 0, 1),
    "tensor-strided": torch.rand(3, 20, 24)[:, ::2, ::2],
    "tensor-expanded": torch.rand(1, 10, 12).expand(3, -1, -1),
    "array-fortran-order": np.asfortranarray(_photo()),
    "array-negative-strides": _photo()[::-1, ::-1],
}

OBJECT_CASES = [
    Case("array-int16", lambda _: np.zeros((4, 5, 3), np.int16), InvalidImageError, r"dtype .*got int16.*convert"),
    Case("array-bool", lambda _: np.zeros((4, 5), bool), InvalidImageError, "got bool"),
    Case("array-1d", lambda _: np.zeros(20, np.uint8), InvalidImageError, r"got shape \(20,\)"),
    Case("array-4d", lambda _: np.zeros((2, 4, 5, 3), np.uint8), InvalidImageError, r"got shape \(2, 4, 5, 3\)"),
    Case("array-2-channels", lambda _: np.zeros((4, 5, 2), np.uint8), InvalidImageError, r"C in \{1, 3, 4\}"),
    Case("array-5-channels", lambda _: np.zeros((4, 5, 5), np.float32), InvalidImageError, r"\(4, 5, 5\)"),
    Case("array-no-pixels", lambda _: np.zeros((0, 5, 3), np.uint8), InvalidImageError, "no pixels"),
    Case("array-inf", lambda _: np.full((4, 5), np.inf, np.float32), InvalidImageError, "NaN or infinite.*replace"),
    Case("tensor-int32", lambda _: torch.zeros(3, 4, 5, dtype=torch.int32), InvalidImageError, "got torch.int32"),
    Case("tensor-5d", lambda _: torch.zeros(1, 1, 3, 4, 5), InvalidImageError, r"got \(1, 1, 3, 4, 5\)"),
    Case("tensor-nan", lambda _: _NAN, InvalidImageError, "NaN or infinite.*replace"),
    Case("tensor-minus-inf", lambda _: torch.full((1, 3, 4, 5), -float("inf")), InvalidImageError, "NaN or infinite"),
    *(Case(name, _given(x), check=_same_as(_contiguous)) for name, x in _NON_CONTIGUOUS.items()),
]


@pytest.mark.parametrize("case", FILE_CASES + OBJECT_CASES, ids=lambda c: c.id)
def test_each_input_has_its_defined_outcome(case: Case, model: SRGAN, tmp_path: Path) -> None:
    source = case.make(tmp_path)
    if case.error is None:
        assert case.check is not None
        out = model.upscale(source, **case.kwargs)
        case.check(model, source, out)
        return
    with pytest.raises(case.error) as info:
        model.upscale(source, **case.kwargs)
    error = info.value
    assert isinstance(error, SRGANError) and isinstance(error, ValueError)
    assert re.search(case.match, str(error)), str(error)
    if isinstance(source, Path):
        assert str(source) in str(error)


def test_non_contiguous_inputs_are_not_modified(model: SRGAN) -> None:
    for x in _NON_CONTIGUOUS.values():
        before = x.clone() if isinstance(x, torch.Tensor) else x.copy()
        model.upscale(x)
        assert torch.equal(x, before) if isinstance(x, torch.Tensor) else np.array_equal(x, before)


# ------------------------------------------------------------------------------------------------------ the CLI


def test_cli_over_the_corpus(tmp_path: Path, model: SRGAN, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    paths = {case.id: case.make(src) for case in FILE_CASES if case.id != "bomb-in-pillow-warning-range"}
    good = [case.id for case in FILE_CASES if case.error is None]
    bad = [case_id for case_id in paths if case_id not in good]
    model_dir = model.save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    kept = out / f"{paths['1x1.png'].stem}_x4.png"  # an existing output: never overwritten without --overwrite
    kept.parent.mkdir()
    kept.write_bytes(b"keep me")

    code = main(["upscale", str(src), "-o", str(out), "--model", str(model_dir), "--device", "cpu"])

    assert code == 1
    err = capsys.readouterr().err
    for case_id in [*bad, "1x1.png"]:
        assert f"srgan: {paths[case_id]}:" in err, case_id
    assert "pass --overwrite" in err
    assert kept.read_bytes() == b"keep me"
    written = sorted(p.name for p in out.iterdir())
    expected = sorted(
        f"{paths[case_id].stem}_x4{'.png' if paths[case_id].suffix == '.gif' else paths[case_id].suffix}"
        for case_id in good
    )
    assert written == expected
    assert not [p for p in out.iterdir() if p.stat().st_size == 0 or p.name.endswith(".partial")]
    for case_id in good:
        if case_id == "1x1.png":
            continue
        name = paths[case_id].stem + "_x4" + (".png" if paths[case_id].suffix == ".gif" else paths[case_id].suffix)
        with Image.open(out / name) as image:
            w, h = model.upscale(paths[case_id]).size
            assert image.size == (w, h), case_id
            assert image.getexif().get(0x0112) is None  # not turned a second time by a viewer


# ---------------------------------------------------------------------------- issue 15: odd objects and options


def _matrix(_: Path) -> Any:
    with warnings.catch_warnings():  # numpy discourages np.matrix (PendingDeprecationWarning); callers still pass it
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(np.zeros((4, 5), np.uint8))


def _meta_tensor(_: Path) -> torch.Tensor:
    return torch.empty(3, 4, 5, device="meta")


ODD_CASES = [
    Case("np-matrix", _matrix, InvalidImageError, "got numpy.matrix.*asarray"),
    Case(
        "masked-array",
        lambda _: np.ma.masked_array(np.zeros((4, 5), np.uint8), mask=np.eye(4, 5, dtype=bool)),
        InvalidImageError,
        "got a masked array.*filled",
    ),
    Case("meta-tensor", _meta_tensor, InvalidImageError, "'meta' device.*no values"),
    Case(
        "sparse-tensor",
        lambda _: torch.zeros(3, 4, 5).to_sparse(),
        InvalidImageError,
        r"dense.*got torch.sparse_coo.*to_dense\(\)",
    ),
    Case("tile-nan", lambda _: _photo(), ConfigError, "tile .* got nan", kwargs={"tile": float("nan")}),
    Case("tile-inf", lambda _: _photo(), ConfigError, "tile .* got inf", kwargs={"tile": float("inf")}),
]


@pytest.mark.parametrize("case", ODD_CASES, ids=lambda c: c.id)
def test_odd_objects_and_options_raise_named_errors(case: Case, model: SRGAN, tmp_path: Path) -> None:
    test_each_input_has_its_defined_outcome(case, model, tmp_path)


def test_memmap_arrays_are_plain_arrays(model: SRGAN, tmp_path: Path) -> None:
    data = np.memmap(tmp_path / "pixels.raw", dtype=np.uint8, mode="w+", shape=(10, 12, 3))
    data[:] = _photo()
    np.testing.assert_array_equal(model.upscale(data), model.upscale(_photo()))
