"""Cache folder, verified downloads, a per-file lock and the offline switch.

Downloaded weights live in ``cache_dir() / "weights"``. :func:`cache_dir` is ``$SRGAN_CACHE_DIR`` when that variable
is set and not empty, else ``platformdirs.user_cache_path("srgan")``. ``SRGAN_OFFLINE=1`` (or ``true``, ``yes``,
``on``) forbids network access: files already in the cache still work, a missing one raises
:class:`~srgan.errors.OfflineModeError`.

A download never leaves a broken file in the cache: it streams into ``<name>.<random>.incomplete`` in the destination
folder, hashes while streaming, checks the length, the sha256 and (given a ``verify`` function, as
:meth:`srgan.SRGAN.from_pretrained` passes) that the file loads as a checkpoint, then ``os.replace``-s the file into
place. A cached file that fails these checks later is deleted and downloaded again once. Downloads are capped at
``$SRGAN_MAX_DOWNLOAD_BYTES`` (default 2 GiB). A lock file ``<name>.lock`` (``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows, released by the OS if the process dies) makes concurrent processes download a file
once; the others wait and reuse it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import pathlib
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import platformdirs

from ._files import atomic_replace
from .errors import (
    CacheDirError,
    CheckpointError,
    ChecksumMismatchError,
    ConfigError,
    DownloadError,
    DownloadTooLargeError,
    OfflineModeError,
)

if TYPE_CHECKING:
    import requests

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "cache_dir", "download", "is_offline", "max_download_bytes", "sha256_file"]

logger = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # requests (with urllib3 and charset_normalizer, ~40 ms) is imported by the first download, not by ``import
    # srgan`` or the load of a packaged model (which hashes its file with sha256_file); ``hub.requests`` still works.
    if name == "requests":
        import requests

        return requests
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CACHE_ENV = "SRGAN_CACHE_DIR"
_OFFLINE_ENV = "SRGAN_OFFLINE"
_MAX_BYTES_ENV = "SRGAN_MAX_DOWNLOAD_BYTES"
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3
"""Largest download accepted when neither ``max_bytes`` nor ``$SRGAN_MAX_DOWNLOAD_BYTES`` says otherwise (2 GiB)."""
_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})

_CHUNK_SIZE = 1 << 20  # bytes read / hashed at a time
_MAX_REDIRECTS = 5
_BACKOFF_BASE = 0.5  # seconds before the first retry, doubled for each further one (tests set it to 0)
_LOCK_TIMEOUT = 15 * 60.0  # seconds to wait for another process downloading the same file
_STALE_INCOMPLETE_AGE = 24 * 3600.0  # *.incomplete files older than this (killed downloads) are deleted
# Ask for the bytes as stored: Content-Length then counts the bytes we hash.
_HEADERS = {"Accept-Encoding": "identity"}


def cache_dir() -> pathlib.Path:
    """Return the srgan cache folder (not created here).

    Returns:
        ``$SRGAN_CACHE_DIR`` if set and not empty (``~`` expanded), else ``platformdirs.user_cache_path("srgan")``.

    Raises:
        ConfigError: ``$SRGAN_CACHE_DIR`` cannot be a folder path (``~user`` of an unknown user...).
    """
    value = os.environ.get(_CACHE_ENV)
    if value:
        try:
            return pathlib.Path(value).expanduser()
        except (RuntimeError, ValueError) as e:  # RuntimeError: no home folder for "~" or "~user"
            raise ConfigError(
                f"{_CACHE_ENV}={value!r} is not a usable folder path ({e}); set {_CACHE_ENV} to a folder srgan may "
                "write to, e.g. an absolute path, or unset it to use the default cache folder"
            ) from e
    return platformdirs.user_cache_path("srgan")


def is_offline() -> bool:
    """Return whether ``SRGAN_OFFLINE`` is ``1``, ``true``, ``yes`` or ``on`` (any case)."""
    return os.environ.get(_OFFLINE_ENV, "").strip().lower() in _TRUE_VALUES


def max_download_bytes() -> int:
    """The largest download :func:`download` accepts when not given ``max_bytes``.

    Returns:
        ``$SRGAN_MAX_DOWNLOAD_BYTES`` (a positive number of bytes) when set and not empty, else
        :data:`DEFAULT_MAX_DOWNLOAD_BYTES` (2 GiB).

    Raises:
        ConfigError: the variable is not a positive integer.
    """
    value = os.environ.get(_MAX_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_DOWNLOAD_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(
            f"{_MAX_BYTES_ENV} must be a positive number of bytes, got {value!r}; e.g. {_MAX_BYTES_ENV}=4294967296 "
            f"for 4 GiB, or unset it for the default ({DEFAULT_MAX_DOWNLOAD_BYTES})"
        )
    return limit


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the sha256 of a file as 64 lowercase hex digits, reading it in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    *,
    sha256: str | None = None,
    filename: str | None = None,
    progress: bool | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    verify: Callable[[pathlib.Path], object] | None = None,
    max_bytes: int | None = None,
) -> pathlib.Path:
    """Download ``url`` into ``cache_dir() / "weights"`` once and return the cached file's path.

    File name: ``filename`` when given, used as is. Otherwise the last component of the URL path with a tag
    inserted before the extension: the first 8 hex digits of ``sha256`` when given (``srresnet-x4.pt`` with
    sha256 ``1a2b3c4d...`` becomes ``srresnet-x4-1a2b3c4d.pt``), else of the sha256 of the URL (without its
    query string). So two different files published under the same name never share a cache entry.

    A cached file is reused without any request once it passes the checks (its ``sha256`` when given, ``verify``
    when given); one that fails them is logged as a warning, deleted and downloaded again, once.

    Args:
        url: ``https://`` URL. Plain ``http://`` only to a loopback host (``localhost``, ``127.0.0.1``, ``::1``)
            or together with ``sha256``. Redirects are followed (at most 5) only on the same host, never from
            https to http.
        sha256: Expected sha256 (64 hex digits, any case). Strongly recommended.
        filename: Name of the file in the cache folder (no path separators).
        progress: Show a tqdm progress bar; ``None`` shows one when stderr is a terminal.
        timeout: Seconds to wait for the connection and for each read from the server.
        retries: How many times to retry after a connection error, timeout, short body or HTTP 5xx, waiting
            0.5 s, 1 s, 2 s... in between. HTTP 4xx is never retried.
        verify: Called with the path of the complete download (still a temporary file) before it is moved into
            the cache, and with the cached file before it is reused; it raises
            :class:`~srgan.errors.CheckpointError` when the file is not usable. ``from_pretrained`` passes
            one that loads the checkpoint.
        max_bytes: Largest download accepted, in bytes; ``None``: :func:`max_download_bytes`
            (``$SRGAN_MAX_DOWNLOAD_BYTES``, default 2 GiB).

    Returns:
        Path of the verified file in the cache.

    Raises:
        ConfigError: Malformed URL or unsupported scheme, malformed ``sha256``, bad ``filename``, ``timeout``,
            ``retries`` or ``max_bytes``, unusable ``$SRGAN_CACHE_DIR`` or ``$SRGAN_MAX_DOWNLOAD_BYTES``.
        OfflineModeError: ``SRGAN_OFFLINE`` is set and the file is not in the cache (or fails the checks).
        CacheDirError: The cache folder cannot be created or written.
        ChecksumMismatchError: The downloaded bytes do not match ``sha256`` (nothing is kept).
        CheckpointError: ``verify`` refused the downloaded file (nothing is kept); the message names the URL.
        DownloadTooLargeError: The file is larger than ``max_bytes`` (nothing is kept; not retried).
        DownloadError: Refused URL or redirect, HTTP error, connection failure, or still failing after
            ``retries`` retries.
    """
    expected = _normalize_sha256(sha256)
    _check_url(url, has_sha256=expected is not None)
    if not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, got {retries!r}")
    if max_bytes is None:
        max_bytes = max_download_bytes()
    elif isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ConfigError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
    name = _target_name(url, expected, filename)
    folder = cache_dir() / "weights"
    target = folder / name

    problem = _cached_problem(target, expected, verify) if target.is_file() else None
    if target.is_file() and problem is None:
        logger.debug("using cached %s", target)
        return target
    if is_offline():
        state = "is missing" if problem is None else problem
        raise OfflineModeError(
            f"{_OFFLINE_ENV} is set, so {url} cannot be downloaded and the cached file {target} {state}. "
            f"Download the file elsewhere and place it at {target}, or unset {_OFFLINE_ENV}."
        )

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cache_dir_error(folder, "cannot be created", e) from e
    with _FileLock(folder / f"{name}.lock", timeout=_LOCK_TIMEOUT):
        # Another process may have finished (or broken) the file while we waited for the lock.
        if target.is_file():
            problem = _cached_problem(target, expected, verify)
            if problem is None:
                return target
            logger.warning("cached file %s %s; deleting it and downloading it again from %s", target, problem, url)
            try:
                target.unlink()
            except OSError as e:
                raise _cache_dir_error(folder, f"does not allow deleting the corrupt file {target.name}", e) from e
        _remove_stale_incomplete(folder)
        _download_with_retries(
            url,
            target,
            _Checks(expected=expected, verify=verify, max_bytes=max_bytes),
            progress=progress,
            timeout=timeout,
            retries=retries,
        )
    return target


@dataclass(frozen=True)
class _Checks:
    """What a download must pass before it enters the cache."""

    expected: str | None
    verify: Callable[[pathlib.Path], object] | None
    max_bytes: int


def _cached_problem(
    target: pathlib.Path, expected: str | None, verify: Callable[[pathlib.Path], object] | None
) -> str | None:
    """Why the cached ``target`` cannot be used (for a log line or an error), or None if it passes the checks."""
    if expected is not None:
        got = sha256_file(target)
        if got != expected:
            return f"has sha256 {got}, expected {expected}"
    if verify is not None:
        try:
            verify(target)
        except CheckpointError as e:
            return f"is not a usable checkpoint ({e})"
    return None


class _TransientError(DownloadError):
    """A failure worth retrying (HTTP 5xx, short body); never escapes :func:`download` unwrapped."""


def _retryable() -> tuple[type[Exception], ...]:
    import requests

    return (
        _TransientError,
        requests.ConnectionError,  # refused / reset connections, and read timeouts while streaming the body
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,  # body cut short or reset mid-way
    )


def _backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 0.5, 1, 2, 4..."""
    return float(_BACKOFF_BASE * 2**attempt)


