import pytest
import torch

from srgan.errors import ConfigError
from srgan.models import Generator, GeneratorConfig


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_shape_for_every_scale(scale: int) -> None:
    g = Generator(scale=scale, num_blocks=2, channels=8).eval()
    out = g(torch.rand(2, 3, 7, 9))
    assert out.shape == (2, 3, 7 * scale, 9 * scale)
    assert g.scale == scale


def test_default_parameter_count_matches_paper() -> None:
    n = sum(p.numel() for p in Generator().parameters())
    assert 1_540_000 < n < 1_560_000  # paper's SRResNet: ~1.55 M


def test_structure_follows_paper() -> None:
    g = Generator()
    assert len(g.body) == 16
    assert len(g.upsample) == 2
    assert g.head[0].kernel_size == (9, 9)
    assert g.tail.kernel_size == (9, 9) and g.tail.out_channels == 3
    assert isinstance(g.body[0].bn1, torch.nn.BatchNorm2d) and isinstance(g.body[0].act, torch.nn.PReLU)


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError, match="scale"):
        Generator(scale=3)
    with pytest.raises(ConfigError):
        Generator(num_blocks=0)
    with pytest.raises(TypeError):
        Generator(4)  # type: ignore[misc]  # keyword-only


def test_output_not_clamped_in_training_mode() -> None:
    g = Generator(num_blocks=1, channels=4)
    with torch.no_grad():
        g.tail.bias.fill_(5.0)
    assert g(torch.rand(1, 3, 4, 4)).max() > 1.0


def test_config_round_trip_and_unknown_keys() -> None:
    cfg = GeneratorConfig(scale=2, num_blocks=3, channels=16)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert Generator.from_config(cfg).config == cfg
    with pytest.raises(ConfigError, match="upgrade"):
        GeneratorConfig.from_dict({"scale": 4, "attention": 1})


def test_residual_init_scale_shrinks_branches() -> None:
    torch.manual_seed(0)
    a = Generator(num_blocks=2, channels=8)
    torch.manual_seed(0)
    b = Generator(num_blocks=2, channels=8)
    torch.manual_seed(0)
    b.reset_parameters(residual_init_scale=1.0)
    torch.manual_seed(0)
    a.reset_parameters(residual_init_scale=0.1)
    ratio = float(a.body[0].conv2.weight.norm() / b.body[0].conv2.weight.norm())
    assert ratio == pytest.approx(0.1, rel=1e-5)
