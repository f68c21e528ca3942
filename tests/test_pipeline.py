from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan import SRGAN, Generator
from srgan._tiling import Tile
from srgan.errors import ConfigError, ImageTooLargeError, InvalidImageError, UnknownModelError
from srgan.pipeline import cpu_has_native_bf16, resolve_device, resolve_dtype


def test_upscale_pil_rgb(tiny_model: SRGAN, photo: Image.Image) -> None:
    out = tiny_model.upscale(photo)
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB" and out.size == (photo.width * 4, photo.height * 4)


def test_matches_direct_generator_call(tiny_model: SRGAN, tiny_generator: Generator) -> None:
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        ref = tiny_generator(x).clamp(0, 1)
    torch.testing.assert_close(tiny_model.upscale(x[0]), ref[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "F", "1"])
def test_every_pil_mode(tiny_model: SRGAN, mode: str) -> None:
    base = Image.fromarray(make_photo(20, 14))
    img = base.convert("RGBA").convert(mode) if mode == "LA" else base.convert(mode)
    if mode == "F":
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.float32) / 255.0, mode="F")
    out = tiny_model.upscale(img)
    expected_mode = {"P": "RGB", "CMYK": "RGB", "1": "L"}.get(mode, mode)
    assert out.mode == expected_mode
    assert out.size == (80, 56)


def test_alpha_is_upscaled_separately(tiny_model: SRGAN) -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 128
    rgba[:, :8, 3] = 255  # left half opaque, right half transparent
    out = np.asarray(tiny_model.upscale(Image.fromarray(rgba, "RGBA")))
    assert out[:, :24, 3].min() >= 250 and out[:, 40:, 3].max() <= 5


def test_16bit_precision_kept(tiny_model: SRGAN) -> None:
    arr = (np.linspace(0, 65535, 24 * 20).reshape(20, 24)).astype(np.uint16)
    out = tiny_model.upscale(arr)
    assert out.dtype == np.uint16 and out.shape == (80, 96)
    assert len(np.unique(out)) > 256  # more levels than 8 bits could hold


def test_numpy_and_tensor_in_same_kind_out(tiny_model: SRGAN) -> None:
    arr = make_photo(10, 8)
    out = tiny_model.upscale(arr)
    assert isinstance(out, np.ndarray) and out.shape == (32, 40, 3) and out.dtype == np.uint8
    t = torch.rand(2, 3, 8, 10)
    tout = tiny_model.upscale(t)
    assert isinstance(tout, torch.Tensor) and tout.shape == (2, 3, 32, 40)


def test_icc_profile_carried(tiny_model: SRGAN) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.fromarray(make_photo(12, 12))
    img.info["icc_profile"] = icc
    assert tiny_model.upscale(img).info.get("icc_profile") == icc


