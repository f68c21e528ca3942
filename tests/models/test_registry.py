"""The architecture registry: every registered architecture keeps its promises, and a new one plugs in everywhere."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from peer_helpers import randomize
from srgan import SRGAN, weights
from srgan._fuse import fold_batchnorm, prepare_for_inference
from srgan._tiling import receptive_radius
from srgan.errors import ConfigError, IncompatibleCheckpointError
from srgan.export import export_torchscript
from srgan.models import (
    ClassicSRGANConfig,
    Discriminator,
    DiscriminatorConfig,
    GeneratorConfig,
    MSRResNetConfig,
    registry,
)
from srgan.models._inplace import InplacePReLU
from srgan.models._onednn import FusedResidualBody
from srgan.models.registry import Architecture

# Small configs keep the tests fast; an architecture missing here is tested with its default config.
SMALL: dict[str, Any] = {
    "srgan": GeneratorConfig(scale=2, num_blocks=2, channels=8),
    "srgan-classic": ClassicSRGANConfig(scale=4, num_blocks=2, channels=8),
    "msrresnet": MSRResNetConfig(scale=3, num_blocks=2, channels=8),
    "discriminator": DiscriminatorConfig(channels=4, pool_size=2, hidden=16),
}
ARCHITECTURES = registry.architectures()


def _config(arch: Architecture[Any, Any]) -> Any:
    return SMALL.get(arch.name) or arch.config_class()


def _input(arch: Architecture[Any, Any]) -> torch.Tensor:
    return torch.rand(2, 3, 32, 32) if arch.kind == "discriminator" else torch.rand(1, 3, 9, 8)


def test_the_built_ins_keep_the_names_checkpoint_files_store() -> None:
    assert [a.name for a in ARCHITECTURES] == ["srgan", "srgan-classic", "msrresnet", "discriminator"]
    assert [a.name for a in registry.architectures("generator")] == ["srgan", "srgan-classic", "msrresnet"]


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.name)
def test_build_detect_and_config_round_trip(arch: Architecture[Any, Any]) -> None:
    config = _config(arch)
    model = arch.build(config)
    assert isinstance(model, arch.model_class) and model.config == config
    assert registry.for_model(model) is arch and registry.for_config(config) is arch and registry.get(arch.name) is arch
    state = model.state_dict()
    for wrapped in (state, {"params_ema": state}, {f"module.{k}": v for k, v in state.items()}):
        assert registry.detect(wrapped) is arch
    assert arch.config_from_state_dict(state) == config
    assert [a.name for a in ARCHITECTURES if a.detect(state)] == [arch.name]  # no other architecture claims it
    stored = json.loads(json.dumps(arch.config_to_dict(config)))  # as a checkpoint or config.json holds it
    assert arch.config_from_dict(stored) == config


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.name)
def test_receptive_radius_and_memory(arch: Architecture[Any, Any]) -> None:
    config = _config(arch)
    if not arch.is_generator:
        assert arch.receptive_radius is None  # not tiled
        with pytest.raises(ConfigError, match="not tiled"):
            receptive_radius(config)
        return
    assert arch.receptive_radius is not None and arch.activation_values_per_pixel is not None
    assert receptive_radius(config) == arch.receptive_radius(config) >= 1
    assert arch.activation_values_per_pixel(config) > 0


def _reach(f: Any, x: torch.Tensor, out_scale: int) -> int:
    """How far (in input pixels) a change of the centre input pixel moves ``f``'s output."""
    c = x.shape[-1] // 2
    y = x.clone()
    y[:, :, c, c] += 0.5
    with torch.no_grad():
        diff = (f(x) - f(y)).abs().amax(dim=(0, 1))
    rows = diff.amax(dim=1).nonzero().flatten()
    return int(max(c - rows.min().item() // out_scale, rows.max().item() // out_scale - c))


@pytest.mark.parametrize("arch", registry.architectures("generator"), ids=lambda a: a.name)
def test_two_stage_split_is_the_forward_with_its_radii(arch: Architecture[Any, Any]) -> None:
    if arch.stages is None:
        assert arch.name == "msrresnet"  # its bilinear skip needs the input in the second stage: runs whole
        return
    config = _config(arch)
    model = randomize(arch.build(config))
    assert isinstance(model, registry.TwoStageModel)
    split = arch.stages(config)
    assert split.features_radius + split.reconstruct_radius >= receptive_radius(config)
    x = torch.rand(1, 3, 2 * receptive_radius(config) + 9, 2 * receptive_radius(config) + 9, dtype=torch.float64)
    model = model.double()
    with torch.no_grad():
        feats = model.features(x)
        assert feats.shape == (1, split.feature_channels, *x.shape[-2:])
        torch.testing.assert_close(model.reconstruct(feats), model(x), atol=1e-12, rtol=0)
        f = torch.rand_like(feats)
    # Each stage's declared radius bounds (and is within a pixel of) how far one input pixel reaches.
    assert split.features_radius - 1 <= _reach(model.features, x, 1) <= split.features_radius
    assert split.reconstruct_radius - 1 <= _reach(model.reconstruct, f, config.scale) <= split.reconstruct_radius


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.name)
def test_fold_batchnorm_keeps_the_eval_output(arch: Architecture[Any, Any]) -> None:
    model = randomize(arch.build(_config(arch)))  # non-trivial BN statistics, eval mode
    folded = fold_batchnorm(model)
    assert type(folded) is type(model) and not folded.training
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    if arch.conv_bn_pairs is not None:
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = _input(arch)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", registry.architectures("generator"), ids=lambda a: a.name)
def test_prepare_for_inference_keeps_the_output_and_the_stages(arch: Architecture[Any, Any]) -> None:
    model = randomize(arch.build(_config(arch)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = prepare_for_inference(model)
    x = _input(arch)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-5, rtol=0)
        if arch.stages is not None:
            torch.testing.assert_close(fast.reconstruct(fast.features(x)), model(x), atol=1e-5, rtol=0)
    if arch.stages is not None:  # srgan's shape: the conv to RGB now runs before a PixelShuffle, on 4 phases at once
        assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)][-1] == 3
        assert [m.out_channels for m in fast.modules() if isinstance(m, nn.Conv2d)][-1] == 12
        assert any(isinstance(m, InplacePReLU) for m in fast.modules())  # the PReLUs after a conv or a shuffle
    if arch.inference_rewrite is not None:  # the CPU path: residual adds fused into the convs (channels_last)
        assert any(isinstance(m, FusedResidualBody) for m in fast.modules())
        fast_cl = fast.to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            torch.testing.assert_close(fast_cl(x_cl), model(x), atol=1e-5, rtol=0)
            if arch.stages is not None:
                torch.testing.assert_close(fast_cl.reconstruct(fast_cl.features(x_cl)), model(x), atol=1e-5, rtol=0)
        assert torch.equal(x_cl, x)  # the input is not overwritten
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # untouched


