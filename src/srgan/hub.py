"""Cache folder, verified downloads, a per-file lock and the offline switch.

Downloaded weights live in ``cache_dir() / "weights"``. :func:`cache_dir` is ``$SRGAN_CACHE_DIR`` when that variable
is set and not empty, else ``platformdirs.user_cache_path("srgan")``. ``SRGAN_OFFLINE=1`` (or ``true``, ``yes``,
``on``) forbids network access: files already in the cache still work, a missing one raises
:class:`~srgan.errors.OfflineModeError`.

A download never leaves a broken file in the cache: it streams into ``<name>.<random>.incomplete`` in the destination
folder, hashes while streaming, checks the length and the sha256, then ``os.replace``-s the file into place. A lock
file ``<name>.lock`` (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows, released by the OS if the process
dies) makes concurrent processes download a file once; the others wait and reuse it.
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
from urllib.parse import unquote, urljoin, urlsplit

import platformdirs
import requests

from ._files import atomic_replace
from .errors import CacheDirError, ChecksumMismatchError, ConfigError, DownloadError, OfflineModeError

__all__ = ["cache_dir", "download", "is_offline", "sha256_file"]

logger = logging.getLogger(__name__)

_CACHE_ENV = "SRGAN_CACHE_DIR"
_OFFLINE_ENV = "SRGAN_OFFLINE"
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
    """
    value = os.environ.get(_CACHE_ENV)
    if value:
        return pathlib.Path(value).expanduser()
    return platformdirs.user_cache_path("srgan")


def is_offline() -> bool:
    """Return whether ``SRGAN_OFFLINE`` is ``1``, ``true``, ``yes`` or ``on`` (any case)."""
    return os.environ.get(_OFFLINE_ENV, "").strip().lower() in _TRUE_VALUES


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
) -> pathlib.Path:
    """Download ``url`` into ``cache_dir() / "weights"`` once and return the cached file's path.

    File name: ``filename`` when given, used as is. Otherwise the last component of the URL path with a tag
    inserted before the extension: the first 8 hex digits of ``sha256`` when given (``srresnet-x4.pt`` with
    sha256 ``1a2b3c4d...`` becomes ``srresnet-x4-1a2b3c4d.pt``), else of the sha256 of the URL (without its
    query string). So two different files published under the same name never share a cache entry.

    A cached file is reused without any request; with ``sha256`` it is verified first, and a mismatching one is
    logged as a warning, deleted and downloaded again.

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

    Returns:
        Path of the verified file in the cache.

    Raises:
        ConfigError: Unsupported URL scheme, malformed ``sha256``, bad ``filename``, ``timeout`` or ``retries``.
        OfflineModeError: ``SRGAN_OFFLINE`` is set and the file is not in the cache.
        CacheDirError: The cache folder cannot be created or written.
        ChecksumMismatchError: The downloaded bytes do not match ``sha256`` (nothing is kept).
        DownloadError: Refused URL or redirect, HTTP error, or still failing after ``retries`` retries.
    """
    expected = _normalize_sha256(sha256)
    _check_url(url, has_sha256=expected is not None)
    if not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, got {retries!r}")
    name = _target_name(url, expected, filename)
    folder = cache_dir() / "weights"
    target = folder / name

    if target.is_file() and (expected is None or sha256_file(target) == expected):
        logger.debug("using cached %s", target)
        return target
    if is_offline():
        state = "is missing" if not target.exists() else "does not match the expected sha256"
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
            if expected is None:
                return target
            got = sha256_file(target)
            if got == expected:
                return target
            logger.warning(
                "cached file %s has sha256 %s, expected %s; deleting it and downloading it again from %s",
                target,
                got,
                expected,
                url,
            )
            try:
                target.unlink()
            except OSError as e:
                raise _cache_dir_error(folder, f"does not allow deleting the corrupt file {target.name}", e) from e
        _remove_stale_incomplete(folder)
        _download_with_retries(url, target, expected=expected, progress=progress, timeout=timeout, retries=retries)
    return target


class _TransientError(DownloadError):
    """A failure worth retrying (HTTP 5xx, short body); never escapes :func:`download` unwrapped."""


_RETRYABLE: tuple[type[Exception], ...] = (
    _TransientError,
    requests.ConnectionError,  # refused / reset connections, and read timeouts while streaming the body
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # body cut short or reset mid-way
)


def _backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 0.5, 1, 2, 4..."""
    return float(_BACKOFF_BASE * 2**attempt)


def _download_with_retries(
    url: str, target: pathlib.Path, *, expected: str | None, progress: bool | None, timeout: float, retries: int
) -> None:
    last: Exception | None = None
    for attempt in range(retries + 1):
        if last is not None:
            delay = _backoff_delay(attempt - 1)
            logger.warning("downloading %s failed (%s); retry %d of %d in %.1f s", url, last, attempt, retries, delay)
            time.sleep(delay)
        try:
            _download_once(url, target, expected=expected, progress=progress, timeout=timeout)
            return
        except requests.exceptions.SSLError as e:  # a ConnectionError, but retrying will not fix a certificate
            raise DownloadError(f"TLS error while downloading {url}: {e}") from e
        except _RETRYABLE as e:
            last = e
    raise DownloadError(
        f"could not download {url} after {retries + 1} attempt(s): {last}. "
        "Check the network connection and the URL, then try again."
    ) from last


def _download_once(
    url: str, target: pathlib.Path, *, expected: str | None, progress: bool | None, timeout: float
) -> None:
    """One attempt: stream into a temporary file next to ``target``, verify it, move it into place."""
    from tqdm import tqdm  # imported here: ``import srgan`` stays light

    with _open(url, timeout=timeout) as response:
        total = _content_length(response)
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
                            digest.update(data)
                            f.write(data)
                            received += len(data)
                            bar.update(len(data))
                        f.flush()
                        os.fsync(f.fileno())
                except requests.RequestException:  # network errors are OSErrors too: let the retry loop see them
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
                stage = "replace"  # atomic_replace renames the file into place when this block ends
        except OSError as e:
            if stage == "create":
                raise _cache_dir_error(target.parent, "is not writable", e) from e
            if stage == "replace":
                raise _cache_dir_error(target.parent, f"does not allow replacing {target.name}", e) from e
            raise
        logger.info("saved %s (%d bytes, sha256 %s)", target, received, got)


def _open(url: str, *, timeout: float) -> requests.Response:
    """GET ``url`` streaming, following safe redirects by hand; return a 200 response (caller closes it)."""
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        response = requests.get(
            current, stream=True, timeout=(timeout, timeout), allow_redirects=False, headers=_HEADERS
        )
        if response.is_redirect:
            location = response.headers["location"]
            response.close()
            following = urljoin(current, location)
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


def _check_url(url: str, *, has_sha256: bool) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"cannot download {url!r}: only https:// URLs are supported, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigError(f"cannot download {url!r}: the URL has no host")
    if scheme == "http" and not has_sha256 and not _is_loopback(parts.hostname):
        raise DownloadError(
            f"refusing to download {url} over plain http without a sha256: the file could be altered in transit. "
            "Use an https:// URL or pass sha256=."
        )


def _check_redirect(source: str, location: str) -> None:
    old, new = urlsplit(source), urlsplit(location)
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
