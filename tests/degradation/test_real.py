"""srgan.degradation.real: RealDegradation (shapes, range, seeding, per-image draws) and its config."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from srgan.degradation import ORDERS, PRESETS, Compose, Degradation, RealDegradation, RealDegradationConfig
from srgan.errors import ConfigError, InvalidImageError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("order", ORDERS)
def test_shape_range_grid_and_seeding(preset: str, order: str) -> None:
    hr = torch.rand(2, 3, 32, 32)
    degrade = RealDegradation(replace(PRESETS[preset], order=order))
    lr = degrade(hr, generator=_gen(0))
    assert lr.shape == (2, 3, 8, 8) and lr.dtype == hr.dtype
    assert float(lr.min()) >= 0 and float(lr.max()) <= 1
    assert torch.equal(torch.round(lr * 255), lr * 255)  # 8-bit
    assert torch.equal(lr, degrade(hr, generator=_gen(0)))
    assert not torch.equal(lr, degrade(hr, generator=_gen(1)))


def test_scale_odd_sizes_and_dtype() -> None:
    hr = torch.rand(1, 3, 35, 33, dtype=torch.float64)
    assert RealDegradation("mild")(hr, generator=_gen(0)).shape == (1, 3, 8, 8)
    lr2 = RealDegradation("mild", scale=2)(hr, generator=_gen(0))
    assert lr2.shape == (1, 3, 17, 16) and lr2.dtype == torch.float64


def test_each_image_draws_its_own_degradation() -> None:
    one = torch.rand(1, 3, 32, 32)
    lr = RealDegradation("real")(one.expand(4, -1, -1, -1).clone(), generator=_gen(2))
    assert all(not torch.equal(lr[0], lr[i]) for i in range(1, 4))


def test_it_degrades() -> None:
    """A smooth image comes out blurred and noisy: far from the clean bicubic LR, never identical."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    hr = torch.stack([x, y, (x + y) / 2])[None].expand(4, -1, -1, -1).contiguous()
    lr = RealDegradation("real")(hr, generator=_gen(3))
    clean = torch.nn.functional.interpolate(hr, size=(16, 16), mode="area")
    assert float((lr - clean).abs().mean()) > 1 / 255


def test_fits_the_degradation_protocol() -> None:
    steps: list[Degradation] = [RealDegradation("mild")]
    out = Compose(steps)(torch.rand(1, 3, 16, 16), generator=_gen(0))
    assert out.shape == (1, 3, 4, 4)
    default = RealDegradation()(torch.rand(1, 3, 16, 16))  # no generator: torch's global one
    assert default.shape == (1, 3, 4, 4)


def test_defaults_are_the_published_x4plus_ranges() -> None:
    c = RealDegradationConfig()
    assert c == PRESETS["real"]
    assert (c.scale, c.kernel_size, c.kernel_size2, c.sinc_prob, c.sinc_prob2) == (4, (7, 21), (7, 21), 0.1, 0.1)
    assert c.kernel_probs == c.kernel_probs2 == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    assert (c.blur_sigma, c.betag_range, c.betap_range) == ((0.2, 3.0), (0.5, 4.0), (1.0, 2.0))
    assert (c.resize_probs, c.resize_range) == ((0.2, 0.7, 0.1), (0.15, 1.5))
    assert (c.gaussian_noise_prob, c.noise_range, c.poisson_scale_range, c.gray_noise_prob) == (
        0.5,
        (1.0, 30.0),
        (0.05, 3.0),
        0.4,
    )
    assert c.jpeg_range == (30, 95) and c.jpeg_range2 == (30, 95)
    assert (c.second_blur_prob, c.blur_sigma2, c.resize_probs2, c.resize_range2) == (
        0.8,
        (0.2, 1.5),
        (0.3, 0.4, 0.3),
        (0.3, 1.2),
    )
    assert (c.noise_range2, c.poisson_scale_range2, c.final_sinc_prob) == ((1.0, 25.0), (0.05, 2.5), 0.8)


def test_mild_is_milder() -> None:
    real, mild = PRESETS["real"], PRESETS["mild"]
    for name in ("blur_sigma", "noise_range", "poisson_scale_range", "blur_sigma2", "noise_range2"):
        assert getattr(mild, name)[1] < getattr(real, name)[1], name
    assert mild.jpeg_range[0] > real.jpeg_range[0] and mild.jpeg_range2[0] > real.jpeg_range2[0]
    assert RealDegradationConfig.mild(order="shuffled").order == "shuffled"


def test_json_round_trip() -> None:
    c = RealDegradationConfig.mild(order="shuffled")
    back = RealDegradationConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c
    with pytest.raises(ConfigError, match="unknown RealDegradationConfig fields"):
        RealDegradationConfig.from_dict({"noise": 1})


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("scale", 0, "scale"),
        ("kernel_size", (6, 21), "kernel_size"),
        ("kernel_probs", (1.0, 0.0), "kernel_probs"),
        ("sinc_prob", -0.1, "sinc_prob"),
        ("blur_sigma", (-1.0, 3.0), "blur_sigma"),
        ("resize_range", (1.1, 1.5), "resize_range"),
        ("noise_range", (1.0, 300.0), "noise_range"),
        ("poisson_scale_range", (3.0, 0.05), "poisson_scale_range"),
        ("jpeg_range", (0, 95), "jpeg_range"),
        ("jpeg_range2", (30.5, 95), "jpeg_range2"),
        ("second_blur_prob", 1.5, "second_blur_prob"),
        ("resize_modes", ("nearest",), "resize_modes"),
        ("order", "random", "order"),
    ],
)
def test_validation_names_the_field(field: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RealDegradationConfig(**{field: value})  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    degrade = RealDegradation("mild")
    with pytest.raises(InvalidImageError, match="at least 4x4"):
        degrade(torch.rand(1, 3, 3, 8))
    with pytest.raises(InvalidImageError, match="3 channels"):
        degrade(torch.rand(1, 1, 16, 16))
    with pytest.raises(InvalidImageError, match="float"):
        degrade(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(InvalidImageError, match="batch"):
        degrade(torch.rand(3, 16, 16))
    with pytest.raises(ConfigError, match="unknown degradation preset"):
        RealDegradation("heavy")
