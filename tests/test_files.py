"""Files written atomically get the permissions of a normally created file, not tempfile.mkstemp's private 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from srgan._files import mkstemp
from srgan.weights import atomic_torch_save

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_mkstemp_applies_the_umask_and_never_reuses_a_name(tmp_path: Path, umask_027: None) -> None:
    made = [mkstemp(dir=tmp_path, prefix=".x.", suffix=".tmp") for _ in range(20)]
    for fd, _ in made:
        os.close(fd)
    paths = {p for _, p in made}
    assert len(paths) == 20
    assert all(Path(p).name.startswith(".x.") and p.endswith(".tmp") for p in paths)
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in paths} == {0o640}


def test_atomic_torch_save_gives_the_mode_of_a_plain_file(tmp_path: Path, umask_027: None) -> None:
    path = tmp_path / "state.pt"
    atomic_torch_save({"x": torch.zeros(2)}, path)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o640


def test_mkstemp_in_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        mkstemp(dir=tmp_path / "missing", prefix="a", suffix="b")
