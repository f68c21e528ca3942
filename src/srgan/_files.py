"""File-writing helpers shared by the modules that write atomically (temp file + rename)."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_FILE_MODE", "set_default_mode"]

# The process umask, read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

DEFAULT_FILE_MODE = 0o666 & ~_UMASK
"""The permissions ``open(path, "w")`` would give a new file (mkstemp's temporary files are 0600)."""


def set_default_mode(fd: int) -> None:
    """Give the open temporary file ``fd`` the permissions of a normally created file, before it is renamed."""
    if hasattr(os, "fchmod"):  # not on Windows, where mkstemp files are not private anyway
        os.fchmod(fd, DEFAULT_FILE_MODE)
