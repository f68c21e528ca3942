"""Recognise a state dict's layout and build the matching model (srgan's own or a peer architecture).

Known layouts:

* ``"srgan"``: a plain state dict of this library's :class:`~srgan.models.Generator` (``head.0.weight``...).
* ``"srgan-classic"``: :class:`~srgan.models.ClassicSRGANGenerator` (``block1.0.weight``, ``block2.conv1.weight``...).
* ``"msrresnet"``: BasicSR's :class:`~srgan.models.MSRResNet` (``conv_first.weight``, ``body.0.conv1.weight``...),
  also wrapped as ``{"params": ...}`` or ``{"params_ema": ...}`` (the EMA weights win when both are present).

A ``module.`` prefix on every key (left by ``nn.DataParallel``) is removed. The architecture (blocks, channels,
scale, trunk tail) is read from the keys and tensor shapes; anything else raises
:class:`~srgan.errors.IncompatibleCheckpointError` describing what the file holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import torch
from torch import nn

from .errors import ConfigError, IncompatibleCheckpointError
from .models import ModelConfig, SRModel
from .models.generator import Generator, GeneratorConfig
from .models.peers import ClassicSRGANConfig, ClassicSRGANGenerator, MSRResNet, MSRResNetConfig, TrunkTail

__all__ = [
    "SRGAN_LAYOUT",
    "CLASSIC_LAYOUT",
    "MSRRESNET_LAYOUT",
    "LAYOUTS",
    "canonical_state_dict",
    "describe_state_dict",
    "detect_layout",
    "peer_config",
    "layout_of",
    "config_from_dict",
    "model_from_config",
    "load_weights",
    "build_peer_model",
]

SRGAN_LAYOUT: Final = "srgan"
CLASSIC_LAYOUT: Final = "srgan-classic"
MSRRESNET_LAYOUT: Final = "msrresnet"
LAYOUTS: Final = (SRGAN_LAYOUT, CLASSIC_LAYOUT, MSRRESNET_LAYOUT)
"""Layout names, as returned by :func:`detect_layout` and stored as ``"arch"`` in srgan checkpoint files."""

_WRAPPERS = ("params_ema", "params")  # BasicSR release files; EMA weights preferred
_CLASSIC_BLOCK_RE = re.compile(r"^block(\d+)\.conv1\.weight$")
_BODY_RE = re.compile(r"^body\.(\d+)\.conv1\.weight$")


def canonical_state_dict(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict inside ``obj``: unwrapped from ``{"params_ema"|"params": ...}``, without a ``module.`` prefix."""
    for key in _WRAPPERS:
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            obj = inner
            break
    state = dict(obj)
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def describe_state_dict(state_dict: Mapping[str, Any], *, limit: int = 8) -> str:
    """A short description for error messages: entry count, then the first keys with their shapes."""
    items = []
    for k, v in list(state_dict.items())[:limit]:
        items.append(f"{k} {tuple(v.shape)}" if isinstance(v, torch.Tensor) else f"{k} ({type(v).__name__})")
    more = ", ..." if len(state_dict) > limit else ""
    return f"{len(state_dict)} entries: " + ", ".join(items) + more


def _unknown(state: Mapping[str, Any], why: str) -> IncompatibleCheckpointError:
    return IncompatibleCheckpointError(
        f"{why}. The file holds {describe_state_dict(state)}. srgan loads its own checkpoints, plain state dicts "
        "of srgan.models.Generator (head.0.weight, body.0.conv1.weight, ...), the 'srgan-classic' layout "
        "(block1.0.weight, block2.conv1.weight, ...) and BasicSR's MSRResNet (conv_first.weight, "
        "body.0.conv1.weight, ..., optionally under 'params' or 'params_ema'); convert other checkpoints to one "
        "of these"
    )


