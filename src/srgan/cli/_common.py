"""What the ``srgan`` subcommands share: input lists, argument types, error lines."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._image import IMAGE_EXTENSIONS

__all__ = ["MODEL_HELP", "describe", "iter_inputs", "positive_int"]

MODEL_HELP = "registered name, checkpoint file, folder or https URL (default: the packaged default model)"


def iter_inputs(inputs: Sequence[str]) -> Iterator[tuple[Path, Path]]:
    """(file, path relative to its root) for every file argument and every image under every folder.

    In folders, a symbolic link with an image suffix that leads nowhere (dangling, or a loop) is listed too, so
    that it is reported as a failure rather than skipped in silence; links to folders are not followed.
    """
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in IMAGE_EXTENSIONS and (f.is_file() or (f.is_symlink() and not f.exists())):
                    yield f, f.relative_to(p)
        else:
            yield p, Path(p.name)


def describe(src: Path, error: BaseException) -> str:
    """One line per failed file, ``srgan: PATH: ErrorName: message`` (easy to grep, and names the error)."""
    return f"srgan: {src}: {type(error).__name__}: {error}"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
