"""``srgan models``: list the known weights and the cache folder."""

from __future__ import annotations

import argparse
from typing import Any

from .. import hub
from .. import weights as _weights

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``models`` subcommand to ``sub`` (the parent parser's subparsers)."""
    models = sub.add_parser("models", help="list known weights and the cache folder")
    models.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``srgan models``: always 0."""
    print(f"cache folder: {hub.cache_dir()}")
    entries = _weights.list_models()
    if not entries:
        print("no registered models")
    for e in entries:
        default = " (default)" if e.name == _weights.DEFAULT_MODEL else ""
        where = "packaged" if e.file else e.url
        print(f"{e.name}{default}: x{e.config.scale}, {e.description} [{where}]")
    return 0