def _download_with_retries(
    url: str, target: pathlib.Path, checks: _Checks, *, progress: bool | None, timeout: float, retries: int
) -> None:
    import requests

    retryable = _retryable()
    last: Exception | None = None
    for attempt in range(retries + 1):
        if last is not None:
            delay = _backoff_delay(attempt - 1)
            logger.warning("downloading %s failed (%s); retry %d of %d in %.1f s", url, last, attempt, retries, delay)
            time.sleep(delay)
        try:
            _download_once(url, target, checks, progress=progress, timeout=timeout)
            return
        except requests.exceptions.SSLError as e:  # a ConnectionError, but retrying will not fix a certificate
            raise DownloadError(f"TLS error while downloading {url}: {e}") from e
        except retryable as e:
            last = e
        except requests.RequestException as e:  # InvalidURL (e.g. from a redirect), TooManyRedirects...: final
            raise DownloadError(f"could not download {url}: {e}. Check the URL, then try again.") from e
    raise DownloadError(
        f"could not download {url} after {retries + 1} attempt(s): {last}. "
        "Check the network connection and the URL, then try again."
    ) from last


def _download_once(url: str, target: pathlib.Path, checks: _Checks, *, progress: bool | None, timeout: float) -> None:
    """One attempt: stream into a temporary file next to ``target``, verify it, move it into place."""
    import requests
    from tqdm import tqdm  # imported here: ``import srgan`` stays light

    expected = checks.expected
    with _open(url, timeout=timeout) as response:
        total = _content_length(response)
        if total is not None and total > checks.max_bytes:
            raise _too_large(url, f"{total} bytes (Content-Length)", checks.max_bytes)
        stage = "create"
        try:
            with atomic_replace(target, suffix=".incomplete", hidden=False) as (f, tmp):
                stage = "write"
                logger.info("downloading %s to %s", url, target)
                digest = hashlib.sha256()
                received = 0
                try:
                    with tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=target.name,
                        disable=not _show_progress(progress),
                    ) as bar:
                        for chunk in response.iter_content(chunk_size=_CHUNK_SIZE):
                            data = chunk.encode() if isinstance(chunk, str) else chunk  # never str: no decode_unicode
                            if received + len(data) > checks.max_bytes:
                                raise _too_large(url, f"more than {checks.max_bytes} bytes", checks.max_bytes)
                            digest.update(data)
                            f.write(data)
                            received += len(data)
                            bar.update(len(data))
                        f.flush()
                        os.fsync(f.fileno())
                except (requests.RequestException, DownloadError):  # OSErrors too, but not the cache folder's
                    raise
                except OSError as e:
                    raise _cache_dir_error(
                        target.parent, f"could not receive {tmp.name} ({received} bytes written)", e
                    ) from e

                if total is not None and received != total:
                    raise _TransientError(f"the server sent {received} bytes of {total} (Content-Length) for {url}")
                got = digest.hexdigest()
                if expected is not None and got != expected:
                    raise ChecksumMismatchError(
                        f"sha256 mismatch for {url}: expected {expected}, got {got}. The download was discarded and "
                        f"nothing was written to {target}. If the file on the server changed on purpose, update the "
                        "expected sha256; otherwise the URL serves a wrong or corrupt file: report it or use another "
                        "mirror."
                    )
                if checks.verify is not None:
                    _verify_download(checks.verify, tmp, url=url, target=target)
                stage = "replace"  # atomic_replace renames the file into place when this block ends
        except OSError as e:
            if stage == "create":
                raise _cache_dir_error(target.parent, "is not writable", e) from e
            if stage == "replace":
                raise _cache_dir_error(target.parent, f"does not allow replacing {target.name}", e) from e
            raise
        logger.info("saved %s (%d bytes, sha256 %s)", target, received, got)


