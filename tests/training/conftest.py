"""Fixtures of the training tests: small synthetic images written to ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

MakeImage = Callable[..., Path]


def synthetic_photo(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth gradients, a disc, a bright bar and mild noise: (height, width, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 0.5 + 0.4 * np.sin(x / (4.0 + seed % 3) + seed)
    g = y / max(1, height - 1)
    cy, cx = rng.uniform(0.3, 0.7, 2) * (height, width)
    disc = ((x - cx) ** 2 + (y - cy) ** 2 < (min(width, height) / 4) ** 2).astype(np.float64)
    b = 0.2 + 0.6 * disc
    bar = (np.abs(x - width * rng.uniform(0.2, 0.8)) < 2).astype(np.float64)
    img = np.stack([r + 0.3 * bar, g, b], axis=-1) + rng.normal(0, 0.03, (height, width, 3))
    out: np.ndarray = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return out


@pytest.fixture
def make_image() -> MakeImage:
    """``make_image(path, width=64, height=64, seed=0, mode="RGB")`` writes a synthetic photo and returns path."""

    def make(path: Path, width: int = 64, height: int = 64, seed: int = 0, mode: str = "RGB") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(synthetic_photo(width, height, seed)).convert(mode).save(path)
        return path

    return make


@pytest.fixture
def tiny_image_dir(tmp_path: Path, make_image: MakeImage) -> Path:
    """A folder of three small PNG photos (48..80 px)."""
    d = tmp_path / "train"
    for i, (w, h) in enumerate([(48, 64), (80, 56), (64, 64)]):
        make_image(d / f"img{i}.png", w, h, seed=i)
    return d
