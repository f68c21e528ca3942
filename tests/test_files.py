"""Atomic writes (srgan._files): no partial file ever, and the permissions of a normally created file (not 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import torch

from srgan._files import atomic_replace, atomic_write, atomic_write_bytes, atomic_write_text, mkstemp
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


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_the_file(tmp_path: Path, umask_027: None) -> None:
    path = tmp_path / "sub" / "out.bin"
    assert atomic_write(path, lambda f: f.write(b"first")) == path  # creates the folder
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    atomic_write_text(tmp_path / "t.json", "{}\n", fsync=True)
    assert (tmp_path / "t.json").read_text() == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _entries(path.parent) == ["out.bin"]


def test_a_failing_writer_leaves_the_target_untouched_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    seen: list[Path] = []

    def writer(f: BinaryIO) -> None:
        f.write(b"partial")
        f.flush()
        seen.extend(p for p in tmp_path.iterdir() if p != path)
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        atomic_write(path, writer, suffix=".partial")
    assert path.read_bytes() == b"old"
    assert len(seen) == 1 and seen[0].name.startswith(".out.bin.") and seen[0].name.endswith(".partial")
    assert _entries(tmp_path) == ["out.bin"]  # the temporary file is gone


def test_a_failing_rename_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dir"
    (target / "inside").mkdir(parents=True)  # os.replace cannot put a file over a non-empty folder
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"data")
    assert _entries(tmp_path) == ["dir"] and _entries(target) == ["inside"]


def test_atomic_replace_lets_writers_use_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    with atomic_replace(path, suffix=".incomplete", hidden=False) as (f, tmp):
        f.close()
        assert tmp.parent == tmp_path and tmp.name.startswith("model.onnx.") and tmp.suffix == ".incomplete"
        tmp.write_bytes(b"by name")
    assert path.read_bytes() == b"by name"
    assert _entries(tmp_path) == ["model.onnx"]
