"""Named errors raised by srgan.

Every error derives from :class:`SRGANError` and also from the built-in exception it refines, so callers can catch
either ``srgan.SRGANError`` or the usual ``ValueError`` / ``OSError`` / ``ConnectionError``.
"""

from __future__ import annotations

__all__ = [
    "SRGANError",
    "InvalidImageError",
    "ImageTooLargeError",
    "CheckpointError",
    "ChecksumMismatchError",
    "IncompatibleCheckpointError",
    "UnknownModelError",
    "DownloadError",
    "DownloadTooLargeError",
    "OfflineModeError",
    "CacheDirError",
    "ConfigError",
    "RunExistsError",
    "TrainingDivergedError",
    "DataError",
]


class SRGANError(Exception):
    """Base class of every error raised by srgan."""


class InvalidImageError(SRGANError, ValueError):
    """An input image (file, PIL image, array or tensor) cannot be used: wrong mode, shape, dtype or content."""


class ImageTooLargeError(InvalidImageError):
    """The input or the upscaled output would exceed the allowed number of pixels."""


class CheckpointError(SRGANError, ValueError):
    """A weights file is corrupt, truncated, not a checkpoint, or holds non-finite values."""


class ChecksumMismatchError(CheckpointError):
    """A file's sha256 differs from the expected one (corrupt, truncated or tampered)."""


class IncompatibleCheckpointError(CheckpointError):
    """A checkpoint does not match the architecture, or was written by a newer srgan."""


class UnknownModelError(SRGANError, KeyError):
    """A model name is neither registered, nor an existing path, nor a URL."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DownloadError(SRGANError, ConnectionError):
    """Downloading weights failed (HTTP error, connection reset, short body, timeout, refused redirect)."""


class DownloadTooLargeError(DownloadError):
    """A download is larger than the allowed size (``SRGAN_MAX_DOWNLOAD_BYTES``, or the ``max_bytes`` argument)."""


class OfflineModeError(DownloadError):
    """A download was needed while ``SRGAN_OFFLINE=1`` forbids network access."""


class CacheDirError(SRGANError, OSError):
    """The cache folder cannot be created or written."""


class ConfigError(SRGANError, ValueError):
    """An invalid configuration value (training config, CLI option, tile size...)."""


class RunExistsError(ConfigError):
    """A training output folder already holds a run, and neither resuming nor overwriting it was asked for."""


class TrainingDivergedError(SRGANError, FloatingPointError):
    """A training loss became NaN or infinite."""


class DataError(SRGANError, ValueError):
    """A training or evaluation folder holds no usable image."""
