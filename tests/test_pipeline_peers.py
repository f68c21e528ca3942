"""SRGAN.from_pretrained(path) on other projects' checkpoints: detected, tiled without seams, saved and reloaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import make_photo
from peer_helpers import classic, msrresnet
from srgan import SRGAN
from srgan.models import ClassicSRGANGenerator, MSRResNet

PEERS: dict[str, Callable[[], nn.Module]] = {
    "classic-x4-bn": lambda: classic(scale=4, num_blocks=2, trunk_tail="batchnorm"),
    "classic-x2-prelu": lambda: classic(scale=2, num_blocks=1, trunk_tail="prelu"),
    "msrresnet-x3": lambda: msrresnet(scale=3, num_blocks=2),
    "msrresnet-x4": lambda: msrresnet(scale=4, num_blocks=1),
}


@pytest.mark.parametrize("name", list(PEERS))
def test_from_pretrained_runs_the_peer_model(tmp_path: Path, name: str) -> None:
    original = PEERS[name]()
    path = tmp_path / "peer.pth"
    torch.save({"params_ema": original.state_dict()} if "msrresnet" in name else original.state_dict(), path)
    model = SRGAN.from_pretrained(path, device="cpu", dtype="fp32")
    assert type(model.generator) is type(original) and model.scale == original.scale  # type: ignore[comparison-overlap]
    x = torch.rand(2, 3, 21, 17)
    with torch.no_grad():
        expected = original(x).clamp(0, 1)
    untiled = model.upscale_tensor(x)
    torch.testing.assert_close(untiled, expected, atol=2e-5, rtol=0)  # BatchNorm folded: float rounding only
    tiled = model.upscale_tensor(x, tile=6)  # 12 tiles; identical where the receptive field is right
    torch.testing.assert_close(tiled, untiled, atol=1e-5, rtol=0)


def test_pil_image_through_a_peer_model(tmp_path: Path) -> None:
    torch.save(msrresnet(scale=3).state_dict(), tmp_path / "m.pth")
    model = SRGAN.from_pretrained(tmp_path / "m.pth", device="cpu", dtype="fp32")
    out = model.upscale(Image.fromarray(make_photo(10, 8)).convert("RGBA"))
    assert out.size == (30, 24) and out.mode == "RGBA"
    assert np.asarray(out)[..., 3].min() == 255


@pytest.mark.parametrize("name", ["classic-x4-bn", "msrresnet-x3"])
def test_save_pretrained_keeps_the_architecture(tmp_path: Path, name: str) -> None:
    original = PEERS[name]()
    torch.save(original.state_dict(), tmp_path / "peer.pth")
    model = SRGAN.from_pretrained(tmp_path / "peer.pth", device="cpu", dtype="fp32")
    folder = model.save_pretrained(tmp_path / "converted")
    again = SRGAN.from_pretrained(folder, device="cpu", dtype="fp32")
    assert isinstance(again.generator, (ClassicSRGANGenerator, MSRResNet))
    assert again.generator.config == original.config  # type: ignore[comparison-overlap]
    x = torch.rand(1, 3, 9, 9)
    assert torch.equal(again.upscale_tensor(x), model.upscale_tensor(x))
