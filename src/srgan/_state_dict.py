"""State-dict helpers shared by every architecture: unwrap, describe, load with checked keys and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .errors import IncompatibleCheckpointError

__all__ = ["canonical_state_dict", "describe_state_dict", "load_weights"]

_WRAPPERS = ("params_ema", "params")  # BasicSR release files; EMA weights preferred


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