def _verify_download(
    verify: Callable[[pathlib.Path], object], tmp: pathlib.Path, *, url: str, target: pathlib.Path
) -> None:
    """Run ``verify`` on the complete download ``tmp``; its refusal becomes an error naming the URL."""
    try:
        verify(tmp)
    except CheckpointError as e:
        detail = str(e).replace(str(tmp), "the download")
        raise type(e)(
            f"{url} did not serve a usable checkpoint: {detail}. Nothing was saved to {target}; check the URL (the "
            "server may have sent an error or login page), then try again"
        ) from e


def _too_large(url: str, size: str, limit: int) -> DownloadTooLargeError:
    return DownloadTooLargeError(
        f"{url} is larger than the download limit of {limit} bytes ({size}); the download was stopped and "
        f"nothing was cached. If you trust this file, raise the limit with {_MAX_BYTES_ENV}=<bytes> (or "
        "max_bytes= in srgan.hub.download)"
    )


def _open(url: str, *, timeout: float) -> requests.Response:
    """GET ``url`` streaming, following safe redirects by hand; return a 200 response (caller closes it)."""
    import requests

    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            response = requests.get(
                current, stream=True, timeout=(timeout, timeout), allow_redirects=False, headers=_HEADERS
            )
        except requests.RequestException:
            raise
        except ValueError as e:  # requests parses a redirect's Location even when not following it
            raise DownloadError(
                f"could not download {current}: the server answered with a malformed URL ({e}); check the URL"
            ) from e
        if response.is_redirect:
            location = response.headers["location"]
            response.close()
            following = urljoin(current, location)  # parses: requests already did, or raised above
            _check_redirect(current, following)
            logger.debug("%s redirects to %s", current, following)
            current = following
            continue
        status = response.status_code
        if status == 200:
            return response
        response.close()
        via = "" if current == url else f" (redirected from {url})"
        message = f"HTTP {status} {response.reason or ''}".rstrip() + f" for {current}{via}"
        if status >= 500:
            raise _TransientError(message)
        if 400 <= status < 500:
            raise DownloadError(f"{message}; check the URL (the server will not serve it, so there is no retry)")
        raise DownloadError(f"{message}; expected 200 OK")
    raise DownloadError(f"too many redirects (more than {_MAX_REDIRECTS}) starting from {url}")