def test_path_input_and_exif_orientation(tiny_model: SRGAN, tmp_path: Path) -> None:
    img = Image.fromarray(make_photo(20, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    out = tiny_model.upscale(tmp_path / "r.jpg")
    assert out.size == (40, 80)  # displayed size (10x20) times 4


@pytest.mark.parametrize("tile", [5, 8, 13])
def test_tiled_equals_untiled(tiny_model: SRGAN, tile: int) -> None:
    x = torch.rand(1, 3, 27, 31)
    whole = tiny_model.upscale_tensor(x, tile=1000)
    tiled = tiny_model.upscale_tensor(x, tile=tile)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def _dihedral_variants(x: torch.Tensor) -> list[tuple[torch.Tensor, object]]:
    """The 8 flips/transposes of the last two dims, each with the function that undoes it."""
    out = []
    for k in range(8):
        t = x
        if k & 1:
            t = t.flip(-1)
        if k & 2:
            t = t.flip(-2)
        if k & 4:
            t = t.transpose(-1, -2)

        def undo(y: torch.Tensor, k: int = k) -> torch.Tensor:
            if k & 4:
                y = y.transpose(-1, -2)
            if k & 2:
                y = y.flip(-2)
            if k & 1:
                y = y.flip(-1)
            return y

        out.append((t.contiguous(), undo))
    return out


def test_self_ensemble_is_the_mean_of_the_eight_mapped_back_outputs(tiny_model: SRGAN) -> None:
    x = torch.rand(1, 3, 13, 9)  # not square: a transpose mapped back wrongly changes the shape
    ref = torch.stack([undo(tiny_model.upscale_tensor(t)) for t, undo in _dihedral_variants(x)]).mean(0)
    out = tiny_model.upscale_tensor(x, self_ensemble=True)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert (out - tiny_model.upscale_tensor(x)).abs().max() > 1e-4  # it is not the plain output


def test_self_ensemble_is_equivariant_and_tiles_seamlessly(tiny_model: SRGAN) -> None:
    x = torch.rand(1, 3, 21, 17)
    out = tiny_model.upscale_tensor(x, self_ensemble=True)
    for t, undo in _dihedral_variants(x):
        torch.testing.assert_close(undo(tiny_model.upscale_tensor(t, self_ensemble=True)), out, atol=1e-5, rtol=0)
    torch.testing.assert_close(tiny_model.upscale_tensor(x, self_ensemble=True, tile=6), out, atol=1e-5, rtol=0)


def test_self_ensemble_through_upscale_keeps_modes(tiny_model: SRGAN, photo: Image.Image) -> None:
    ref = tiny_model.upscale_tensor(
        torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None] / 255.0, self_ensemble=True
    )
    out = tiny_model.upscale(photo, self_ensemble=True)  # the 8-bit path rounds straight into the output buffer
    expected = (ref[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(out).astype(int) - expected.astype(int)).max() <= 1
    rgba = tiny_model.upscale(photo.convert("RGBA"), self_ensemble=True)
    assert rgba.mode == "RGBA" and rgba.size == out.size
    batch = list(tiny_model.upscale_batch([photo], self_ensemble=True))
    assert np.array_equal(np.asarray(batch[0]), np.asarray(out))


@pytest.mark.parametrize("budget", [2e4, 3e5, 1e12])
def test_two_stage_tiles_and_bands_equal_a_whole_forward(
    tiny_generator: Generator, monkeypatch: pytest.MonkeyPatch, budget: float
) -> None:
    """Trunk tiles and upsampling bands (forced small by the budget) give the generator's own untiled output."""
    import srgan.pipeline as pipeline

    model = SRGAN(tiny_generator, device="cpu", dtype="fp32")
    assert model._stages() is not None
    monkeypatch.setattr(pipeline, "tile_budget", lambda device, reserved=0: budget)
    x = torch.rand(2, 3, 37, 45)
    pieces: list[Tile] = []
    real_write = model._reconstruct_band

    def count(*args: Any) -> None:
        pieces.append(args[3])
        real_write(*args)

    monkeypatch.setattr(model, "_reconstruct_band", count)
    out = model.upscale_tensor(x)
    with torch.no_grad():
        ref = tiny_generator.eval()(x).clamp(0, 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    if budget < 1e12:
        assert len(pieces) > 1 and len({(b.py0, b.px0) for b in pieces}) == len(pieces)
    else:
        assert pieces == [Tile(0, 37, 0, 45, 0, 37, 0, 45)]  # one trunk tile, one band: no context recomputed


def test_two_stage_trunk_tiles_are_large_on_a_cpu_in_fp32() -> None:
    """The trunk's small per-pixel memory bounds the tiles: a 1024^2 or 2048^2 input repeats little context."""
    from srgan._tiling import plan_padded_tiles

    model = SRGAN(Generator(), device="cpu", dtype="fp32")
    for size, most in ((1024, 1.2), (2048, 1.25)):
        side = model._auto_side(size, size, torch.device("cpu"), reserved=4 * 16 * size * size)
        tiles = list(plan_padded_tiles(size, size, side=side, pad=model._pad()))
        work = sum((t.py1 - t.py0) * (t.px1 - t.px0) for t in tiles) / size**2
        assert side * side * model._bytes_per_px() <= 3 * 2**29 and 1 < work < most
    assert model._bytes_per_px() < 0.25 * 10240  # the whole generator's would be 10 kB per pixel


def test_tiled_equals_untiled_full_depth() -> None:
    torch.manual_seed(1)
    model = SRGAN(Generator(num_blocks=16).eval(), device="cpu", dtype="fp32")
    x = torch.rand(1, 3, 90, 70)
    torch.testing.assert_close(model.upscale_tensor(x, tile=40), model.upscale_tensor(x, tile=500), atol=1e-5, rtol=0)


def test_auto_tile_bounds_memory_per_tile() -> None:
    from srgan._tiling import plan_padded_tiles, receptive_radius
    from srgan.pipeline import _CPU_TILE_BUDGET

    for dtype in ("fp32", "bf16"):
        model = SRGAN(Generator(), device="cpu", dtype=dtype)
        cpu = torch.device("cpu")
        assert model._auto_side(40, 30, cpu) == 40  # small images run whole
        side = model._auto_side(2048, 3000, cpu)
        assert side**2 * model._bytes_per_px() <= _CPU_TILE_BUDGET  # the trunk's memory bounds the tile
        pad = receptive_radius(model.generator.config)
        tiles = list(plan_padded_tiles(2048, 3000, side=side, pad=pad))
        assert max(max(t.py1 - t.py0, t.px1 - t.px0) for t in tiles) <= side
        assert min(t.y1 - t.y0 for t in tiles) >= 256  # tiles stay large enough that the overlap is a small share
    assert SRGAN(Generator(), device="cpu", dtype="bf16")._auto_side(512, 512, cpu) == 512
    assert SRGAN(Generator(), device="cpu", dtype="bf16")._auto_side(512, 512, cpu, batch=32) < 512  # a batch shares it


def test_max_output_pixels_guard(tiny_model: SRGAN) -> None:
    with pytest.raises(ImageTooLargeError, match="max_output_pixels"):
        tiny_model.upscale(np.zeros((100, 100, 3), np.uint8), max_output_pixels=1000)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
        np.zeros((4, 4, 3), np.int64),
        np.full((4, 4, 3), np.nan, np.float32),
        torch.full((3, 4, 4), float("inf")),
    ],
    ids=["2-channels", "4-dims", "int64", "nan-array", "inf-tensor"],
)
def test_bad_arrays_raise_invalid_image(tiny_model: SRGAN, bad: object) -> None:
    with pytest.raises(InvalidImageError):
        tiny_model.upscale(bad)  # type: ignore[call-overload]


def test_broken_file_raises_invalid_image(tiny_model: SRGAN, tmp_path: Path) -> None:
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(InvalidImageError, match=r"x\.png"):
        tiny_model.upscale(tmp_path / "x.png")


def test_non_contiguous_input(tiny_model: SRGAN) -> None:
    arr = make_photo(20, 16)[:, ::2]  # non-contiguous view
    assert tiny_model.upscale(arr).shape == (64, 40, 3)


def test_threads_get_correct_results(tiny_model: SRGAN) -> None:
    inputs = [torch.rand(1, 3, 9 + i, 11) for i in range(6)]
    expected = [tiny_model.upscale_tensor(x) for x in inputs]
    results: dict[int, torch.Tensor] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = tiny_model.upscale_tensor(inputs[i], tile=4 + i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        torch.testing.assert_close(results[i], expected[i], atol=1e-5, rtol=0)


def test_generator_is_not_modified_by_inference(tiny_model: SRGAN) -> None:
    before = {k: v.clone() for k, v in tiny_model.generator.state_dict().items()}
    tiny_model.to(dtype="bf16" if resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16 else "fp32")
    tiny_model.upscale(torch.rand(3, 8, 8))
    after = tiny_model.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(tiny_model.generator.parameters()).dtype == torch.float32


def test_bf16_close_to_fp32(tiny_generator: Generator) -> None:
    x = torch.rand(1, 3, 16, 16)
    ref = SRGAN(tiny_generator, device="cpu", dtype="fp32").upscale_tensor(x)
    out = SRGAN(tiny_generator, device="cpu", dtype="bf16").upscale_tensor(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05


def test_fp16_on_cpu_does_not_crash(tiny_generator: Generator) -> None:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = SRGAN(tiny_generator, device="cpu", dtype=torch.float16)
    assert model.dtype in (torch.bfloat16, torch.float32)
    assert any("float16" in str(x.message) for x in w)
    assert model.upscale_tensor(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_nonfinite_half_output_falls_back_to_fp32(tiny_generator: Generator) -> None:
    model = SRGAN(tiny_generator, device="cpu", dtype="bf16")
    broken = model._model(torch.device("cpu"), torch.bfloat16)
    with torch.no_grad():
        broken.tail[0].bias.fill_(float("inf"))  # the tail conv, moved before the last PixelShuffle
    ref = SRGAN(tiny_generator, device="cpu", dtype="fp32").upscale_tensor(torch.ones(1, 3, 6, 6) * 0.5)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        out = model.upscale_tensor(torch.ones(1, 3, 6, 6) * 0.5)
    torch.testing.assert_close(out, ref)


def test_device_and_dtype_resolution() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in ("cpu", "cuda", "mps")
    native = cpu_has_native_bf16()
    assert resolve_dtype(None, torch.device("cpu")) == (torch.bfloat16 if native else torch.float32)
    assert resolve_dtype("fp32", torch.device("cpu")) == torch.float32  # the opt-out
    with pytest.raises(ConfigError, match="dtype"):
        resolve_dtype("int8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")


def test_save_and_load_pretrained_round_trip(tiny_model: SRGAN, tiny_model_dir: Path) -> None:
    loaded = SRGAN.from_pretrained(tiny_model_dir, device="cpu", dtype="fp32")
    assert loaded.scale == 4 and loaded.generator.config == tiny_model.generator.config
    x = torch.rand(1, 3, 10, 10)
    torch.testing.assert_close(loaded.upscale_tensor(x), tiny_model.upscale_tensor(x))
    assert (tiny_model_dir / "config.json").is_file()
    # a bare checkpoint file works too
    assert SRGAN.from_pretrained(tiny_model_dir / "generator.pt").scale == 4


def test_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="not a registered name"):
        SRGAN.from_pretrained("definitely-not-a-model")
    with pytest.raises(UnknownModelError, match=r"generator\.pt"):
        SRGAN.from_pretrained(tmp_path)


def test_from_url_via_local_server(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import http.server

    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny_model_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/generator.pt"
        model = SRGAN.from_pretrained(url, device="cpu")
        assert model.scale == 4
        assert list((tmp_path / "cache").rglob("generator*.pt"))
    finally:
        server.shutdown()


def test_to_keeps_precision_and_releases_copies(tiny_generator: Generator) -> None:
    model = SRGAN(tiny_generator, device="cpu", dtype="bf16")
    model.upscale_tensor(torch.rand(1, 3, 4, 4))
    assert model._models
    model.to("cpu")
    assert model.dtype == torch.bfloat16 and not model._models


def test_file_size_checked_before_decoding(tiny_model: SRGAN, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(make_photo(64, 64)).save(tmp_path / "big.png")
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(ImageTooLargeError):
        tiny_model.upscale(tmp_path / "big.png", max_output_pixels=64 * 64)
    assert not decoded


def test_output_limit_counts_each_image_of_a_batch(tiny_model: SRGAN) -> None:
    # each 10x10 image gives 40x40 = 1600 output pixels: under the limit, though the batch of 2 gives 3200
    assert tiny_model.upscale(torch.rand(2, 3, 10, 10), max_output_pixels=2000).shape == (2, 3, 40, 40)
    with pytest.raises(ImageTooLargeError, match=r"1600 pixels.*max_output_pixels=1599"):
        tiny_model.upscale(torch.rand(2, 3, 10, 10), max_output_pixels=1599)


@pytest.mark.parametrize("tile", [float("nan"), float("inf"), 2.5, "64", True, 0, -3])
def test_tile_must_be_a_positive_whole_number(tiny_model: SRGAN, tile: object) -> None:
    x = torch.rand(1, 3, 6, 6)
    for call in (
        lambda: tiny_model.upscale(x, tile=tile),  # type: ignore[arg-type]
        lambda: tiny_model.upscale_tensor(x, tile=tile),  # type: ignore[arg-type]
        lambda: list(tiny_model.upscale_batch([x], tile=tile)),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigError, match=r"tile must be a whole number of input pixels >= 1 or None, got"):
            call()
    assert tiny_model.upscale(x, tile=4.0).shape == (1, 3, 24, 24)  # a whole float is fine


def _exif_photo(orientation: int) -> Image.Image:
    """A JPEG read back with EXIF orientation ``orientation`` and a camera name; left half red, right half blue."""
    import io

    pixels = np.zeros((8, 12, 3), np.uint8)
    pixels[:, :6] = (255, 0, 0)
    pixels[:, 6:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "srgan-test-camera"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", exif=exif, quality=95)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("orientation", [6, 3, 8])
def test_pil_input_with_exif_orientation_is_not_changed_and_the_output_displays_like_it(
    tiny_model: SRGAN, orientation: int, tmp_path: Path
) -> None:
    from PIL import ImageOps

    image = _exif_photo(orientation)
    exif_before, info_before = dict(image.getexif()), dict(image.info)
    pixels_before = np.asarray(image).copy()

    # self_ensemble makes the upscale exactly equivariant to flips and turns, so orientations can be compared
    out = tiny_model.upscale(image, self_ensemble=True)

    assert dict(image.getexif()) == exif_before == {0x0112: orientation, 0x010F: "srgan-test-camera"}
    assert image.info == info_before and np.array_equal(np.asarray(image), pixels_before)
    # the pixels are the x4 of the stored pixels, and the tag is kept: the output displays like the input
    plain = Image.fromarray(pixels_before)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(tiny_model.upscale(plain, self_ensemble=True)))
    assert dict(out.getexif()) == exif_before
    shown, shown_in = ImageOps.exif_transpose(out), ImageOps.exif_transpose(image)
    assert shown.size == (4 * shown_in.width, 4 * shown_in.height)
    upright = np.asarray(tiny_model.upscale(Image.fromarray(np.asarray(shown_in)), self_ensemble=True))
    assert np.abs(np.asarray(shown).astype(int) - upright).max() <= 1  # the same picture, the same way up
    # a file is read upright instead: pixels turned, tag removed (a second turn would show it sideways)
    image.save(tmp_path / "o.jpg", exif=image.getexif(), quality=95)
    path_out = tiny_model.upscale(tmp_path / "o.jpg")
    assert path_out.size == shown.size and 0x0112 not in path_out.getexif()


def test_upscale_tensor_rejects_integer_tensors(tiny_model: SRGAN) -> None:
    with pytest.raises(InvalidImageError, match="float"):
        tiny_model.upscale_tensor(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "numpy RGB", "numpy RGBA"])
def test_uint8_fast_path_equals_float_path(tiny_model: SRGAN, mode: str) -> None:
    from srgan import _image

    img: Image.Image | np.ndarray = Image.fromarray(make_photo(21, 17)).convert(mode.split()[-1])
    if mode.startswith("numpy"):
        img = np.asarray(img)
    fast = tiny_model.upscale(img, tile=8)
    assert type(fast) is type(img) and (not isinstance(img, Image.Image) or fast.mode == img.mode)
    fast = np.asarray(fast)
    prep = _image.prepare(img)
    alpha = None
    if prep.alpha is not None:
        alpha = torch.nn.functional.interpolate(prep.alpha, scale_factor=4, mode="bicubic").clamp(0, 1)
    slow = np.asarray(_image.restore(tiny_model.upscale_tensor(prep.rgb, tile=8), alpha, prep))
    np.testing.assert_array_equal(fast, slow)


def test_batched_tiles_equal_one_by_one(tiny_model: SRGAN, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path batches tiles of equal padded shape; the same logic runs on CPU when forced."""
    x = torch.rand(2, 3, 64, 64)
    one_by_one = tiny_model.upscale_tensor(x, tile=8)
    calls: list[int] = []
    original = tiny_model._model

    def spy(device: torch.device, dtype: torch.dtype) -> Generator:
        model = original(device, dtype)

        class Spy:  # the trunk runs on batches of tiles, the upsampling layers on each tile's bands
            def features(self, inp: torch.Tensor) -> torch.Tensor:
                calls.append(inp.shape[0])
                return model.features(inp)

            def reconstruct(self, feats: torch.Tensor) -> torch.Tensor:
                return model.reconstruct(feats)

        return Spy()  # type: ignore[return-value]

    monkeypatch.setattr(tiny_model, "_tiles_per_batch", lambda device, padded: 3)
    monkeypatch.setattr(tiny_model, "_model", spy)
    batched = tiny_model.upscale_tensor(x, tile=8)
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=0)
    assert max(calls) == 6  # 3 tiles x batch of 2 images in one forward


def test_packaged_default_loads_offline_and_upscales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srgan import weights

    if weights.DEFAULT_MODEL is None:
        pytest.skip("no packaged default weights in this checkout")
    monkeypatch.setenv("SRGAN_OFFLINE", "1")
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))
    model = SRGAN.from_pretrained(device="cpu")
    assert model.scale == 4 and model.generator.config == weights.get_entry(weights.DEFAULT_MODEL).config
    photo = make_photo(24, 20)
    out = model.upscale(photo)
    assert out.shape == (80, 96, 3)
    # A trained model is close to bicubic on a smooth photo, not noise: compare with a 4x nearest upscale.
    ref = np.repeat(np.repeat(photo, 4, 0), 4, 1).astype(np.float64)
    assert np.abs(out.astype(np.float64) - ref).mean() < 20
    assert not (tmp_path / "cache").exists()  # nothing downloaded or cached


def test_upscale_batch_yields_in_order_and_reports_bad_files(tiny_model: SRGAN, tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.fromarray(make_photo(10 + i, 8, seed=i)).save(p)
        paths.append(p)
    results = list(tiny_model.upscale_batch([*paths, make_photo(6, 5)], workers=2, prefetch=2))
    assert [r.size for r in results[:5]] == [((10 + i) * 4, 32) for i in range(5)]
    assert isinstance(results[5], np.ndarray) and results[5].shape == (20, 24, 3)
    np.testing.assert_array_equal(np.asarray(results[2]), np.asarray(tiny_model.upscale(paths[2])))
    (tmp_path / "bad.png").write_text("nope")
    gen = tiny_model.upscale_batch([paths[0], tmp_path / "bad.png"])
    assert next(gen).size == (40, 32)
    with pytest.raises(InvalidImageError, match=r"bad\.png"):
        next(gen)


def test_a_batch_keeps_its_heap_memory_between_images_then_returns_it(
    tiny_model: SRGAN, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each call runs in a heap_reuse scope; the free memory one image leaves is reused by the next (no page faults
    again) and goes back to the system when the calls stop (here: heap_release instead of the 2 s timer)."""
    from srgan import runtime

    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

        def malloc_trim(self, pad: int) -> int:
            calls.append((0, pad))
            return 1

    runtime.heap_release()
    monkeypatch.setattr(runtime, "_glibc", lambda: FakeLibc())
    monkeypatch.delenv("SRGAN_HEAP_REUSE", raising=False)
    images = [Image.fromarray(make_photo(12, 10, seed=i)) for i in range(3)]
    out = list(tiny_model.upscale_batch(images))
    assert [o.size for o in out] == [(48, 40)] * 3
    assert calls == [(-3, 1 << 30), (-1, (1 << 31) - 1)]  # set once, kept across the three images
    runtime.heap_release()
    assert calls[2:] == [(-3, 32 << 20), (-1, 64 << 20), (0, 0)]