@pytest.mark.parametrize("arch", registry.architectures("generator"), ids=lambda a: a.name)
def test_generator_checkpoint_round_trip(tmp_path: Path, arch: Architecture[Any, Any]) -> None:
    model = randomize(arch.build(_config(arch)))
    ckpt = weights.load_checkpoint(weights.save_checkpoint(tmp_path / "g.pt", model))
    loaded = weights.build_generator(ckpt)
    x = _input(arch)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_discriminators_are_not_generators(tmp_path: Path) -> None:
    d = Discriminator(channels=4, pool_size=2, hidden=16)
    with pytest.raises(ConfigError, match="expected a generator, got a 'discriminator' model"):
        SRGAN(d)  # type: ignore[arg-type]
    torch.save(d.state_dict(), tmp_path / "d.pth")
    with pytest.raises(IncompatibleCheckpointError, match=r"'discriminator' model .* not a generator"):
        weights.load_checkpoint(tmp_path / "d.pth")
    with pytest.raises(ConfigError, match="cannot be exported"):
        export_torchscript(d, tmp_path / "d.ts")  # type: ignore[arg-type]


def test_lookup_errors_name_what_is_registered() -> None:
    with pytest.raises(ConfigError, match=r"unknown architecture 'swinir' \(this srgan knows srgan, srgan-classic"):
        registry.get("swinir")
    with pytest.raises(ConfigError, match=r"Conv2d is not a model of a registered architecture \(Generator, "):
        registry.for_model(nn.Conv2d(3, 3, 1))
    with pytest.raises(ConfigError, match="Conv2d is not a model of a registered architecture"):
        SRGAN(nn.Conv2d(3, 3, 1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not the config of a registered architecture"):
        registry.for_config({"scale": 4})
    with pytest.raises(ConfigError, match="same name"):
        registry.register(registry.get("srgan"))
    with pytest.raises(ConfigError, match="needs receptive_radius"):
        Architecture(**{**_tiny_fields(), "receptive_radius": None})


# ----------------------------------------------------------------------------- an architecture srgan does not ship
@dataclass(frozen=True)
class TinyConfig:
    scale: int = 4

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TinyConfig:
        return cls(scale=int(data["scale"]))


class TinySR(nn.Module):
    """conv 3x3 -> BN -> PixelShuffle: the smallest super-resolution network. Not an SRModel subclass on purpose:
    any module with ``config`` and ``scale`` of a registered architecture runs."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.tiny_conv = nn.Conv2d(3, 3 * config.scale**2, 3, padding=1)
        self.tiny_bn = nn.BatchNorm2d(3 * config.scale**2)
        self.shuffle = nn.PixelShuffle(config.scale)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.shuffle(self.tiny_bn(self.tiny_conv(x)))
        return out


def _tiny_config(state: Mapping[str, Any]) -> TinyConfig:
    shape = registry.required_shape(state, "tiny_conv.weight", "a TinySR state dict")
    return TinyConfig(scale=math.isqrt(shape[0] // 3))


def _tiny_pairs(model: TinySR) -> Iterator[tuple[nn.Module, str, str]]:
    yield model, "tiny_conv", "tiny_bn"


def _tiny_fields() -> dict[str, Any]:
    return {
        "name": "tiny-test",
        "model_class": TinySR,
        "config_class": TinyConfig,
        "summary": "TinySR: tiny_conv.weight, tiny_bn.weight, ...",
        "detect": lambda state: "tiny_conv.weight" in state,
        "config_from_state_dict": _tiny_config,
        "config_to_dict": TinyConfig.to_dict,
        "config_from_dict": TinyConfig.from_dict,
        "build": TinySR,
        "receptive_radius": lambda config: 1,  # one 3x3 conv at input resolution
        "activation_values_per_pixel": lambda config: 3.0 * 3 * config.scale**2,
        "conv_bn_pairs": _tiny_pairs,
    }


@pytest.fixture
def tiny_arch() -> Iterator[Architecture[TinyConfig, TinySR]]:
    arch = registry.register(Architecture(**_tiny_fields()))
    try:
        yield arch
    finally:
        registry.unregister(arch.name)
    assert "tiny-test" not in [a.name for a in registry.architectures()]


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")
def test_a_new_architecture_loads_tiles_and_exports(
    tmp_path: Path, tiny_arch: Architecture[TinyConfig, TinySR]
) -> None:
    original = randomize(TinySR(TinyConfig(scale=4)))
    assert registry.detect(original.state_dict()) is tiny_arch
    x = torch.rand(1, 3, 19, 14)
    with torch.no_grad():
        expected = original(x).clamp(0, 1)

    torch.save(original.state_dict(), tmp_path / "tiny.pth")  # a plain state dict ...
    weights.save_checkpoint(tmp_path / "tiny.pt", original, meta={"note": "tiny"})  # ... and srgan's format
    raw = torch.load(tmp_path / "tiny.pt", weights_only=True)
    assert raw["arch"] == "tiny-test" and raw["format_version"] == 2 and raw["config"] == {"scale": 4}
    for path in (tmp_path / "tiny.pth", tmp_path / "tiny.pt"):
        model = SRGAN.from_pretrained(path, device="cpu", dtype="fp32")
        assert type(model.generator) is TinySR and model.scale == 4  # type: ignore[comparison-overlap]
        untiled = model.upscale_tensor(x, tile=1000)
        torch.testing.assert_close(untiled, expected, atol=1e-5, rtol=0)  # BatchNorm folded: rounding only
        tiled = model.upscale_tensor(x, tile=5)  # 12 tiles, overlapping by the declared radius
        torch.testing.assert_close(tiled, untiled, atol=1e-6, rtol=0)
    assert SRGAN.from_pretrained(tmp_path / "tiny.pt").meta == {"note": "tiny"}

    scripted = torch.jit.load(str(export_torchscript(model, tmp_path / "tiny.ts")))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x).clamp(0, 1), expected, atol=1e-5, rtol=0)


def test_unknown_layout_message_lists_registered_architectures(
    tmp_path: Path, tiny_arch: Architecture[TinyConfig, TinySR]
) -> None:
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(IncompatibleCheckpointError, match=r"unrecognised checkpoint layout") as info:
        weights.load_checkpoint(tmp_path / "other.pth")
    message = str(info.value)
    assert "'tiny-test' (TinySR: tiny_conv.weight" in message and "'msrresnet' (BasicSR's MSRResNet" in message
    assert "discriminator" not in message  # only what from_pretrained can load
