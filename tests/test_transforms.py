"""srgan.transforms.SuperResolution: inside torchvision.transforms.Compose and inside models."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from conftest import make_photo
from srgan import SRGAN, Generator
from srgan.errors import InvalidImageError
from srgan.transforms import SuperResolution


@pytest.fixture
def sr(tiny_model: SRGAN) -> SuperResolution:
    return SuperResolution(tiny_model)


def test_inside_compose_pil_to_tensor(sr: SuperResolution, tiny_model: SRGAN) -> None:
    photo = Image.fromarray(make_photo(12, 10))
    pipeline = transforms.Compose([transforms.ToTensor(), sr, transforms.CenterCrop(16)])
    out = pipeline(photo)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    full = tiny_model.upscale(transforms.functional.to_tensor(photo))
    assert torch.equal(out, transforms.functional.center_crop(full, [16, 16]))


def test_pil_in_pil_out(sr: SuperResolution, tiny_model: SRGAN) -> None:
    photo = Image.fromarray(make_photo(12, 10))
    out = transforms.Compose([sr, transforms.Grayscale()])(photo)
    assert isinstance(out, Image.Image) and out.size == (48, 40) and out.mode == "L"
    assert sr(photo).tobytes() == tiny_model.upscale(photo).tobytes()


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 5, 7)])
def test_inference_path_shapes_and_range(sr: SuperResolution, shape: tuple[int, ...]) -> None:
    x = torch.rand(shape, requires_grad=True)
    out = sr(x)
    assert out.shape == (*shape[:-2], 20, 28)
    assert not out.requires_grad and out.min() >= 0 and out.max() <= 1


def test_inference_path_is_tiled_without_seams(tiny_model: SRGAN) -> None:
    x = torch.rand(1, 3, 24, 20)
    assert torch.equal(SuperResolution(tiny_model, tile=8)(x), SuperResolution(tiny_model)(x))


def test_differentiable_gradients_reach_input_and_weights(tiny_generator: Generator) -> None:
    sr = SuperResolution(tiny_generator, differentiable=True)
    x = torch.rand(2, 3, 6, 5, requires_grad=True)
    pipeline = transforms.Compose([sr, transforms.Resize((12, 10), antialias=True)])
    out = pipeline(x)
    assert out.shape == (2, 3, 12, 10) and out.requires_grad
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (tiny_generator.head[0].weight,))


def test_differentiable_is_the_raw_generator(tiny_generator: Generator) -> None:
    sr = SuperResolution(tiny_generator, differentiable=True)
    x = torch.rand(3, 7, 6)
    with torch.no_grad():
        assert torch.equal(sr(x), tiny_generator(x.unsqueeze(0)).squeeze(0))  # no clamping, no tiling
    with pytest.raises(InvalidImageError, match=r"differentiable=True takes a float tensor .* got shape \(1, 7, 6\)"):
        sr(torch.rand(1, 7, 6))
    with pytest.raises(InvalidImageError, match="uint8"):
        sr(torch.zeros(3, 7, 6, dtype=torch.uint8))


def test_embedded_in_a_model(tiny_generator: Generator) -> None:
    model = nn.Sequential(SuperResolution(tiny_generator, differentiable=True), nn.Conv2d(3, 1, 1))
    assert any(p is tiny_generator.tail.weight for p in model.parameters())
    assert any(k.startswith("0.generator.") for k in model.state_dict())
    model(torch.rand(1, 3, 4, 4)).sum().backward()
    assert tiny_generator.tail.weight.grad is not None
    model.train()
    assert tiny_generator.training
    model.eval()
    assert not tiny_generator.training


def test_inference_path_sees_weights_changed_after_eval(tiny_model: SRGAN) -> None:
    sr = SuperResolution(tiny_model)
    x = torch.rand(1, 3, 6, 6)
    before = sr(x)
    with torch.no_grad():
        tiny_model.generator.tail.bias.add_(0.05)  # e.g. a fine-tuning step through differentiable=True
    sr.eval()
    assert not torch.equal(sr(x), before)


def test_model_from_a_folder_and_repr(tiny_model_dir: Path) -> None:
    sr = SuperResolution(str(tiny_model_dir), tile=16)
    assert sr.scale == 4 and repr(sr) == "SuperResolution(scale=4, differentiable=False, tile=16)"
    assert sr(torch.rand(3, 4, 4)).shape == (3, 16, 16)


def test_rejects_other_inputs(sr: SuperResolution) -> None:
    with pytest.raises(InvalidImageError, match=r"torch\.Tensor or a PIL image"):
        sr(make_photo(4, 4))  # type: ignore[call-overload]


def test_deepcopy_and_pickle(tiny_model: SRGAN) -> None:
    model = nn.Sequential(SuperResolution(tiny_model, tile=8), nn.Identity())
    x = torch.rand(1, 3, 6, 6)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        sr = clone[0]
        assert isinstance(sr, SuperResolution) and sr.tile == 8
        assert sr.generator is not tiny_model.generator and sr.srgan.generator is sr.generator
        assert sr.srgan.dtype == tiny_model.dtype
        assert torch.equal(clone(x), model(x))
