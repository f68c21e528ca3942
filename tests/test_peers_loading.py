"""Loading other projects' checkpoints: layout detection (srgan._peers) and srgan.weights end to end."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from peer_helpers import classic, msrresnet
from srgan import _peers, weights
from srgan.errors import IncompatibleCheckpointError
from srgan.models import ClassicSRGANConfig, ClassicSRGANGenerator, Generator, MSRResNet, MSRResNetConfig

PEERS: dict[str, Callable[[], nn.Module]] = {
    "classic-x4-bn": lambda: classic(scale=4, num_blocks=2, trunk_tail="batchnorm"),
    "classic-x2-prelu": lambda: classic(scale=2, num_blocks=3, trunk_tail="prelu"),
    "classic-x8-bn": lambda: classic(scale=8, num_blocks=1, channels=4),
    "msrresnet-x2": lambda: msrresnet(scale=2, num_blocks=2),
    "msrresnet-x3": lambda: msrresnet(scale=3, num_blocks=1),
    "msrresnet-x4": lambda: msrresnet(scale=4, num_blocks=3, channels=6),
}


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _load(path: Path) -> nn.Module:
    return weights.build_generator(weights.load_checkpoint(path), source=str(path))


@pytest.mark.parametrize("name", list(PEERS))
def test_plain_state_dict_reloads_with_identical_output(tmp_path: Path, name: str) -> None:
    original = PEERS[name]()
    path = _save(original.state_dict(), tmp_path / "peer.pth")  # an OrderedDict, as the projects save it
    loaded = _load(path)
    assert type(loaded) is type(original)
    assert loaded.config == original.config  # type: ignore[union-attr]
    assert not loaded.training
    x = torch.rand(2, 3, 11, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), original(x))


def test_detected_architecture_of_each_layout() -> None:
    assert _peers.detect_layout(Generator(num_blocks=1, channels=4).state_dict()) == "srgan"
    sd = classic(scale=2, num_blocks=3, trunk_tail="prelu").state_dict()
    assert _peers.detect_layout(sd) == "srgan-classic"
    assert _peers.peer_config(sd) == ClassicSRGANConfig(scale=2, num_blocks=3, channels=8, trunk_tail="prelu")
    sd = msrresnet(scale=3, num_blocks=4, channels=6).state_dict()
    assert _peers.detect_layout(sd) == "msrresnet"
    assert _peers.peer_config(sd) == MSRResNetConfig(scale=3, num_blocks=4, channels=6)


@pytest.mark.parametrize("wrapper", ["params", "params_ema"])
def test_basicsr_wrapped_files(tmp_path: Path, wrapper: str) -> None:
    original = msrresnet(scale=4)
    path = _save({wrapper: original.state_dict()}, tmp_path / "net_g.pth")
    loaded = _load(path)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), original(x))


def test_params_ema_wins_over_params(tmp_path: Path) -> None:
    ema, raw = msrresnet(scale=2), msrresnet(scale=2)
    nn.init.zeros_(raw.conv_last.weight)
    path = _save({"params": raw.state_dict(), "params_ema": ema.state_dict()}, tmp_path / "net_g.pth")
    loaded = _load(path)
    assert isinstance(loaded, MSRResNet)
    assert torch.equal(loaded.conv_last.weight, ema.conv_last.weight)


def test_dataparallel_prefix_and_old_files_without_batch_counters(tmp_path: Path) -> None:
    original = classic(scale=4, trunk_tail="prelu")
    state = OrderedDict(
        (f"module.{k}", v) for k, v in original.state_dict().items() if not k.endswith("num_batches_tracked")
    )
    loaded = _load(_save(state, tmp_path / "netG_epoch_4_100.pth"))
    assert isinstance(loaded, ClassicSRGANGenerator)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), original(x))


def test_build_peer_model_directly() -> None:
    original = msrresnet(scale=3)
    model = _peers.build_peer_model({"params": original.state_dict()})
    x = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        assert torch.equal(model(x), original(x))
    with pytest.raises(IncompatibleCheckpointError, match="srgan's own Generator layout"):
        _peers.build_peer_model(Generator(num_blocks=1, channels=4).state_dict())


def test_unknown_layout_lists_what_was_found(tmp_path: Path) -> None:
    state = OrderedDict([("conv.weight", torch.zeros(8, 3, 3, 3)), ("conv.bias", torch.zeros(8))])
    state.update({f"layers.{i}.weight": torch.zeros(8, 8, 1, 1) for i in range(9)})
    with pytest.raises(IncompatibleCheckpointError) as info:
        weights.load_checkpoint(_save(state, tmp_path / "esrgan.pth"))
    message = str(info.value)
    assert "unrecognised checkpoint layout" in message
    assert "11 entries" in message and "conv.weight (8, 3, 3, 3)" in message and "conv.bias (8,)" in message
    assert "layers.5.weight (8, 8, 1, 1), ..." in message and "layers.6" not in message  # first 8 only
    assert "MSRResNet" in message and "srgan-classic" in message  # what would have worked


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda sd: sd.pop("block3.conv1.weight"), r"without gaps, got \[2, 4\]"),
        (lambda sd: sd.pop("block6.2.weight"), r"no tensor 'block6\.2\.weight'"),
        (lambda sd: sd.pop("block2.bn1.running_var"), r"missing keys \['block2\.bn1\.running_var'\]"),
        (
            lambda sd: sd.__setitem__("block2.conv2.weight", torch.zeros(8, 8, 5, 5)),
            r"wrong shapes \['block2\.conv2\.weight: expected \(8, 8, 3, 3\), got \(8, 8, 5, 5\)'\]",
        ),
        (lambda sd: sd.__setitem__("block2.prelu.extra", torch.zeros(1)), r"unexpected keys \['block2\.prelu\.extra'"),
    ],
)
def test_inconsistent_classic_file_names_the_problem(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], match: str
) -> None:
    sd = dict(classic(num_blocks=3).state_dict())
    edit(sd)
    with pytest.raises(IncompatibleCheckpointError, match=match):
        _load(_save(sd, tmp_path / "g.pth"))


def test_grey_msrresnet_is_refused(tmp_path: Path) -> None:
    sd = dict(msrresnet().state_dict())
    sd["conv_first.weight"] = sd["conv_first.weight"][:, :1]
    with pytest.raises(IncompatibleCheckpointError, match=r"1 input and 3 output channels.*RGB"):
        weights.load_checkpoint(_save(sd, tmp_path / "grey.pth"))


def test_msrresnet_with_unknown_upsampling_is_refused() -> None:
    sd = dict(msrresnet(scale=2).state_dict())
    sd["upconv1.weight"] = torch.zeros(8 * 16, 8, 3, 3)
    with pytest.raises(IncompatibleCheckpointError, match="4 or 9 times"):
        _peers.peer_config(sd)


@pytest.mark.parametrize("name", ["classic-x2-prelu", "msrresnet-x3"])
def test_peer_checkpoint_round_trip_with_arch(tmp_path: Path, name: str) -> None:
    original = PEERS[name]()
    path = weights.save_checkpoint(tmp_path / "g.pt", original, meta={"source": "converted"})  # type: ignore[arg-type]
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 2 and raw["arch"] == _peers.layout_of(original.config)  # type: ignore[arg-type]
    ckpt = weights.load_checkpoint(path)
    assert ckpt.config == original.config and ckpt.meta == {"source": "converted"}
    loaded = weights.build_generator(ckpt)
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(loaded(x), original(x))


def test_own_generator_files_stay_version_1(tmp_path: Path) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", Generator(num_blocks=1, channels=4))
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 1 and "arch" not in raw


def test_unknown_arch_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", msrresnet())
    raw = torch.load(path, weights_only=True)
    raw["arch"] = "swinir"
    torch.save(raw, path)
    with pytest.raises(IncompatibleCheckpointError, match=r"unknown architecture 'swinir'.*upgrade srgan"):
        weights.load_checkpoint(path)
