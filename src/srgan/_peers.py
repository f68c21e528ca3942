"""Layout names and helpers for loading other projects' state dicts (compatibility module).

The knowledge lives elsewhere: each architecture is described once in :mod:`srgan.models.registry` (detection,
config from keys and shapes, building), the state-dict helpers in :mod:`srgan._state_dict`, and the single build
path in :func:`srgan.weights.build_generator`. The names below keep working for code that used them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._state_dict import canonical_state_dict as canonical_state_dict
from ._state_dict import describe_state_dict as describe_state_dict
from ._state_dict import load_weights as load_weights
from .errors import ConfigError, IncompatibleCheckpointError
from .models import ModelConfig, SRModel, registry
from .weights import Checkpoint, build_generator, checked_tensors

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
"""The built-in generator layouts (``srgan.models.registry.architectures("generator")`` lists all)."""


def detect_layout(state_dict: Mapping[str, Any]) -> str:
    """The architecture name of a (possibly wrapped) state dict (see :func:`srgan.models.registry.detect`)."""
    return registry.detect(state_dict).name


def peer_config(state_dict: Mapping[str, Any]) -> ModelConfig:
    """The architecture of a peer generator's state dict (possibly wrapped), read from its keys and shapes.

    Raises:
        IncompatibleCheckpointError: not a peer generator layout (also for srgan's own layout: use
            :func:`srgan.weights.infer_config`), or inconsistent keys/shapes.
    """
    state = canonical_state_dict(state_dict)
    arch = registry.detect(state)
    if arch.name == SRGAN_LAYOUT:
        raise IncompatibleCheckpointError(
            f"this is srgan's own Generator layout, not a peer layout; read it with srgan.weights.infer_config "
            f"({describe_state_dict(state)})"
        )
    if not arch.is_generator:
        raise IncompatibleCheckpointError(f"this is a {arch.name!r} state dict, not a generator's")
    config: ModelConfig = arch.config_from_state_dict(state)
    return config


def layout_of(config: ModelConfig) -> str:
    """The architecture name of a config."""
    return registry.for_config(config).name


def config_from_dict(layout: str, data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config stored in an srgan checkpoint with ``"arch": layout``.

    Raises:
        IncompatibleCheckpointError: unknown architecture name (written by a newer srgan).
        ConfigError: unknown or invalid config keys.
    """
    try:
        arch = registry.get(layout)
    except ConfigError as e:
        raise IncompatibleCheckpointError(str(e)) from None
    config: ModelConfig = arch.config_from_dict(data)
    return config


def model_from_config(config: ModelConfig) -> SRModel:
    """A freshly initialised model of the given architecture."""
    model: SRModel = registry.for_config(config).build(config)
    return model


def build_peer_model(state_dict: Mapping[str, Any], *, source: str = "state dict") -> SRModel:
    """The peer model a (possibly wrapped) state dict describes, with its weights, in eval mode, fp32, on CPU.

    Raises:
        IncompatibleCheckpointError: unknown or inconsistent layout (srgan's own layout included: use
            :func:`srgan.weights.load_checkpoint` and :func:`srgan.weights.build_generator` for every layout).
    """
    state = canonical_state_dict(state_dict)
    config = peer_config(state)
    return build_generator(Checkpoint(config, checked_tensors(state, source=source), {}), source=source)
