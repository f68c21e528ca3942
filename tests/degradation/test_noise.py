"""srgan.degradation.noise: Gaussian and Poisson noise statistics, grey noise, seeding, errors."""

from __future__ import annotations

import math

import pytest
import torch

from srgan.degradation import add_gaussian_noise, add_noise, add_poisson_noise
from srgan.errors import ConfigError, InvalidImageError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_has_the_requested_std_per_image() -> None:
    x = torch.full((3, 3, 64, 64), 0.5)
    sigma = torch.tensor([0.01, 0.03, 0.08])
    noise = add_gaussian_noise(x, sigma, generator=_gen(0)) - x
    std = noise.std(dim=(1, 2, 3))
    assert torch.allclose(std, sigma, rtol=0.05)
    assert torch.allclose(noise.mean(dim=(1, 2, 3)), torch.zeros(3), atol=0.003)


def test_grey_gaussian_noise_is_the_same_in_every_channel() -> None:
    x = torch.full((2, 3, 16, 16), 0.5)
    noise = add_gaussian_noise(x, 0.05, gray=torch.tensor([True, False]), generator=_gen(1)) - x
    assert torch.equal(noise[0, 0], noise[0, 1]) and torch.equal(noise[0, 0], noise[0, 2])
    assert not torch.equal(noise[1, 0], noise[1, 1])


def test_poisson_noise_std_follows_the_signal() -> None:
    level = 128 / 255
    x = torch.full((2, 3, 64, 64), level)
    scale = torch.tensor([1.0, 2.0])
    noise = add_poisson_noise(x, scale, generator=_gen(2), clip=False) - x
    expected = scale * math.sqrt(level / 255)  # scale * sqrt(v / peak)
    assert torch.allclose(noise.std(dim=(1, 2, 3)), expected, rtol=0.06)
    black = torch.zeros(1, 3, 8, 8)
    assert torch.equal(add_poisson_noise(black, 3.0, generator=_gen(2)), black)  # no light, no shot noise
    grey = add_poisson_noise(x[:1], 1.0, gray=True, generator=_gen(3)) - x[:1]
    assert torch.equal(grey[0, 0], grey[0, 2])


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, g: add_gaussian_noise(x, 0.1, generator=g),
        lambda x, g: add_poisson_noise(x, 1.0, generator=g),
        lambda x, g: add_noise(x, generator=g),
    ],
    ids=["gaussian", "poisson", "add_noise"],
)
def test_seeded_clipped_and_shaped(fn) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(2, 3, 12, 10)
    a = fn(x, _gen(5))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, fn(x, _gen(5)))
    assert not torch.equal(a, fn(x, _gen(6)))


def test_add_noise_draws_kind_and_strength_per_image() -> None:
    x = torch.full((8, 3, 32, 32), 0.5)
    out = add_noise(x, generator=_gen(7), gaussian_prob=1.0, sigma=(0.01, 0.1), gray_prob=0.0)
    std = (out - x).std(dim=(1, 2, 3))
    assert float(std.min()) > 0.008 and float(std.max()) < 0.11
    assert float(std.max() - std.min()) > 0.01  # different sigmas per image
    poisson = add_noise(x, generator=_gen(7), gaussian_prob=0.0, poisson_scale=(1.0, 1.0), clip=False)
    assert torch.allclose((poisson - x).std(dim=(1, 2, 3)), torch.full((8,), math.sqrt(0.5 / 255)), rtol=0.1)


def test_zero_sigma_is_no_noise() -> None:
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(add_gaussian_noise(x, 0.0, generator=_gen(0)), x)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x: add_gaussian_noise(x, -0.1), ConfigError, ">= 0"),
        (lambda x: add_gaussian_noise(x, float("nan")), ConfigError, "finite"),
        (lambda x: add_gaussian_noise(x, torch.tensor([0.1, 0.2, 0.3])), ConfigError, "one per image"),
        (lambda x: add_poisson_noise(x, -1.0), ConfigError, ">= 0"),
        (lambda x: add_noise(x, sigma=(0.2, 0.1)), ConfigError, "sigma"),
        (lambda x: add_noise(x, gray_prob=2.0), ConfigError, "gray_prob"),
        (lambda x: add_gaussian_noise(x[0], 0.1), InvalidImageError, "batch"),
        (lambda x: add_poisson_noise((x * 255).byte(), 1.0), InvalidImageError, "float"),
    ],
)
def test_errors(call, error: type[Exception], match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        call(torch.rand(2, 3, 8, 8))
