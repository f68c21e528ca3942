"""File-writing helpers shared by the modules that write atomically (temp file + rename)."""

from __future__ import annotations

import os
import secrets

__all__ = ["mkstemp"]

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
