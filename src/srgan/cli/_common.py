"""What the ``srgan`` subcommands share: input lists, argument types, error lines."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._image import IMAGE_EXTENSIONS

__all__ = ["MODEL_HELP", "describe", "iter_inputs", "positive_int"]

MODEL_HELP = "registered name, checkpoint file, folder or https URL (default: the packaged default model)"


def iter_inputs(inputs: Sequence[str]) -> Iterator[tuple[Path, Path]]:
    """(file, path relative to its root) for every file argument and every image under every folder."""
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                    yield f, f.relative_to(p)
        else:
            yield p, Path(p.name)


def describe(src: Path, error: BaseException) -> str:
    """One line per failed file, always starting with ``srgan: PATH:`` (easy to grep)."""
    return f"srgan: {src}: {error}"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