def _content_length(response: requests.Response) -> int | None:
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None  # the length counts compressed bytes, not the ones we receive
    try:
        length = int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None
    return length if length >= 0 else None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_url(url: str) -> tuple[SplitResult, int | None]:
    """``urlsplit(url)`` and its port; ValueError for a malformed URL (bad IPv6 brackets, port not in 1..65535)."""
    parts = urlsplit(url)
    port = parts.port  # raises ValueError for a port out of range or not a number
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on")
    return parts, port


def _check_url(url: str, *, has_sha256: bool) -> None:
    try:
        parts, _ = _split_url(url)
    except ValueError as e:
        raise ConfigError(
            f"cannot download {url!r}: malformed URL ({e}); check the URL (host, [IPv6] brackets, port 1-65535)"
        ) from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"cannot download {url!r}: only https:// and http:// URLs are supported, got scheme {parts.scheme!r}; "
            "check the URL"
        )
    if not parts.hostname:
        raise ConfigError(f"cannot download {url!r}: the URL has no host; check the URL")
    if scheme == "http" and not has_sha256 and not _is_loopback(parts.hostname):
        raise DownloadError(
            f"refusing to download {url} over plain http without a sha256: the file could be altered in transit. "
            "Use an https:// URL or pass sha256=."
        )


