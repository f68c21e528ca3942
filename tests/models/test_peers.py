"""The peer architectures: original parameter names and shapes, and the documented forward math."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from peer_helpers import classic, msrresnet
from srgan._fuse import fold_batchnorm
from srgan._tiling import receptive_radius
from srgan.errors import ConfigError
from srgan.models import ClassicSRGANGenerator, MSRResNet

Tensor = torch.Tensor


# ----------------------------------------------------------------------------- reference forwards (peer-formats.md)
def _conv(sd: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    w = sd[f"{name}.weight"]
    return F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)


def _bn(sd: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    return F.batch_norm(
        x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"], sd[f"{name}.bias"]
    )


def _classic_reference(sd: dict[str, Tensor], x: Tensor, *, blocks: int, stages: int, bn_tail: bool) -> Tensor:
    b1 = F.prelu(_conv(sd, "block1.0", x), sd["block1.1.weight"])
    out = b1
    for k in range(2, blocks + 2):
        r = F.prelu(_bn(sd, f"block{k}.bn1", _conv(sd, f"block{k}.conv1", out)), sd[f"block{k}.prelu.weight"])
        out = out + _bn(sd, f"block{k}.bn2", _conv(sd, f"block{k}.conv2", r))
    t = f"block{blocks + 2}"
    out = _conv(sd, f"{t}.0", out)
    out = _bn(sd, f"{t}.1", out) if bn_tail else F.prelu(out, sd[f"{t}.1.weight"])
    y = b1 + out
    u = f"block{blocks + 3}"
    for i in range(stages):
        y = F.prelu(F.pixel_shuffle(_conv(sd, f"{u}.{i}.conv", y), 2), sd[f"{u}.{i}.prelu.weight"])
    y = _conv(sd, f"{u}.{stages}", y)
    return (torch.tanh(y) + 1) / 2


def _msrresnet_reference(sd: dict[str, Tensor], x: Tensor, *, blocks: int, scale: int) -> Tensor:
    out = F.leaky_relu(_conv(sd, "conv_first", x), 0.1)
    for i in range(blocks):
        out = out + _conv(sd, f"body.{i}.conv2", F.relu(_conv(sd, f"body.{i}.conv1", out)))
    if scale == 4:
        out = F.leaky_relu(F.pixel_shuffle(_conv(sd, "upconv1", out), 2), 0.1)
        out = F.leaky_relu(F.pixel_shuffle(_conv(sd, "upconv2", out), 2), 0.1)
    else:
        out = F.leaky_relu(F.pixel_shuffle(_conv(sd, "upconv1", out), scale), 0.1)
    out = _conv(sd, "conv_last", F.leaky_relu(_conv(sd, "conv_hr", out), 0.1))
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- srgan-classic
def test_classic_default_layout_matches_the_original() -> None:
    m = ClassicSRGANGenerator()
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert sum(p.numel() for p in m.parameters()) == 734_219  # the original x4 generator's reported size
    assert shapes["block1.0.weight"] == (64, 3, 9, 9) and shapes["block1.1.weight"] == (1,)
    assert shapes["block6.conv2.weight"] == (64, 64, 3, 3) and shapes["block6.prelu.weight"] == (1,)
    assert "block6.bn2.num_batches_tracked" in shapes and "block7.conv1.weight" not in shapes
    assert shapes["block7.0.weight"] == (64, 64, 3, 3) and shapes["block7.1.running_var"] == (64,)
    assert shapes["block8.0.conv.weight"] == (256, 64, 3, 3) and shapes["block8.1.prelu.weight"] == (1,)
    assert shapes["block8.2.weight"] == (3, 64, 9, 9)
    prelu_tail = ClassicSRGANGenerator(trunk_tail="prelu").state_dict()
    assert tuple(prelu_tail["block7.1.weight"].shape) == (1,) and "block7.1.running_mean" not in prelu_tail


@pytest.mark.parametrize(("scale", "blocks", "tail"), [(2, 1, "prelu"), (4, 2, "batchnorm"), (8, 3, "batchnorm")])
def test_classic_forward_is_the_documented_math(scale: int, blocks: int, tail: str) -> None:
    m = classic(scale=scale, num_blocks=blocks, trunk_tail=tail)
    x = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        out = m(x)
        ref = _classic_reference(
            m.state_dict(), x, blocks=blocks, stages=int(math.log2(scale)), bn_tail=tail != "prelu"
        )
    assert out.shape == (2, 3, 7 * scale, 5 * scale) and m.scale == scale
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert out.min() >= 0 and out.max() <= 1  # tanh output mapped to [0, 1]


@pytest.mark.parametrize("tail", ["prelu", "batchnorm"])
def test_classic_batchnorm_folds(tail: str) -> None:
    m = classic(trunk_tail=tail)
    folded = fold_batchnorm(m)
    assert type(folded) is ClassicSRGANGenerator
    assert not any(isinstance(k, torch.nn.BatchNorm2d) for k in folded.modules())
    assert any(isinstance(k, torch.nn.BatchNorm2d) for k in m.modules())  # the original is untouched
    x = torch.rand(1, 3, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), m(x), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- MSRResNet
def test_msrresnet_default_layout_matches_basicsr() -> None:
    m = MSRResNet()
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert sum(p.numel() for p in m.parameters()) == 1_517_571  # BasicSR's MSRResNet x4: 1.52 M
    assert shapes["conv_first.weight"] == (64, 3, 3, 3) and shapes["body.15.conv2.weight"] == (64, 64, 3, 3)
    assert shapes["upconv1.weight"] == shapes["upconv2.weight"] == (256, 64, 3, 3)
    assert shapes["conv_hr.weight"] == (64, 64, 3, 3) and shapes["conv_last.weight"] == (3, 64, 3, 3)
    assert not any("bn" in k or "running" in k for k in shapes)
    x3 = MSRResNet(scale=3).state_dict()
    assert tuple(x3["upconv1.weight"].shape) == (576, 64, 3, 3) and "upconv2.weight" not in x3


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_forward_is_the_documented_math(scale: int) -> None:
    m = msrresnet(scale=scale, num_blocks=3)
    x = torch.rand(2, 3, 6, 9)
    with torch.no_grad():
        out = m(x)
        ref = _msrresnet_reference(m.state_dict(), x, blocks=3, scale=scale)
    assert out.shape == (2, 3, 6 * scale, 9 * scale) and m.scale == scale
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


def test_msrresnet_has_nothing_to_fold() -> None:
    m = msrresnet(scale=3)
    folded = fold_batchnorm(m)
    assert folded is not m and not folded.training
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(folded(x), m(x))


# ----------------------------------------------------------------------------- both
@pytest.mark.parametrize(
    "model",
    [
        lambda: classic(scale=2, num_blocks=2),
        lambda: classic(scale=8, num_blocks=1, trunk_tail="prelu"),
        lambda: msrresnet(scale=3, num_blocks=2),
        lambda: msrresnet(scale=4, num_blocks=1),
    ],
    ids=["classic-x2", "classic-x8", "msrresnet-x3", "msrresnet-x4"],
)
def test_receptive_radius_bounds_the_influence_of_a_pixel(model: object) -> None:
    m = model()  # type: ignore[operator]
    r = receptive_radius(m.config)
    size, c = 2 * r + 9, r + 4  # change the centre pixel of the input
    x = torch.rand(1, 3, size, size)
    y = x.clone()
    y[:, :, c, c] += 0.5
    with torch.no_grad():
        diff = (m(x) - m(y)).abs().amax(dim=(0, 1))
    rows = diff.amax(dim=1).nonzero().flatten()
    s = m.scale
    # Only output pixels whose input pixel lies within r of the changed one may change ...
    assert rows.min() >= (c - r) * s and rows.max() < (c + r + 1) * s
    # ... and the bound is not loose by more than one pixel.
    assert rows.min() < (c - r + 2) * s


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError, match="scale"):
        ClassicSRGANGenerator(scale=3)
    with pytest.raises(ConfigError, match="scale"):
        MSRResNet(scale=8)
    with pytest.raises(ConfigError, match="trunk_tail"):
        ClassicSRGANGenerator(trunk_tail="relu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        MSRResNet(num_blocks=0)
    with pytest.raises(TypeError):
        MSRResNet(4)  # type: ignore[misc]  # keyword-only


def test_configs_round_trip_through_dicts() -> None:
    for m in (classic(trunk_tail="prelu"), msrresnet(scale=3)):
        assert type(m.config).from_dict(m.config.to_dict()) == m.config
    with pytest.raises(ConfigError, match="upgrade srgan"):
        MSRResNet().config.from_dict({"scale": 4, "num_feat": 64})
