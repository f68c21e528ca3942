"""The base of the architecture configs: frozen dataclasses that round-trip through a checkpoint's JSON."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict, fields
from typing import Any, Final, TypeVar

from ..errors import ConfigError

__all__ = ["MAX_BLOCKS", "MAX_CHANNELS", "ArchConfig", "check_int"]

ConfigT = TypeVar("ConfigT", bound="ArchConfig")

MAX_BLOCKS: Final = 256
"""Most residual blocks a generator config may ask for (the published SR generators use 5 to 32)."""

MAX_CHANNELS: Final = 1024
"""Widest feature width a config may ask for (the published SR generators use 32 to 128)."""


def check_int(
    config: object, name: str, *, low: int = 1, high: int | None = None, allowed: Collection[int] | None = None
) -> None:
    """Raise :class:`ConfigError` unless ``config.<name>`` is an int (not a bool) in ``allowed`` or ``[low, high]``.

    The bounds keep a config read from a file from asking for more memory than any real model needs.
    """
    value = getattr(config, name)
    where = f"{type(config).__name__}.{name}"
    if allowed is not None:
        if type(value) is not int or value not in allowed:
            raise ConfigError(f"{where} must be one of {tuple(allowed)}, got {value!r}")
        return
    if type(value) is not int or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{where} must be an integer {span}, got {value!r}")


class ArchConfig:
    """Mixin of an architecture's ``@dataclass(frozen=True)`` config: ``to_dict`` and ``from_dict``.

    ``from_dict`` refuses unknown keys (the checkpoint may come from a newer srgan) and converts whole-number
    floats (JSON and older files may hold them) to ``int`` for integer fields; other values are checked by the
    subclass's ``__post_init__`` (types and bounds, :func:`check_int`).
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        if not isinstance(data, dict):
            raise ConfigError(f"a {cls.__name__} is read from a dict, got a {type(data).__name__}: {data!r:.80}")
        spec = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(spec)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} keys {sorted(map(str, unknown))}; expected a subset of {sorted(spec)}. "
                "The checkpoint may come from a newer srgan: upgrade srgan."
            )
        values = {k: _whole(v) if isinstance(spec[k].default, int) else v for k, v in data.items()}
        return cls(**values)


def _whole(value: Any) -> Any:
    """A float holding a whole number as an int; anything else unchanged (``__post_init__`` judges it)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