def detect_layout(state_dict: Mapping[str, Any]) -> str:
    """The layout name of a (possibly wrapped) state dict: one of :data:`LAYOUTS`.

    Raises:
        IncompatibleCheckpointError: no known layout; the message lists the entry count, keys and shapes.
    """
    state = canonical_state_dict(state_dict)
    if "head.0.weight" in state:
        return SRGAN_LAYOUT
    if "block1.0.weight" in state and any(_CLASSIC_BLOCK_RE.match(k) for k in state):
        return CLASSIC_LAYOUT
    if "conv_first.weight" in state and "upconv1.weight" in state and "conv_last.weight" in state:
        return MSRRESNET_LAYOUT
    raise _unknown(state, "unrecognised checkpoint layout")


def _shape(state: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise _unknown(state, f"{what}: no tensor {key!r}")
    return tuple(value.shape)


def _classic_config(state: Mapping[str, Any]) -> ClassicSRGANConfig:
    what = "an 'srgan-classic' state dict"
    shape = _shape(state, "block1.0.weight", what)
    if len(shape) != 4 or shape[1:] != (3, 9, 9):
        raise _unknown(state, f"{what} needs block1.0.weight of shape (C, 3, 9, 9), got {shape}")
    channels = shape[0]
    blocks = sorted(int(m.group(1)) for k in state if (m := _CLASSIC_BLOCK_RE.match(k)))
    if blocks != list(range(2, len(blocks) + 2)):
        raise _unknown(state, f"{what} needs residual blocks block2, block3, ... without gaps, got {blocks}")
    n = len(blocks)
    tail, up = f"block{n + 2}", f"block{n + 3}"
    _shape(state, f"{tail}.0.weight", what)
    trunk_tail: TrunkTail
    if f"{tail}.1.running_mean" in state:
        trunk_tail = "batchnorm"
    elif _shape(state, f"{tail}.1.weight", what) == (1,):
        trunk_tail = "prelu"
    else:
        raise _unknown(state, f"{what} needs {tail}.1 to be a PReLU (weight (1,)) or a BatchNorm2d")
    stages = 0
    while f"{up}.{stages}.conv.weight" in state:
        stages += 1
    final = _shape(state, f"{up}.{stages}.weight", what)
    if stages not in (1, 2, 3) or final[:2] != (3, channels):
        raise _unknown(
            state, f"{what} needs 1 to 3 upsampling stages {up}.i.conv and a final conv {up}.{stages} to RGB"
        )
    return ClassicSRGANConfig(scale=2**stages, num_blocks=n, channels=channels, trunk_tail=trunk_tail)


def _msrresnet_config(state: Mapping[str, Any]) -> MSRResNetConfig:
    what = "a BasicSR MSRResNet state dict"
    first = _shape(state, "conv_first.weight", what)
    last = _shape(state, "conv_last.weight", what)
    if len(first) != 4 or len(last) != 4 or first[1] != 3 or last[0] != 3:
        raise _unknown(
            state,
            f"{what} with {first[1] if len(first) > 1 else '?'} input and {last[0] if last else '?'} output channels: "
            "srgan runs RGB models only (3 in, 3 out)",
        )
    channels = first[0]
    blocks = sorted(int(m.group(1)) for k in state if (m := _BODY_RE.match(k)))
    if not blocks or blocks != list(range(len(blocks))):
        raise _unknown(state, f"{what} needs residual blocks body.0, body.1, ... without gaps, got {blocks}")
    up1 = _shape(state, "upconv1.weight", what)
    if "upconv2.weight" in state:
        scale = 4
    elif up1[0] == channels * 4:
        scale = 2
    elif up1[0] == channels * 9:
        scale = 3
    else:
        raise _unknown(state, f"{what} needs upconv1 with 4 or 9 times conv_first's {channels} channels, got {up1[0]}")
    return MSRResNetConfig(scale=scale, num_blocks=len(blocks), channels=channels)


def peer_config(state_dict: Mapping[str, Any]) -> ClassicSRGANConfig | MSRResNetConfig:
    """The architecture of a peer-layout state dict (possibly wrapped), read from its keys and shapes.

    Raises:
        IncompatibleCheckpointError: not a peer layout (also for srgan's own layout: use
            :func:`srgan.weights.infer_config`), or inconsistent keys/shapes.
    """
    state = canonical_state_dict(state_dict)
    layout = detect_layout(state)
    if layout == CLASSIC_LAYOUT:
        return _classic_config(state)
    if layout == MSRRESNET_LAYOUT:
        return _msrresnet_config(state)
    raise IncompatibleCheckpointError(
        f"this is srgan's own Generator layout, not a peer layout; read it with srgan.weights.infer_config "
        f"({describe_state_dict(state)})"
    )


def layout_of(config: ModelConfig) -> str:
    """The layout name of an architecture config."""
    if isinstance(config, ClassicSRGANConfig):
        return CLASSIC_LAYOUT
    if isinstance(config, MSRResNetConfig):
        return MSRRESNET_LAYOUT
    return SRGAN_LAYOUT


def config_from_dict(layout: str, data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config stored in an srgan checkpoint with ``"arch": layout``.

    Raises:
        IncompatibleCheckpointError: unknown layout name (written by a newer srgan).
        ConfigError: unknown or invalid config keys.
    """
    if layout == SRGAN_LAYOUT:
        return GeneratorConfig.from_dict(data)
    if layout == CLASSIC_LAYOUT:
        return ClassicSRGANConfig.from_dict(data)
    if layout == MSRRESNET_LAYOUT:
        return MSRResNetConfig.from_dict(data)
    raise IncompatibleCheckpointError(
        f"unknown architecture {layout!r} (this srgan knows {', '.join(LAYOUTS)}); it may come from a newer "
        "srgan: upgrade srgan (pip install -U srgan)"
    )


def model_from_config(config: ModelConfig) -> SRModel:
    """A freshly initialised model of the given architecture."""
    if isinstance(config, ClassicSRGANConfig):
        return ClassicSRGANGenerator.from_config(config)
    if isinstance(config, MSRResNetConfig):
        return MSRResNet.from_config(config)
    if isinstance(config, GeneratorConfig):
        return Generator.from_config(config)
    raise ConfigError(f"not a model config: {config!r}")


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str, what: str) -> None:
    """``model.load_state_dict(state_dict)`` after checking every key and shape.

    BatchNorm ``num_batches_tracked`` counters absent from older files are taken from ``model``.

    Raises:
        IncompatibleCheckpointError: missing or unexpected keys, or wrong shapes (the first ten of each listed).
    """
    own = model.state_dict()
    state = {k: v for k, v in own.items() if k.endswith("num_batches_tracked")}
    state.update(state_dict)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = [
        f"{k}: expected {tuple(own[k].shape)}, got {tuple(v.shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if missing or unexpected or bad_shapes:
        raise IncompatibleCheckpointError(
            f"{source} does not match {what}: missing keys {missing[:10]}, "
            f"unexpected keys {unexpected[:10]}, wrong shapes {bad_shapes[:10]}"
        )
    model.load_state_dict(state)


def build_peer_model(state_dict: Mapping[str, Any], *, source: str = "state dict") -> ClassicSRGANGenerator | MSRResNet:
    """The peer model a (possibly wrapped) state dict describes, with its weights, in eval mode, fp32, on CPU.

    Raises:
        IncompatibleCheckpointError: unknown or inconsistent layout (srgan's own layout included: use
            :func:`srgan.weights.load_checkpoint` and :func:`srgan.weights.build_generator` for every layout).
    """
    state = canonical_state_dict(state_dict)
    config = peer_config(state)
    model: ClassicSRGANGenerator | MSRResNet = (
        ClassicSRGANGenerator.from_config(config)
        if isinstance(config, ClassicSRGANConfig)
        else MSRResNet.from_config(config)
    )
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(state):
        bad = next(k for k, v in state.items() if not isinstance(v, torch.Tensor))
        raise IncompatibleCheckpointError(f"{source}: entry {bad!r} is a {type(state[bad]).__name__}, not a tensor")
    load_weights(model, tensors, source=source, what=f"{type(model).__name__}({config})")
    return model.eval()
