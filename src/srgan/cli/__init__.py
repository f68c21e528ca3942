"""The command lines: ``srgan`` (``upscale``, ``compare``, ``degrade``, ``export``, ``models``, ``--version``) and
``srgan-eval``.

Each subcommand lives in its own module with an ``add_parser(subparsers)`` and a ``run(args) -> int``;
``srgan-eval`` is :mod:`srgan.cli.eval`. The top layer: nothing else in srgan imports from here.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from .._version import __version__
from . import compare, degrade, export, models, upscale
from ._common import closed_pipe_exits_quietly

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``srgan`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="srgan", description="Photo-realistic single-image super-resolution.")
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (upscale, export, compare, degrade, models):
        command.add_parser(sub)
    return parser


@closed_pipe_exits_quietly
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``srgan`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    code: int = args.func(args)
    return code
