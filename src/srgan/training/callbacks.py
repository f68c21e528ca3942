"""Hooks into a training run: what scripts used to do by watching the output folder.

A callback is any object with the three methods of :class:`TrainerCallback` (subclass it and override what you
need). The Trainer calls them on rank 0 only, after the event has happened (the file is complete and in place).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import atomic_write

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["TrainerCallback", "KeepExports"]

logger = logging.getLogger(__name__)


class TrainerCallback:
    """Base class of Trainer callbacks; every method does nothing by default."""

    def on_validation(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """After a validation: ``metrics`` holds ``val_psnr`` and ``val_ssim`` (Y channel, border = scale)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After the resumable state was written to ``path`` (``checkpoint.pt``)."""

    def on_export(self, trainer: Trainer, path: Path) -> None:
        """After the generator was exported to ``path`` (``generator.pt``)."""


class KeepExports(TrainerCallback):
    """Keep a copy of every exported generator, named by phase and step: ``FOLDER/gan_0003000.pt``.

    ``generator.pt`` is overwritten at each validation; this keeps its history (e.g. to choose a GAN snapshot by
    eye afterwards). ``keep`` limits how many of the newest copies stay (None: all).
    """

    def __init__(self, folder: str | Path, *, keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be None or >= 1, got {keep}")
        self.folder = Path(folder)
        self.keep = keep

    def on_export(self, trainer: Trainer, path: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        dest = self.folder / f"{trainer.phase}_{trainer.step:07d}.pt"
        with open(path, "rb") as src:
            atomic_write(dest, lambda f: shutil.copyfileobj(src, f))
        logger.info("kept %s", dest)
        if self.keep is not None:
            for old in sorted(self.folder.glob("*_*.pt"), key=lambda p: p.stat().st_mtime)[: -self.keep]:
                old.unlink(missing_ok=True)
