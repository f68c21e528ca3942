"""What a model argument names: a registered name, a checkpoint file, a folder or an https URL, loaded.

The I/O side of :meth:`srgan.SRGAN.from_pretrained` (and of everything else that accepts a model argument): find
the checkpoint, download it into the cache if needed (:mod:`srgan.hub`), check it, and read it
(:func:`srgan.weights.load_checkpoint`). Building the network from it is the caller's job.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import hub
from . import weights as _weights
from .errors import UnknownModelError
from .weights import Checkpoint, check_architecture, get_entry, load_checkpoint, packaged_path

__all__ = ["CHECKPOINT_NAME", "resolve_checkpoint"]

CHECKPOINT_NAME = "generator.pt"
"""File name of the generator inside a folder written by :meth:`SRGAN.save_pretrained` or the Trainer."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
"""``scheme://``: a URL (:func:`srgan.hub.download` accepts https and http, and refuses the others by name)."""


def resolve_checkpoint(model: str | os.PathLike[str] | None, *, progress: bool | None) -> tuple[Checkpoint, str]:
    """Resolve a model argument to a loaded checkpoint and a description of where it came from.

    Args:
        model: a registered name, a checkpoint file, a folder holding ``generator.pt``, an https URL, or None for
            the default packaged model.
        progress: show a download progress bar (None: only on a terminal).

    Raises:
        UnknownModelError: not a known name, file, folder or URL (the message lists the known names).
        ConfigError: a malformed URL, or a scheme other than https:// and http:// (``ftp://``...).
        CheckpointError, ChecksumMismatchError, DownloadError, OfflineModeError: the file cannot be had or read.
    """
    if model is None:
        if _weights.DEFAULT_MODEL is None:
            raise UnknownModelError("no default weights are packaged with this srgan; pass a checkpoint path")
        model = _weights.DEFAULT_MODEL
    if isinstance(model, str) and _URL.match(model):
        return _download(model, sha256=None, progress=progress), model
    if isinstance(model, str) and model in _weights.REGISTRY:
        entry = get_entry(model)
        if entry.file is not None:
            return load_checkpoint(packaged_path(entry), sha256=entry.sha256), model
        if entry.url is None:
            raise UnknownModelError(f"registered model {model!r} has neither a packaged file nor a URL")
        return _download(entry.url, sha256=entry.sha256, progress=progress), model
    path = Path(model)
    if path.is_dir():
        ckpt = path / CHECKPOINT_NAME
        if not ckpt.is_file():
            raise UnknownModelError(
                f"folder {path} has no {CHECKPOINT_NAME}; expected a folder written by SRGAN.save_pretrained or "
                "srgan-train"
            )
        return load_checkpoint(ckpt), str(path)
    if path.is_file():
        return load_checkpoint(path), str(path)
    get_entry(str(model))  # raises UnknownModelError listing the known names
    raise AssertionError("unreachable")


def _download(url: str, *, sha256: str | None, progress: bool | None) -> Checkpoint:
    """The checkpoint at ``url``, through the cache: a download enters it (and a cached file is reused) only once
    it loads as a checkpoint whose weights match its architecture. It is read once: the check's result is kept."""
    loaded: list[Checkpoint] = []

    def verify(path: Path) -> None:
        checkpoint = load_checkpoint(path)
        check_architecture(checkpoint, source=str(path))
        loaded.append(checkpoint)

    path = hub.download(url, sha256=sha256, progress=progress, verify=verify)
    return loaded[-1] if loaded else load_checkpoint(path)
