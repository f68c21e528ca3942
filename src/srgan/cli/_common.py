"""What the ``srgan`` subcommands share: input lists, argument types, error lines."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from .._image import IMAGE_EXTENSIONS

__all__ = ["MODEL_HELP", "closed_pipe_exits_quietly", "describe", "iter_inputs", "positive_int"]

_Main = TypeVar("_Main", bound=Callable[..., int])

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


def closed_pipe_exits_quietly(main: _Main) -> _Main:
    """Decorate a console entry point: when the reader of its standard output goes away (``srgan-train --dry-run |
    head``), it exits with status 1 instead of a ``BrokenPipeError`` traceback, and Python's flush of stdout at exit
    does not raise again (stdout is pointed at the null device, as the Python docs recommend for SIGPIPE)."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            code = main(*args, **kwargs)
            sys.stdout.flush()  # a broken pipe surfaces here for output still in the buffer
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return 1
        return code

    return wrapper  # type: ignore[return-value]
