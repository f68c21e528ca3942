"""Atomic file writes: every file srgan writes goes to a temporary name beside its destination, then is renamed
into place, so a crash, a full disk or an error never leaves a partial file (and an existing file stays intact).

:func:`atomic_replace` is the one place that creates, renames and cleans up the temporary file;
:func:`atomic_write`, :func:`atomic_write_bytes` and :func:`atomic_write_text` are its everyday forms.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_replace", "atomic_write", "atomic_write_bytes", "atomic_write_text", "mkstemp"]

_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def mkstemp(*, dir: os.PathLike[str] | str, prefix: str, suffix: str) -> tuple[int, str]:
    """Create a new file ``dir/prefix<random>suffix`` and return ``(fd, path)``, like ``tempfile.mkstemp``.

    Unlike ``tempfile.mkstemp`` (always 0600), the file gets the permissions a plain ``open(path, "w")`` would give
    it: 0666 less the process umask, applied by the OS. Atomic writes rename this file into place, so what users
    get must not be private to the writing user.

    Raises:
        OSError: the folder is missing or not writable.
    """
    for _ in range(100):
        path = os.path.join(os.fspath(dir), f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, _FLAGS, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name like {prefix}*{suffix} in {dir}")


@contextlib.contextmanager
def atomic_replace(
    path: str | os.PathLike[str], *, suffix: str = ".tmp", hidden: bool = True, fsync: bool = False
) -> Iterator[tuple[BinaryIO, Path]]:
    """Write a file atomically: yields ``(file, tmp)``, a new binary file open for writing and its path, in
    ``path``'s folder; when the block ends normally the file is closed (after ``fsync`` if asked) and renamed to
    ``path`` with :func:`os.replace`.

    The temporary file is named ``.<name>.<random><suffix>`` (``<name>.<random><suffix>`` with ``hidden=False``)
    and created with :func:`mkstemp` (the permissions of a plain ``open(path, "w")``). It is removed whatever
    happens, so an error in the block, or in the rename, leaves ``path`` as it was. The block may close ``file``
    and write ``tmp`` by name instead (for writers that only take a file name). The folder must exist.

    Raises:
        OSError: the temporary file cannot be created or written, or the rename fails.
    """
    path = Path(path)
    prefix = f".{path.name}." if hidden else f"{path.name}."
    fd, name = mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    tmp = Path(name)
    try:
        try:
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f, tmp
            if fsync and not f.closed:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def atomic_write(
    path: str | os.PathLike[str],
    writer: Callable[[BinaryIO], object],
    *,
    suffix: str = ".tmp",
    fsync: bool = False,
) -> Path:
    """``writer(file)`` writes ``path``'s content into a binary file; it then replaces ``path`` atomically.

    The folder is created if needed. On any error (raised by ``writer`` or by the file system) the temporary file
    is removed and an existing ``path`` is left unchanged. ``fsync=True`` flushes the data to the disk before the
    rename (for files that must survive a power cut, like checkpoints). Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_replace(path, suffix=suffix, fsync=fsync) as (f, _):
        writer(f)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> Path:
    """Replace ``path``'s content by ``data`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data), fsync=fsync)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", fsync: bool = False) -> Path:
    """Replace ``path``'s content by ``text`` atomically (see :func:`atomic_write`); newlines are written as given."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)
