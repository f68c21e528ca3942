"""Tests for srgan.training.data: deterministic crops, degradation, bad files, samplers."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from srgan.degradation import BicubicDegradation, BlurDownsampleDegradation
from srgan.errors import DataError
from srgan.training.data import SRCropDataset, StepSampler, find_images, make_degradation, read_rgb

MakeImage = Callable[..., Path]


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for t in (x, x.transpose(-1, -2)):
        out += [t, t.flip(-1), t.flip(-2), t.flip(-1).flip(-2)]
    return out


def _is_crop_of(hr: torch.Tensor, img: torch.Tensor) -> bool:
    """Whether the (3, c, c) float crop equals some window of the (3, H, W) uint8 image, up to a flip/transpose."""
    c = hr.shape[-1]
    q = (hr * 255).round().to(torch.uint8)
    windows = img.unfold(1, c, 1).unfold(2, c, 1)  # (3, H-c+1, W-c+1, c, c)
    return any(bool((windows == t[:, None, None]).all(-1).all(-1).all(0).any()) for t in _dihedral(q))


def test_items_have_the_documented_shapes_dtypes_and_range(tiny_image_dir: Path) -> None:
    ds = SRCropDataset([tiny_image_dir], crop_size=32, scale=4)
    assert len(ds.files) == 3
    for i in range(6):
        lr, hr = ds[i]
        assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32)
        assert lr.dtype == hr.dtype == torch.float32
        assert hr.min() >= 0 and hr.max() <= 1 and lr.min() >= 0 and lr.max() <= 1
        assert hr.std() > 0.01  # a real image crop, not a constant
        assert hr.is_contiguous()


@pytest.mark.parametrize("scale", [2, 8])
def test_other_scales(tiny_image_dir: Path, scale: int) -> None:
    lr, hr = SRCropDataset([tiny_image_dir], crop_size=32, scale=scale)[0]
    assert hr.shape == (3, 32, 32) and lr.shape == (3, 32 // scale, 32 // scale)


def test_hr_is_a_crop_of_a_training_image(tiny_image_dir: Path) -> None:
    ds = SRCropDataset([tiny_image_dir], crop_size=16, scale=4)
    images = [read_rgb(f) for f in ds.files]
    assert not _is_crop_of(torch.rand(3, 16, 16), images[0])  # the check itself can fail
    for i in range(8):
        _, hr = ds[i]
        assert any(_is_crop_of(hr, img) for img in images), f"item {i} is not a crop of any image"


@pytest.mark.parametrize("cache_images", [True, False])
def test_items_are_deterministic_by_index(tiny_image_dir: Path, cache_images: bool) -> None:
    ds = SRCropDataset([tiny_image_dir], crop_size=16, scale=4, seed=3, cache_images=cache_images)
    again = SRCropDataset([tiny_image_dir], crop_size=16, scale=4, seed=3, cache_images=not cache_images)
    for i in (0, 5, 12345):
        lr1, hr1 = ds[i]
        lr2, hr2 = ds[i]
        lr3, hr3 = again[i]
        assert torch.equal(hr1, hr2) and torch.equal(lr1, lr2)
        assert torch.equal(hr1, hr3) and torch.equal(lr1, lr3)
    hrs = [ds[i][1] for i in range(6)]
    for a in range(6):
        for b in range(a + 1, 6):
            assert not torch.equal(hrs[a], hrs[b]), f"items {a} and {b} are identical"


def test_seed_changes_the_items(tiny_image_dir: Path) -> None:
    a = SRCropDataset([tiny_image_dir], crop_size=16, scale=4, seed=0)
    b = SRCropDataset([tiny_image_dir], crop_size=16, scale=4, seed=1)
    assert not all(torch.equal(a[i][1], b[i][1]) for i in range(4))


def test_items_do_not_depend_on_the_global_rng(tiny_image_dir: Path) -> None:
    ds = SRCropDataset([tiny_image_dir], crop_size=16, scale=4)
    torch.manual_seed(1)
    first = ds[7][1]
    torch.manual_seed(2)
    assert torch.equal(ds[7][1], first)


def test_lr_is_the_bicubic_degradation_of_the_hr_crop(tiny_image_dir: Path) -> None:
    ds = SRCropDataset([tiny_image_dir], crop_size=32, scale=4)
    reference = BicubicDegradation(factor=4)
    for i in range(4):
        lr, hr = ds[i]
        assert torch.equal(lr, reference(hr.unsqueeze(0))[0])
        # 8-bit quantised, and close to a box average of the HR crop (a bicubic downsample of a smooth image).
        assert torch.equal(lr, (lr * 255).round() / 255)
        box = torch.nn.functional.avg_pool2d(hr.unsqueeze(0), 4)[0]
        assert (lr - box).abs().mean() < 0.05


def test_blur_degradation_from_config(tiny_image_dir: Path) -> None:
    deg = make_degradation("blur", scale=4, blur_sigma=1.2)
    assert isinstance(deg, BlurDownsampleDegradation) and deg.sigma == (1.2, 1.2)
    assert isinstance(make_degradation("bicubic", scale=2), BicubicDegradation)
    ds = SRCropDataset([tiny_image_dir], crop_size=16, scale=4, degradation=deg)
    lr, hr = ds[0]
    assert lr.shape == (3, 4, 4)
    assert torch.equal(lr, deg(hr.unsqueeze(0))[0])
    assert not torch.equal(lr, BicubicDegradation(factor=4)(hr.unsqueeze(0))[0])


def _png_bytes(make_image: MakeImage, tmp: Path) -> bytes:
    return make_image(tmp / "src.png", 64, 64, seed=9).read_bytes()


@pytest.mark.parametrize("cache_images", [True, False])
def test_bad_and_small_files_are_skipped_with_a_warning(
    tmp_path: Path, make_image: MakeImage, caplog: pytest.LogCaptureFixture, cache_images: bool
) -> None:
    d = tmp_path / "mixed"
    good = make_image(d / "good.png", 64, 48, seed=1)
    (d / "notes.png").write_text("this is not an image")
    data = _png_bytes(make_image, tmp_path / "other")
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    make_image(d / "tiny.png", 20, 40, seed=2)
    with caplog.at_level(logging.WARNING, logger="srgan.training.data"):
        ds = SRCropDataset([d], crop_size=32, scale=4, cache_images=cache_images)
    assert ds.files == [good]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in ("notes.png", "truncated.png", "tiny.png"):
        assert name in warned
    assert "smaller than the 32 px crop" in warned
    lr, hr = ds[3]
    assert hr.shape == (3, 32, 32) and lr.shape == (3, 8, 8)
    assert _is_crop_of(hr, read_rgb(good))


def test_empty_folder_raises_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable training image"):
        SRCropDataset([tmp_path / "empty"], crop_size=16, scale=4)


def test_only_bad_files_raise_data_error(tmp_path: Path, make_image: MakeImage) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    make_image(d / "small.png", 12, 12)
    with pytest.raises(DataError) as info:
        SRCropDataset([d], crop_size=16, scale=4)
    assert "2 files found" in str(info.value) and "16x16" in str(info.value)


def test_missing_folder_raises_data_error(tmp_path: Path, tiny_image_dir: Path) -> None:
    missing = tmp_path / "does-not-exist"
    with pytest.raises(DataError, match="does-not-exist"):
        SRCropDataset([tiny_image_dir, missing], crop_size=16, scale=4)
    with pytest.raises(DataError):
        find_images([missing])
    a_file = tiny_image_dir / "img0.png"
    with pytest.raises(DataError, match="not a folder"):
        find_images([a_file])


def test_folders_are_scanned_recursively(tmp_path: Path, make_image: MakeImage) -> None:
    root = tmp_path / "root"
    a = make_image(root / "b.png", 32, 32)
    b = make_image(root / "sub" / "deeper" / "a.JPG", 32, 32, seed=1)
    c = make_image(root / "sub" / "c.bmp", 32, 32, seed=2)
    (root / "sub" / "readme.txt").write_text("not an image")
    (root / "sub" / "folder.png").mkdir()  # a folder with an image-like name is not a file
    other = make_image(tmp_path / "other" / "z.webp", 32, 32, seed=3)
    found = find_images([root, tmp_path / "other"])
    assert set(found[:3]) == {a, b, c} and found[3] == other
    assert found[:3] == sorted(found[:3])
    ds = SRCropDataset([root], crop_size=16, scale=4)
    assert set(ds.files) == {a, b, c}


def test_grey_and_palette_images_become_rgb(tmp_path: Path, make_image: MakeImage) -> None:
    grey = read_rgb(make_image(tmp_path / "g.png", 20, 10, mode="L"))
    assert grey.shape == (3, 10, 20) and grey.dtype == torch.uint8
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    pal = read_rgb(make_image(tmp_path / "p.png", 20, 10, mode="P"))
    assert pal.shape == (3, 10, 20)
    rgba = Image.fromarray(np.zeros((10, 20, 4), np.uint8))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    assert read_rgb(tmp_path / "a.png").shape == (3, 10, 20)


def test_step_sampler_ranges() -> None:
    s = StepSampler(start_step=0, steps=3, batch_size=4)
    assert list(s) == list(range(12)) and len(s) == 12
    s = StepSampler(start_step=2, steps=5, batch_size=3)
    assert list(s) == list(range(6, 15)) and len(s) == 9
    # The GAN phase continues the stream after the pretrain phase's indices.
    s = StepSampler(start_step=1, steps=2, batch_size=2, offset=10)
    assert list(s) == [22, 23] and len(s) == 2
    done = StepSampler(start_step=5, steps=5, batch_size=2)
    assert list(done) == [] and len(done) == 0


def test_resumed_sampler_continues_the_uninterrupted_stream() -> None:
    full = list(StepSampler(start_step=0, steps=6, batch_size=3))
    head = list(StepSampler(start_step=0, steps=2, batch_size=3))
    tail = list(StepSampler(start_step=2, steps=6, batch_size=3))
    assert head + tail == full


def test_works_with_a_dataloader(tiny_image_dir: Path) -> None:
    ds = SRCropDataset([tiny_image_dir], crop_size=16, scale=4)
    loader = DataLoader(ds, batch_size=2, sampler=StepSampler(start_step=1, steps=3, batch_size=2), num_workers=0)
    batches = list(loader)
    assert len(batches) == 2
    for k, (lr, hr) in enumerate(batches):
        assert lr.shape == (2, 3, 4, 4) and hr.shape == (2, 3, 16, 16)
        for j in range(2):
            item_lr, item_hr = ds[(k + 1) * 2 + j]
            assert torch.equal(hr[j], item_hr) and torch.equal(lr[j], item_lr)


def test_ranks_take_their_slice_of_each_global_batch() -> None:
    single = list(StepSampler(start_step=1, steps=4, batch_size=6))
    shards = [list(StepSampler(start_step=1, steps=4, batch_size=6, rank=r, world_size=3)) for r in range(3)]
    assert shards[1] == [8, 9, 14, 15, 20, 21] and all(len(s) == 6 for s in shards)
    # Step by step, the ranks' slices in rank order are the single-process batch (2 images per rank and step).
    merged = [i for k in range(3) for s in shards for i in s[2 * k : 2 * k + 2]]
    assert merged == single
    # Resuming with another number of ranks continues the same stream.
    head = [list(StepSampler(start_step=0, steps=1, batch_size=6, rank=r, world_size=2)) for r in range(2)]
    assert head[0] + head[1] == list(StepSampler(start_step=0, steps=1, batch_size=6))


def test_the_global_batch_must_split_over_the_ranks() -> None:
    with pytest.raises(ValueError, match="batch_size 6 is not divisible by world_size 4"):
        StepSampler(start_step=0, steps=1, batch_size=6, world_size=4)
    with pytest.raises(ValueError, match="rank 2 is not in"):
        StepSampler(start_step=0, steps=1, batch_size=6, rank=2, world_size=2)
