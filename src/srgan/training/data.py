"""Training data: random HR crops from folders of images, LR made on the fly by a degradation.

Sampling is a pure function of ``(seed, index)``: item ``i`` always yields the same crop, so a run that resumes at
step ``k`` sees exactly the batches an uninterrupted run would (see :class:`StepSampler`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler

from .._dihedral import dihedral
from .._image import IMAGE_EXTENSIONS
from ..degradation import (
    BicubicDegradation,
    BlurDownsampleDegradation,
    Degradation,
    RealDegradation,
    modcrop,
    quantize,
)
from ..errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "find_images", "read_rgb", "SRCropDataset", "StepSampler", "make_degradation"]

logger = logging.getLogger(__name__)


def find_images(dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Image files under each folder (recursive), sorted. A missing folder raises :class:`DataError`."""
    files: list[Path] = []
    for d in dirs:
        p = Path(d)
        if not p.is_dir():
            raise DataError(f"training/validation folder {p} does not exist or is not a folder")
        files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS))
    return files


def read_rgb(path: Path) -> torch.Tensor:
    """Decode an image file to a (3, H, W) uint8 tensor (grey and palette images converted to RGB)."""
    with Image.open(path) as img:
        img.load()
        rgb = np.asarray(img.convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def make_degradation(kind: str, *, scale: int, blur_sigma: float = 1.5) -> Degradation:
    """The degradation named in a :class:`~srgan.training.TrainConfig`: ``"bicubic"``, ``"blur"``, ``"real"`` or
    ``"real-mild"`` (the last two: :class:`~srgan.degradation.RealDegradation` with the ``real`` / ``mild`` preset)."""
    if kind == "bicubic":
        return BicubicDegradation(factor=scale)
    if kind in ("real", "real-mild"):
        return RealDegradation("real" if kind == "real" else "mild", scale=scale)
    return BlurDownsampleDegradation(factor=scale, sigma=blur_sigma)


class SRCropDataset(Dataset[tuple[torch.Tensor, ...]]):
    """Random (LR, HR) training pairs.

    Each item picks an image (with probability proportional to its area, i.e. uniform over pixels), a random
    ``crop_size`` HR crop, a random flip/transpose (the 8 dihedral transforms), and makes the LR crop with the
    degradation. Items are deterministic functions of ``(seed, index)`` (and of ``crop_size``, which the Trainer
    may change between parts of a phase).

    With ``degrade_whole_images`` the LR of each image is made once, from the whole image (cropped to a multiple
    of ``scale``, quantised to 8 bits, as the benchmark makes its LR), and each item cuts an aligned LR/HR pair
    at a random LR position. :meth:`set_targets` then adds a second, HR-sized target per image (a teacher's
    output) that is cut and flipped with the HR crop.

    Unreadable files and images smaller than ``min_size`` (default: the crop) are skipped with a warning; if
    nothing usable remains a :class:`DataError` is raised.

    Returns per item: ``(lr, hr)``, (3, crop/scale, crop/scale) and (3, crop, crop) float32 in [0, 1]; with
    targets ``(lr, hr, target)``, the target shaped like ``hr``; with ``hr_only`` just ``(hr,)`` (the Trainer
    then degrades whole batches on its device).
    """

    def __init__(
        self,
        dirs: Sequence[str | os.PathLike[str]],
        *,
        crop_size: int = 96,
        scale: int = 4,
        degradation: Degradation | None = None,
        cache_images: bool = True,
        seed: int = 0,
        degrade_whole_images: bool = False,
        min_size: int | None = None,
        hr_only: bool = False,
    ) -> None:
        if degrade_whole_images and not cache_images:
            raise ValueError("degrade_whole_images needs cache_images=True (the LR images are kept in memory)")
        self.crop_size = crop_size
        self.scale = scale
        self.degrade_whole_images = degrade_whole_images
        self.hr_only = hr_only
        min_size = crop_size if min_size is None else max(crop_size, min_size)
        self.degradation = degradation if degradation is not None else BicubicDegradation(factor=scale)
        self.seed = seed
        self.cache_images = cache_images
        files = find_images(dirs)
        self.files: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        self._cache: list[torch.Tensor] = []
        for f in files:
            try:
                if cache_images:
                    img = read_rgb(f)
                    h, w = img.shape[-2:]
                else:
                    with Image.open(f) as im:
                        w, h = im.size
                        im.verify()
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
                logger.warning("skipping unreadable training image %s: %s", f, e)
                continue
            if h < min_size or w < min_size:
                logger.warning("skipping %s: %dx%d is smaller than the %d px crop", f, w, h, min_size)
                continue
            self.files.append(f)
            self.sizes.append((h, w))
            if cache_images:
                self._cache.append(img)
        if not self.files:
            raise DataError(
                f"no usable training image in {[str(d) for d in dirs]} ({len(files)} files found; images must be "
                f"readable and at least {crop_size}x{crop_size})"
            )
        self._lr_cache: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] | None = None
        if degrade_whole_images:
            for k, img in enumerate(self._cache):
                hr = modcrop(img, scale)
                self._cache[k] = hr
                lr = quantize(self.degradation(hr.unsqueeze(0).double() / 255)[0])
                self._lr_cache.append(lr.mul(255).round().to(torch.uint8))
            self.sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in self._cache]
        areas = torch.tensor([h * w for h, w in self.sizes], dtype=torch.float64)
        self._weights = areas / areas.sum()
        logger.info("training set: %d images from %d folders", len(self.files), len(dirs))

    def __len__(self) -> int:
        return 1 << 62  # an endless stream; StepSampler chooses the indices

    @property
    def lr_images(self) -> list[torch.Tensor]:
        """The whole-image LR of each training image, (3, H/scale, W/scale) uint8 (``degrade_whole_images`` only)."""
        return self._lr_cache

    @property
    def hr_images(self) -> list[torch.Tensor]:
        """The cached HR images, (3, H, W) uint8 (with ``degrade_whole_images``: cropped to multiples of scale)."""
        return self._cache

    def set_targets(self, targets: Sequence[torch.Tensor] | None) -> None:
        """Give each training image a second target, (3, H, W) uint8 like its HR image (None removes them).

        Raises:
            ValueError: not in ``degrade_whole_images`` mode, or the count or a shape differs from the HR images.
        """
        if targets is None:
            self._targets = None
            return
        if not self.degrade_whole_images:
            raise ValueError("targets need degrade_whole_images=True")
        shapes = [tuple(t.shape) for t in self._cache]
        if [tuple(t.shape) for t in targets] != shapes:
            raise ValueError(
                f"expected {len(shapes)} targets shaped like the HR images, got {len(targets)} of other shapes"
            )
        self._targets = list(targets)

    def _image(self, i: int) -> torch.Tensor:
        if self.cache_images:
            return self._cache[i]
        try:
            return read_rgb(self.files[i])
        except (OSError, UnidentifiedImageError, ValueError) as e:
            logger.warning("could not read %s during training (%s); using another image", self.files[i], e)
            return self._cache[0] if self._cache else read_rgb(self.files[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index))
        i = int(torch.multinomial(self._weights, 1, generator=g).item())
        if self.degrade_whole_images:
            return self._whole_image_item(i, g)
        img = self._image(i)
        h, w = img.shape[-2:]
        c = self.crop_size
        y = int(torch.randint(0, h - c + 1, (1,), generator=g).item())
        x = int(torch.randint(0, w - c + 1, (1,), generator=g).item())
        hr = img[:, y : y + c, x : x + c].float().div_(255)
        flips = torch.randint(0, 2, (3,), generator=g).tolist()
        hr = _flip(hr, flips).contiguous()
        if self.hr_only:  # the LR is made later, batched on the training device
            return (hr,)
        lr = self.degradation(hr.unsqueeze(0), generator=g)[0]
        return lr, hr

    def _whole_image_item(self, i: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        s, c = self.scale, self.crop_size // self.scale
        lr_img = self._lr_cache[i]
        h, w = lr_img.shape[-2:]
        y = int(torch.randint(0, h - c + 1, (1,), generator=g).item())
        x = int(torch.randint(0, w - c + 1, (1,), generator=g).item())
        crops = [lr_img[:, y : y + c, x : x + c], self._cache[i][:, s * y : s * (y + c), s * x : s * (x + c)]]
        if self._targets is not None:
            crops.append(self._targets[i][:, s * y : s * (y + c), s * x : s * (x + c)])
        flips = torch.randint(0, 2, (3,), generator=g).tolist()
        return tuple(_flip(t, flips).float().div_(255).contiguous() for t in crops)


def _flip(t: torch.Tensor, flips: list[int]) -> torch.Tensor:
    """The dihedral transform ``flips = [hflip, vflip, transpose]`` (0/1 each) of ``t``'s last two dims."""
    return dihedral(t, hflip=bool(flips[0]), vflip=bool(flips[1]), transpose=bool(flips[2]))


class StepSampler(Sampler[int]):
    """Yields the dataset indices of steps ``start_step..steps`` of a phase: step ``s`` is the global batch
    ``(offset + s) * batch_size ... (offset + s + 1) * batch_size - 1``.

    Because dataset items depend only on their index, resuming at step ``start_step`` reproduces the batches of an
    uninterrupted run, whatever the number of workers.

    For distributed training, ``batch_size`` is the global batch and each of ``world_size`` ranks takes its
    contiguous slice of every global batch: rank ``r`` yields items ``r * b ... (r + 1) * b - 1`` of each step, with
    ``b = batch_size // world_size``. The ranks' slices of a step, in rank order, are exactly the single-process
    batch of that step, so a run resumes exactly with any number of ranks (the role of ``DistributedSampler``).

    Raises:
        ValueError: ``batch_size`` is not divisible by ``world_size``, or ``rank`` is not in ``[0, world_size)``.
    """

    def __init__(
        self, *, start_step: int, steps: int, batch_size: int, offset: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size) with world_size = {world_size}")
        if batch_size % world_size:
            raise ValueError(f"global batch_size {batch_size} is not divisible by world_size {world_size}")
        self.batch_size = batch_size
        self.per_rank = batch_size // world_size
        self.first = offset + start_step
        self.last = offset + steps
        self.rank = rank

    def __iter__(self) -> Iterator[int]:
        for step in range(self.first, self.last):
            begin = step * self.batch_size + self.rank * self.per_rank
            yield from range(begin, begin + self.per_rank)

    def __len__(self) -> int:
        return max(0, self.last - self.first) * self.per_rank
