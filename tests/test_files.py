"""Files written atomically get the permissions of a normally created file, not mkstemp's private 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from srgan._files import DEFAULT_FILE_MODE
from srgan.weights import atomic_torch_save


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_default_mode_follows_the_umask() -> None:
    assert 0o666 & ~_umask() == DEFAULT_FILE_MODE


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_atomic_torch_save_gives_the_default_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    atomic_torch_save({"x": torch.zeros(2)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == DEFAULT_FILE_MODE
    # A plain open() in the same folder gives the same permissions.
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(plain.stat().st_mode) == DEFAULT_FILE_MODE