def _check_redirect(source: str, location: str) -> None:
    old = urlsplit(source)
    try:
        new, _ = _split_url(location)
    except ValueError as e:
        raise DownloadError(f"refusing redirect from {source} to the malformed URL {location!r} ({e})") from e
    if new.scheme.lower() not in ("http", "https"):
        raise DownloadError(f"refusing redirect from {source} to {location}: unsupported scheme {new.scheme!r}")
    if old.scheme.lower() == "https" and new.scheme.lower() == "http":
        raise DownloadError(f"refusing redirect from https to plain http: {source} -> {location}")
    if old.hostname != new.hostname:
        raise DownloadError(
            f"refusing redirect from host {old.hostname!r} to host {new.hostname!r} ({source} -> {location}); "
            "use the final URL directly if you trust it"
        )


def _normalize_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ConfigError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return value


def _url_tag(url: str) -> str:
    """8 hex digits identifying a URL without its query string (so signed/tokened URLs share an entry)."""
    parts = urlsplit(url)
    return hashlib.sha256(f"{parts.scheme}://{parts.netloc}{parts.path}".encode()).hexdigest()[:8]


def _target_name(url: str, sha256: str | None, filename: str | None) -> str:
    if filename is not None:
        name = filename
    else:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if not name:
            raise ConfigError(f"cannot derive a file name from {url!r}; pass filename=")
        tag = sha256[:8] if sha256 is not None else _url_tag(url)
        if tag not in name.lower():
            stem, ext = os.path.splitext(name)
            name = f"{stem}-{tag}{ext}"
    if name in ("", ".", "..") or any(c in name for c in "/\\\0") or name.endswith((".lock", ".incomplete")):
        raise ConfigError(
            f"invalid cache file name {name!r} (from {url!r}): it must be a plain file name, without path "
            "separators, not ending in .lock or .incomplete; pass another filename="
        )
    return name


def _cache_dir_error(folder: pathlib.Path, what: str, cause: OSError) -> CacheDirError:
    reason = cause.strerror or str(cause)
    return CacheDirError(
        f"the srgan cache folder {folder} {what}: {reason}. Set {_CACHE_ENV} to a writable folder "
        f"(currently {os.environ.get(_CACHE_ENV) or 'unset'})."
    )


def _remove_stale_incomplete(folder: pathlib.Path) -> None:
    """Delete ``*.incomplete`` files left for a day by killed downloads (fresh ones may belong to a live one)."""
    cutoff = time.time() - _STALE_INCOMPLETE_AGE
    for path in folder.glob("*.incomplete"):
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if path.stat().st_mtime < cutoff:
                path.unlink()
                logger.debug("removed stale %s", path)


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class _FileLock:
    """Exclusive lock on ``path`` for the length of a ``with`` block, across threads and processes.

    The lock file is created if needed and left in place (deleting it would race with a waiting process). The OS
    releases the lock when its holder dies, so a killed download never blocks later ones.
    """

    def __init__(self, path: pathlib.Path, *, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> _FileLock:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise _cache_dir_error(
                self._path.parent, f"does not allow creating the lock file {self._path.name}", e
            ) from e
        deadline = time.monotonic() + self._timeout
        delay = 0.01
        logged = False
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise DownloadError(
                        f"gave up after {self._timeout:.0f} s waiting for {self._path}, held by another process "
                        "downloading the same file; try again once it has finished"
                    )
                if not logged:
                    logger.info("waiting for another process to finish downloading (lock %s)", self._path)
                    logged = True
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _unlock(fd)
            finally:
                os.close(fd)
