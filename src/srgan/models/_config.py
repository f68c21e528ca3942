"""The base of the architecture configs: frozen dataclasses that round-trip through a checkpoint's JSON."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["ArchConfig"]

ConfigT = TypeVar("ConfigT", bound="ArchConfig")


class ArchConfig:
    """Mixin of an architecture's ``@dataclass(frozen=True)`` config: ``to_dict`` and ``from_dict``.

    ``from_dict`` refuses unknown keys (the checkpoint may come from a newer srgan) and converts the values of
    integer fields with ``int`` (JSON and older files may hold floats); other fields are checked by the
    subclass's ``__post_init__`` if it has one.
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        spec = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(spec)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} keys {sorted(unknown)}; expected a subset of {sorted(spec)}. "
                "The checkpoint may come from a newer srgan: upgrade srgan."
            )
        values = {k: int(v) if isinstance(spec[k].default, int) else v for k, v in data.items()}
        return cls(**values)
