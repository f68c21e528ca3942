"""srgan.degradation.kernels: blur kernels (sum to 1, the published formulas), filter2d, unsharp_mask."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srgan.degradation import (
    KERNEL_TYPES,
    bivariate_kernel,
    filter2d,
    gaussian_kernel,
    pulse_kernel,
    random_kernel,
    random_sinc_kernel,
    sinc_kernel,
    unsharp_mask,
)
from srgan.errors import ConfigError, InvalidImageError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("family", range(len(KERNEL_TYPES)))
def test_every_family_sums_to_one_and_is_zero_outside_its_size(family: int) -> None:
    probs = [0.0] * len(KERNEL_TYPES)
    probs[family] = 1.0
    k = random_kernel(16, generator=_gen(family), probs=probs, sinc_prob=0.0, kernel_size=(7, 13), pad_to=21)
    assert k.shape == (16, 21, 21)
    assert torch.allclose(k.sum(dim=(1, 2)), torch.ones(16), atol=1e-5)
    assert (k >= 0).all()
    assert torch.count_nonzero(k[:, :4]) == 0 and torch.count_nonzero(k[:, :, -4:]) == 0  # size <= 13 of 21


def test_sinc_kernels_sum_to_one_and_ring() -> None:
    k = random_kernel(8, generator=_gen(0), sinc_prob=1.0)
    assert torch.allclose(k.sum(dim=(1, 2)), torch.ones(8), atol=1e-5)
    assert (k < 0).any()  # negative lobes: ringing
    s = sinc_kernel(21, math.pi / 4)[0]
    assert torch.allclose(s, s.t()) and torch.allclose(s, s.flip(0))
    assert float(s.sum()) == pytest.approx(1.0, abs=1e-6)


def test_isotropic_gaussian_is_the_outer_product_of_the_1d_one() -> None:
    k = bivariate_kernel(13, 2.0)[0]
    g1 = gaussian_kernel(2.0, size=13)
    assert torch.allclose(k, torch.outer(g1, g1), atol=1e-6)


def test_anisotropic_rotation_by_a_quarter_turn_swaps_the_axes() -> None:
    a = bivariate_kernel(15, 3.0, 1.0, math.pi / 2)
    b = bivariate_kernel(15, 1.0, 3.0, 0.0)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, a.transpose(1, 2), atol=1e-3)


def test_generalized_and_plateau_formulas() -> None:
    sx, beta = 2.0, 1.5
    g = bivariate_kernel(9, sx, beta=beta, dtype=torch.float64)[0]
    p = bivariate_kernel(9, sx, beta=beta, plateau=True, dtype=torch.float64)[0]
    q = (1 / sx) ** 2  # at (x, y) = (1, 0)
    assert float(g[4, 5] / g[4, 4]) == pytest.approx(math.exp(-0.5 * q**beta))
    assert float(p[4, 5] / p[4, 4]) == pytest.approx(1 / (1 + q**beta))


def test_random_kernels_are_seeded() -> None:
    a = random_kernel(6, generator=_gen(1))
    assert torch.equal(a, random_kernel(6, generator=_gen(1)))
    assert not torch.equal(a, random_kernel(6, generator=_gen(2)))
    s = random_sinc_kernel(4, generator=_gen(3))
    assert torch.equal(s, random_sinc_kernel(4, generator=_gen(3)))


def test_filter2d_pulse_is_identity_and_constant_images_stay_constant() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(filter2d(x, pulse_kernel(2, size=7)), x)
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(filter2d(flat, random_kernel(2, generator=_gen(0))), flat, atol=1e-5)


def test_filter2d_applies_each_images_own_kernel() -> None:
    x = torch.rand(3, 3, 20, 18)
    k = random_kernel(3, generator=_gen(4), kernel_size=(7, 11), pad_to=11)
    batched = filter2d(x, k)
    for i in range(3):
        assert torch.allclose(batched[i : i + 1], filter2d(x[i : i + 1], k[i]), atol=1e-6)
    # Against a plain reflect-padded convolution (a symmetric kernel: correlation == convolution).
    iso = bivariate_kernel(5, 1.0)[0]
    ref = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), iso.expand(3, 1, 5, 5), groups=3)
    assert torch.allclose(filter2d(x, iso), ref, atol=1e-6)


def test_zero_padding_a_kernel_changes_nothing() -> None:
    x = torch.rand(2, 3, 30, 30)
    small = bivariate_kernel(5, torch.tensor([0.8, 1.5]), torch.tensor([1.2, 0.6]), torch.tensor([0.3, -1.0]))
    padded = F.pad(small, (8, 8, 8, 8))
    assert padded.shape == (2, 21, 21)
    assert torch.allclose(filter2d(x, padded), filter2d(x, small), atol=1e-6)


def test_filter2d_small_images_and_errors() -> None:
    tiny = torch.rand(1, 3, 4, 4)
    assert filter2d(tiny, pulse_kernel(1, size=21)).shape == tiny.shape
    with pytest.raises(InvalidImageError, match="one kernel per image"):
        filter2d(torch.rand(2, 3, 8, 8), pulse_kernel(3, size=3))
    with pytest.raises(ConfigError, match="odd"):
        filter2d(torch.rand(1, 3, 8, 8), torch.ones(1, 4, 4) / 16)
    with pytest.raises(InvalidImageError, match="float"):
        filter2d(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), pulse_kernel(1, size=3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": (8, 21)}, "kernel_size"),
        ({"kernel_size": (7, 23)}, "kernel_size"),
        ({"sigma": (-1.0, 2.0)}, "sigma"),
        ({"probs": (1, 0, 0)}, "probs"),
        ({"sinc_prob": 1.5}, "sinc_prob"),
    ],
)
def test_random_kernel_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        random_kernel(2, generator=_gen(0), **kwargs)  # type: ignore[arg-type]


def test_kernel_parameter_errors() -> None:
    with pytest.raises(ConfigError, match="sigmas"):
        bivariate_kernel(7, 0.0)
    with pytest.raises(ConfigError, match="cutoff"):
        sinc_kernel(7, 4.0)
    with pytest.raises(ConfigError, match="odd"):
        bivariate_kernel(6, 1.0)


def test_unsharp_mask_sharpens_edges_and_leaves_flat_areas() -> None:
    flat = torch.full((1, 3, 24, 24), 0.4)
    assert torch.allclose(unsharp_mask(flat, radius=4), flat)
    edge = torch.zeros(1, 3, 24, 24)
    edge[..., 12:] = 0.6
    edge += 0.2
    sharp = unsharp_mask(edge, radius=4)
    assert float(sharp[..., 13].mean()) > 0.8 + 1e-3  # overshoot on the bright side
    assert float(sharp[..., 10].mean()) < 0.2 - 1e-3  # and undershoot on the dark side
    assert float(sharp.min()) >= 0 and float(sharp.max()) <= 1
    with pytest.raises(ConfigError, match="weight"):
        unsharp_mask(edge, weight=-1)
