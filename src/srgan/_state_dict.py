"""State-dict helpers shared by every architecture: unwrap, describe, load with checked keys and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .errors import IncompatibleCheckpointError

__all__ = ["canonical_state_dict", "check_state_dict", "describe_state_dict", "load_weights"]

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


def _optional(key: str) -> bool:
    """Entries a state dict may lack: BatchNorm ``num_batches_tracked`` counters (absent from older files)."""
    return key.endswith("num_batches_tracked")


def check_state_dict(
    expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, torch.Tensor], *, source: str, what: str
) -> None:
    """Check that ``state_dict`` has exactly the keys of ``expected`` (name -> shape), with those shapes.

    ``expected`` comes from the model ``what`` names (e.g. built on the ``meta`` device, which costs no memory), so
    a checkpoint whose stored config contradicts its weights is refused before a real model is built.

    Raises:
        IncompatibleCheckpointError: missing or unexpected keys, or wrong shapes (the first ten of each listed).
    """
    missing = sorted(k for k in expected if k not in state_dict and not _optional(k))
    unexpected = sorted(k for k in state_dict if k not in expected)
    bad_shapes = [
        f"{k}: expected {expected[k]}, got {tuple(v.shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k])
    ]
    if missing or unexpected or bad_shapes:
        needed = sum(1 for k in expected if not _optional(k))
        raise IncompatibleCheckpointError(
            f"{source} does not match {what}: missing keys {missing[:10]}, "
            f"unexpected keys {unexpected[:10]}, wrong shapes {bad_shapes[:10]}. The file holds {len(state_dict)} "
            f"entries, the model has {needed}: its weights are not those of this architecture (a corrupt file, or a "
            "config that was edited); use the file as srgan saved it"
        )


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str, what: str) -> None:
    """``model.load_state_dict(state_dict)`` after checking every key and shape (:func:`check_state_dict`).

    BatchNorm ``num_batches_tracked`` counters absent from older files are taken from ``model``.

    Raises:
        IncompatibleCheckpointError: missing or unexpected keys, or wrong shapes (the first ten of each listed).
    """
    own = model.state_dict()
    check_state_dict({k: tuple(v.shape) for k, v in own.items()}, state_dict, source=source, what=what)
    state = {k: v for k, v in own.items() if _optional(k)}
    state.update(state_dict)
    model.load_state_dict(state)
