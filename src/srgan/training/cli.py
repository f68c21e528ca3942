"""Deprecated location of the ``srgan-train`` command line: it moved to :mod:`srgan.cli.train`."""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["main", "build_parser"]  # noqa: F822 - served by __getattr__ (moved names)


def __getattr__(name: str) -> Any:
    if name in __all__:
        warnings.warn(
            f"srgan.training.cli.{name} moved to srgan.cli.train.{name}; the old path will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        from ..cli import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
