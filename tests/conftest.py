from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan import SRGAN, Generator


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def make_photo(width: int = 48, height: int = 40, seed: int = 0) -> np.ndarray:
    """A small synthetic 'photo': smooth gradients, a disc, an edge and mild noise. (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 0.5 + 0.4 * np.sin(x / 5.0 + seed)
    g = y / max(1, height - 1)
    b = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2).astype(np.float64)
    img = np.stack([r, g, 0.2 + 0.6 * b], axis=-1) + rng.normal(0, 0.03, (height, width, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def photo() -> Image.Image:
    return Image.fromarray(make_photo())


@pytest.fixture
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    g = Generator(num_blocks=2, channels=8)
    # Give BN non-trivial statistics so that eval-mode inference is not an identity of the init.
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return g.eval()


@pytest.fixture
def tiny_model(tiny_generator: Generator) -> SRGAN:
    return SRGAN(tiny_generator, device="cpu", dtype="fp32")


@pytest.fixture
def tiny_model_dir(tmp_path: Path, tiny_model: SRGAN) -> Path:
    return tiny_model.save_pretrained(tmp_path / "tiny-model")


@pytest.fixture
def niqe_params_file(tmp_path: Path) -> Path:
    """A small synthetic NIQE parameter file (36-d Gaussian, 7x7 window): shapes as the reference's."""
    t = np.arange(7) - 3
    g = np.exp(-0.5 * (t / (7 / 6)) ** 2)
    window = np.outer(g, g) / np.outer(g, g).sum()
    path = tmp_path / "niqe.npz"
    rng = np.random.default_rng(0)
    a = rng.normal(size=(36, 36))
    np.savez(path, mu_pris_param=rng.normal(size=(1, 36)), cov_pris_param=a @ a.T / 36, gaussian_window=window)
    return path
