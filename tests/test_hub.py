"""Tests for srgan.hub against a local HTTP server on 127.0.0.1 started by each test."""

from __future__ import annotations

import collections
import hashlib
import io
import logging
import os
import pathlib
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import platformdirs
import pytest
import requests

from srgan import SRGAN, hub, weights
from srgan.errors import (
    CacheDirError,
    CheckpointError,
    ChecksumMismatchError,
    ConfigError,
    DownloadError,
    DownloadTooLargeError,
    OfflineModeError,
)
from srgan.models import Generator

BODY = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(BODY).hexdigest()


@dataclass
class Reply:
    """What the server answers to one request."""

    status: int = 200
    body: bytes = BODY
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # declared length; default len(body)
    send: int | None = None  # bytes of the body actually sent; default all
    then: str = "close"  # after sending: "close" (FIN), "reset" (RST) or "stall" (until teardown)
    delay: float = 0.0  # seconds before the status line


class Server:
    """Replies per path: the n-th request to a path gets replies[n] (the last one repeats); counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.release = threading.Event()  # set at teardown: ends stalls
        self.port = 0

    def route(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies) or [Reply()]
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _HTTPServer(ThreadingHTTPServer):
    state: Server


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            n = state.hits[path]
            state.hits[path] += 1
        replies = state.routes.get(path, [Reply(status=404, body=b"not found")])
        reply = replies[min(n, len(replies) - 1)]
        state.release.wait(reply.delay)
        try:
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            length = len(reply.body) if reply.content_length is None else reply.content_length
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(reply.body if reply.send is None else reply.body[: reply.send])
            self.wfile.flush()
            if reply.then == "stall":
                state.release.wait(30)
            elif reply.then == "reset":
                time.sleep(0.1)  # let the client start reading the body
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A fresh cache folder per test, online, no backoff waits."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(folder))
    monkeypatch.delenv("SRGAN_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_BACKOFF_BASE", 0.0)
    return folder


def leftovers(cache: pathlib.Path) -> list[str]:
    """Files in the weights folder other than lock files."""
    folder = cache / "weights"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


# --- cache folder, offline switch, hashing -------------------------------------------------------------------------


def test_cache_dir_from_env_and_default(cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub.cache_dir() == cache
    assert not cache.exists()  # not created by asking
    monkeypatch.delenv("SRGAN_CACHE_DIR")
    assert hub.cache_dir() == platformdirs.user_cache_path("srgan")
    monkeypatch.setenv("SRGAN_CACHE_DIR", "")
    assert hub.cache_dir() == platformdirs.user_cache_path("srgan")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("On", True), ("0", False), ("no", False), ("", False)],
)
def test_is_offline(value: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRGAN_OFFLINE", value)
    assert hub.is_offline() is expected


def test_is_offline_unset() -> None:
    assert hub.is_offline() is False


def test_sha256_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert hub.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big"
    big.write_bytes(BODY * 30)  # several chunks
    assert hub.sha256_file(str(big)) == hashlib.sha256(BODY * 30).hexdigest()


# --- success, cache reuse, names -----------------------------------------------------------------------------------


def test_download_then_reuse_without_request(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/models/srresnet-x4.pt")
    path = hub.download(url, sha256=SHA.upper(), progress=False)
    assert path == cache / "weights" / f"srresnet-x4-{SHA[:8]}.pt"
    assert path.read_bytes() == BODY
    assert server.hits["/models/srresnet-x4.pt"] == 1
    assert hub.download(url, sha256=SHA, progress=False) == path
    assert server.hits["/models/srresnet-x4.pt"] == 1
    assert leftovers(cache) == [path.name]


def test_download_without_sha_uses_url_name_and_reuses(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt")
    path = hub.download(url + "?token=1", progress=False)
    assert path == cache / "weights" / f"w-{hub._url_tag(url)}.pt"
    assert hub.download(url, progress=False) == path
    other = server.route("/other/w.pt")
    assert hub.download(other, progress=False) != path  # same file name on another path: its own entry
    assert server.hits["/w.pt"] == 1


def test_file_name_rules(server: Server, cache: pathlib.Path) -> None:
    url = server.route(f"/w-{SHA[:8]}.pt")
    assert hub.download(url, sha256=SHA, progress=False).name == f"w-{SHA[:8]}.pt"  # not added twice
    assert hub.download(url, sha256=SHA, filename="mine.bin", progress=False) == cache / "weights" / "mine.bin"
    with pytest.raises(ConfigError, match="filename"):
        hub.download(server.url("/dir/"), progress=False)
    for bad in ("../evil.pt", "a/b.pt", "..", "x.lock"):
        with pytest.raises(ConfigError, match="file name"):
            hub.download(url, filename=bad, progress=False)
    with pytest.raises(ConfigError, match="sha256"):
        hub.download(url, sha256="abc", progress=False)


def test_progress_bar_only_when_asked(
    server: Server, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="srgan.hub")
    hub.download(server.route("/a.pt"), progress=False)
    assert capsys.readouterr().err == ""
    assert any("downloading" in r.getMessage() for r in caplog.records)
    hub.download(server.route("/b.pt"), progress=True)
    err = capsys.readouterr().err
    assert "b-" in err and "100%" in err


# --- failures ------------------------------------------------------------------------------------------------------


def test_bad_checksum_leaves_nothing(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt", Reply(body=b"tampered" + BODY))
    with pytest.raises(ChecksumMismatchError) as info:
        hub.download(url, sha256=SHA, progress=False)
    message = str(info.value)
    assert SHA in message and hashlib.sha256(b"tampered" + BODY).hexdigest() in message and url in message
    assert isinstance(info.value, ValueError)
    assert leftovers(cache) == []  # neither the file nor an .incomplete
    assert server.hits["/w.pt"] == 1  # a wrong file is not retried


def test_server_error_is_retried_with_backoff(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/w.pt", Reply(status=500, body=b"oops"), Reply(status=503, body=b""), Reply())
    monkeypatch.setattr(hub, "_BACKOFF_BASE", 0.5)
    waits: list[float] = []
    monkeypatch.setattr(hub.time, "sleep", waits.append)
    path = hub.download(url, sha256=SHA, progress=False)
    assert path.read_bytes() == BODY
    assert server.hits["/w.pt"] == 3
    assert waits == [0.5, 1.0]
    assert sum("retry" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 2


def test_server_errors_exhaust_retries(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt", Reply(status=500, body=b"oops"))
    with pytest.raises(DownloadError, match="3 attempt") as info:
        hub.download(url, sha256=SHA, retries=2, progress=False)
    assert "500" in str(info.value.__cause__)
    assert server.hits["/w.pt"] == 3
    assert leftovers(cache) == []


@pytest.mark.parametrize("status", [403, 404])
def test_client_errors_are_not_retried(server: Server, cache: pathlib.Path, status: int) -> None:
    url = server.route("/missing.pt", Reply(status=status, body=b"no"))
    with pytest.raises(DownloadError) as info:
        hub.download(url, progress=False)
    assert str(status) in str(info.value) and url in str(info.value) and "check the URL" in str(info.value)
    assert server.hits["/missing.pt"] == 1
    assert leftovers(cache) == []


def test_short_body_is_retried(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt", Reply(content_length=len(BODY) + 1000), Reply())
    assert hub.download(url, sha256=SHA, progress=False).read_bytes() == BODY
    assert server.hits["/w.pt"] == 2
    assert leftovers(cache) == [f"w-{SHA[:8]}.pt"]


def test_always_short_body_fails(server: Server, cache: pathlib.Path) -> None:
    # No sha256 to catch it: only the length check can.
    url = server.route("/w.pt", Reply(content_length=len(BODY) + 1000))
    with pytest.raises(DownloadError, match="2 attempt"):
        hub.download(url, retries=1, progress=False)
    assert server.hits["/w.pt"] == 2
    assert leftovers(cache) == []


def test_connection_reset_mid_body_is_retried(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt", Reply(send=len(BODY) // 2, then="reset"), Reply())
    assert hub.download(url, sha256=SHA, progress=False).read_bytes() == BODY
    assert server.hits["/w.pt"] == 2
    assert leftovers(cache) == [f"w-{SHA[:8]}.pt"]


@pytest.mark.parametrize("where", ["before headers", "mid body"])
def test_stalled_server_times_out(server: Server, cache: pathlib.Path, where: str) -> None:
    reply = Reply(delay=30) if where == "before headers" else Reply(send=1000, then="stall")
    url = server.route("/w.pt", reply)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="1 attempt"):
        hub.download(url, sha256=SHA, timeout=0.5, retries=0, progress=False)
    assert time.monotonic() - start < 5
    assert leftovers(cache) == []


# --- redirects and URL policy --------------------------------------------------------------------------------------


def test_same_host_redirect_is_followed(server: Server) -> None:
    server.route("/w.pt")
    url = server.route("/old.pt", Reply(status=302, body=b"", headers={"Location": "/w.pt"}))
    path = hub.download(url, sha256=SHA, progress=False)
    assert path.read_bytes() == BODY and path.name == f"old-{SHA[:8]}.pt"
    assert server.hits["/old.pt"] == 1 and server.hits["/w.pt"] == 1


def test_redirect_to_another_host_is_refused(server: Server, cache: pathlib.Path) -> None:
    server.route("/w.pt")
    elsewhere = server.url("/w.pt", host="localhost")  # same server, but another host name
    url = server.route("/old.pt", Reply(status=302, body=b"", headers={"Location": elsewhere}))
    with pytest.raises(DownloadError, match="localhost"):
        hub.download(url, sha256=SHA, progress=False)
    assert server.hits["/old.pt"] == 1  # not retried
    assert server.hits["/w.pt"] == 0
    assert leftovers(cache) == []


def test_redirect_loop_is_cut(server: Server) -> None:
    url = server.route("/loop.pt", Reply(status=301, body=b"", headers={"Location": "/loop.pt"}))
    with pytest.raises(DownloadError, match="too many redirects"):
        hub.download(url, progress=False)
    assert server.hits["/loop.pt"] == 6


@pytest.mark.parametrize(
    ("source", "location", "allowed"),
    [
        ("https://a.org/x", "https://a.org/y", True),
        ("http://a.org/x", "https://a.org/y", True),
        ("https://a.org/x", "http://a.org/y", False),
        ("https://a.org/x", "https://b.org/x", False),
        ("https://a.org/x", "ftp://a.org/x", False),
    ],
)
def test_redirect_policy(source: str, location: str, allowed: bool) -> None:
    if allowed:
        hub._check_redirect(source, location)
    else:
        with pytest.raises(DownloadError, match="refusing redirect"):
            hub._check_redirect(source, location)


def test_plain_http_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_get(url: str, **kwargs: Any) -> requests.Response:
        calls.append((url, kwargs))
        raise requests.ConnectionError("no network in tests")

    monkeypatch.setattr(hub.requests, "get", fake_get)
    with pytest.raises(DownloadError, match="plain http"):
        hub.download("http://example.com/w.pt", progress=False)
    with pytest.raises(ConfigError, match="scheme"):
        hub.download("ftp://example.com/w.pt", sha256=SHA, progress=False)
    assert calls == []
    # With a sha256 the transfer cannot be altered unnoticed, so plain http is allowed.
    with pytest.raises(DownloadError, match="no network in tests"):
        hub.download("http://example.com/w.pt", sha256=SHA, retries=0, timeout=2.0, progress=False)
    assert [url for url, _ in calls] == ["http://example.com/w.pt"]
    kwargs = calls[0][1]
    assert kwargs["stream"] is True and kwargs["allow_redirects"] is False and kwargs["timeout"] == (2.0, 2.0)


def test_redirect_from_https_to_plain_http_is_refused_before_fetching(
    cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_get(url: str, **kwargs: Any) -> requests.Response:  # an https server we cannot start locally
        calls.append(url)
        response = requests.Response()
        response.status_code, response.url, response.raw = 302, url, io.BytesIO(b"")
        response.headers["Location"] = "http://example.com/w.pt"
        return response

    monkeypatch.setattr(hub.requests, "get", fake_get)
    with pytest.raises(DownloadError, match="from https to plain http"):
        hub.download("https://example.com/w.pt", sha256=SHA, progress=False)
    assert calls == ["https://example.com/w.pt"]  # neither followed nor retried
    assert leftovers(cache) == []


# --- offline mode, corrupt cache, cache folder problems ------------------------------------------------------------


def test_offline_with_missing_file(server: Server, cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRGAN_OFFLINE", "1")
    url = server.route("/w.pt")
    with pytest.raises(OfflineModeError) as info:
        hub.download(url, sha256=SHA, progress=False)
    message = str(info.value)
    target = cache / "weights" / f"w-{SHA[:8]}.pt"
    assert "SRGAN_OFFLINE" in message and url in message and str(target) in message
    assert server.hits["/w.pt"] == 0
    # Placing the file where the message says makes it work offline.
    target.parent.mkdir(parents=True)
    target.write_bytes(BODY)
    assert hub.download(url, sha256=SHA, progress=False) == target
    assert server.hits["/w.pt"] == 0


def test_offline_with_cached_file(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.route("/w.pt")
    path = hub.download(url, sha256=SHA, progress=False)
    monkeypatch.setenv("SRGAN_OFFLINE", "true")
    assert hub.download(url, sha256=SHA, progress=False) == path
    assert server.hits["/w.pt"] == 1


def test_corrupt_cached_file_is_replaced(server: Server, cache: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    url = server.route("/w.pt")
    target = cache / "weights" / f"w-{SHA[:8]}.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(BODY[:1000])  # truncated by some earlier accident
    with caplog.at_level(logging.WARNING, logger="srgan.hub"):
        assert hub.download(url, sha256=SHA, progress=False) == target
    assert target.read_bytes() == BODY
    assert server.hits["/w.pt"] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "srgan.hub"]
    assert len(warnings) == 1 and str(target) in warnings[0].getMessage()


def test_read_only_cache_dir(server: Server, cache: pathlib.Path) -> None:
    cache.mkdir()
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(cache, os.W_OK):
            pytest.skip("chmod does not stop this user (root?) from writing")
        with pytest.raises(CacheDirError) as info:
            hub.download(server.route("/w.pt"), progress=False)
        assert "SRGAN_CACHE_DIR" in str(info.value) and str(cache) in str(info.value)
        assert server.hits["/w.pt"] == 0
    finally:
        cache.chmod(stat.S_IRWXU)


def test_cache_dir_that_cannot_be_created(
    server: Server, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(blocker / "cache"))  # fails even for root
    with pytest.raises(CacheDirError) as info:
        hub.download(server.route("/w.pt"), progress=False)
    assert "SRGAN_CACHE_DIR" in str(info.value) and str(blocker / "cache") in str(info.value)
    assert isinstance(info.value, OSError)
    assert server.hits["/w.pt"] == 0


# --- leftovers and concurrency -------------------------------------------------------------------------------------


def test_leftover_incomplete_files_are_ignored(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt")
    folder = cache / "weights"
    folder.mkdir(parents=True)
    fresh = folder / f"w-{SHA[:8]}.pt.k1ll3d.incomplete"  # maybe still being written by a live process
    fresh.write_bytes(BODY[:5000])
    old = folder / f"w-{SHA[:8]}.pt.0ld0ne.incomplete"  # left by a process killed two days ago
    old.write_bytes(BODY[:7000])
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))

    path = hub.download(url, sha256=SHA, progress=False)
    assert path.read_bytes() == BODY
    assert server.hits["/w.pt"] == 1
    assert fresh.read_bytes() == BODY[:5000]
    assert not old.exists()


_CHILD = """
import pathlib, sys, time, types
src, url, sha, go = sys.argv[1:5]
# Load srgan.hub without srgan/__init__.py (which imports torch: seconds per process).
package = types.ModuleType("srgan")
package.__path__ = [src]
sys.modules["srgan"] = package
from srgan import hub
print("ready", flush=True)
while not pathlib.Path(go).exists():
    time.sleep(0.002)
print(hub.download(url, sha256=sha, progress=False), flush=True)
"""


def test_concurrent_processes_download_once(server: Server, cache: pathlib.Path, tmp_path: pathlib.Path) -> None:
    url = server.route("/w.pt", Reply(delay=1.0))  # slow server: all processes overlap
    go = tmp_path / "go"
    src = str(pathlib.Path(hub.__file__).parent)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, src, url, SHA, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        results = [child.communicate(timeout=30) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert [child.returncode for child in children] == [0] * 4, [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert paths == {str(cache / "weights" / f"w-{SHA[:8]}.pt")}
    assert hub.sha256_file(paths.pop()) == SHA
    assert server.hits["/w.pt"] == 1
    assert leftovers(cache) == [f"w-{SHA[:8]}.pt"]


_KILLED_CHILD = """
import sys, types
src, url, sha = sys.argv[1:4]
package = types.ModuleType("srgan")
package.__path__ = [src]
sys.modules["srgan"] = package
from srgan import hub
hub.download(url, sha256=sha, progress=False, retries=0)
"""


def test_download_killed_mid_body_leaves_nothing_that_breaks_the_next_one(server: Server, cache: pathlib.Path) -> None:
    big = BODY * 15  # 1.5 MiB: the first 1 MiB chunk reaches the disk before the server stalls
    big_sha = hashlib.sha256(big).hexdigest()
    url = server.route("/big.pt", Reply(body=big, send=len(big) - 100_000, then="stall"), Reply(body=big))
    folder = cache / "weights"
    src = str(pathlib.Path(hub.__file__).parent)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, src, url, big_sha], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        partial: list[pathlib.Path] = []
        while not partial and child.poll() is None and time.monotonic() < deadline:
            partial = [p for p in folder.glob("*.incomplete") if p.stat().st_size > 0] if folder.exists() else []
            time.sleep(0.01)
        assert partial, child.stderr.read() if child.poll() is not None and child.stderr else "no partial file"
        assert child.poll() is None  # still inside download(), holding the lock
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()
    assert not (folder / f"big-{big_sha[:8]}.pt").exists()

    start = time.monotonic()
    path = hub.download(url, sha256=big_sha, progress=False)  # the dead process's lock is free

    assert time.monotonic() - start < 10
    assert path.read_bytes() == big
    assert server.hits["/big.pt"] == 2
    assert partial[0].exists() and partial[0].read_bytes() == big[: partial[0].stat().st_size]  # ignored, kept
    assert leftovers(cache) == sorted([path.name, partial[0].name])


# --- downloads checked as checkpoints before they enter the cache; a size cap (issue 15, item 7) ------------------

HTML = b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n"


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = weights.save_checkpoint(tmp_path_factory.mktemp("ckpt") / "g.pt", Generator(num_blocks=1, channels=4))
    return path.read_bytes()


def cached_path(cache: pathlib.Path, url: str) -> pathlib.Path:
    return cache / "weights" / f"w-{hub._url_tag(url)}.pt"


def test_html_instead_of_weights_is_not_cached_and_a_fixed_server_is_asked_again(
    server: Server, cache: pathlib.Path, checkpoint_bytes: bytes
) -> None:
    url = server.route("/w.pt", Reply(body=HTML), Reply(body=checkpoint_bytes))
    with pytest.raises(CheckpointError) as info:
        SRGAN.from_pretrained(url, device="cpu", progress=False)
    message = str(info.value)
    assert url in message and "HTML page" in message and str(cached_path(cache, url)) in message
    assert leftovers(cache) == []
    assert server.hits["/w.pt"] == 1  # a wrong file is not retried

    model = SRGAN.from_pretrained(url, device="cpu", progress=False)  # the server is fixed
    assert model.generator.config == Generator(num_blocks=1, channels=4).config
    assert server.hits["/w.pt"] == 2
    assert leftovers(cache) == [cached_path(cache, url).name]
    SRGAN.from_pretrained(url, device="cpu", progress=False)
    assert server.hits["/w.pt"] == 2  # now reused without a request


def test_verify_runs_on_the_download_before_it_enters_the_cache(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/w.pt")
    seen: list[tuple[str, bool]] = []

    def verify(path: pathlib.Path) -> None:
        seen.append((path.name, cached_path(cache, url).exists()))
        if len(seen) == 1:
            raise CheckpointError(f"{path} is not what we want")

    with pytest.raises(CheckpointError, match="is not what we want") as info:
        hub.download(url, verify=verify, progress=False)
    assert url in str(info.value) and ".incomplete" not in str(info.value)  # named by its URL, not the temp file
    assert seen[0][0].endswith(".incomplete") and seen[0][1] is False
    assert leftovers(cache) == []
    path = hub.download(url, verify=verify, progress=False)
    assert path.read_bytes() == BODY and seen[1][0].endswith(".incomplete")
    assert hub.download(url, verify=verify, progress=False) == path
    assert seen[2] == (path.name, True)  # a cached file is verified before it is reused
    assert server.hits["/w.pt"] == 2


def test_cached_file_broken_later_is_deleted_and_downloaded_again_once(
    server: Server, cache: pathlib.Path, checkpoint_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/w.pt", Reply(body=checkpoint_bytes))
    SRGAN.from_pretrained(url, device="cpu", progress=False)
    target = cached_path(cache, url)
    target.write_bytes(checkpoint_bytes[:1000])  # truncated on disk later
    with caplog.at_level(logging.WARNING, logger="srgan.hub"):
        SRGAN.from_pretrained(url, device="cpu", progress=False)
    assert server.hits["/w.pt"] == 2
    assert target.read_bytes() == checkpoint_bytes
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "srgan.hub"]
    assert len(warnings) == 1 and str(target) in warnings[0] and "downloading it again" in warnings[0]

    # Broken again, and the server now sends junk: one more request, an error naming both, nothing kept.
    target.write_bytes(checkpoint_bytes[:1000])
    server.routes["/w.pt"] = [Reply(body=HTML)]
    with pytest.raises(CheckpointError) as info:
        SRGAN.from_pretrained(url, device="cpu", progress=False)
    assert url in str(info.value) and str(target) in str(info.value)
    assert server.hits["/w.pt"] == 3
    assert leftovers(cache) == []


def test_offline_with_a_broken_cached_file(
    server: Server, cache: pathlib.Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.route("/w.pt", Reply(body=checkpoint_bytes))
    target = cached_path(cache, url)
    target.parent.mkdir(parents=True)
    target.write_bytes(HTML)
    monkeypatch.setenv("SRGAN_OFFLINE", "1")
    with pytest.raises(OfflineModeError) as info:
        SRGAN.from_pretrained(url, device="cpu", progress=False)
    message = str(info.value)
    assert "SRGAN_OFFLINE" in message and str(target) in message and "HTML page" in message
    assert server.hits["/w.pt"] == 0


def test_download_size_cap(server: Server, cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.route("/w.pt")  # 100 KiB
    monkeypatch.setenv("SRGAN_MAX_DOWNLOAD_BYTES", "1000")
    with pytest.raises(DownloadTooLargeError) as info:
        hub.download(url, progress=False)
    message = str(info.value)
    assert url in message and "1000" in message and "SRGAN_MAX_DOWNLOAD_BYTES" in message
    assert isinstance(info.value, DownloadError)
    assert server.hits["/w.pt"] == 1  # not retried
    assert leftovers(cache) == []
    assert hub.download(url, max_bytes=len(BODY), progress=False).read_bytes() == BODY  # the parameter wins


def test_download_size_cap_without_content_length(
    server: Server, cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.route("/w.pt")
    monkeypatch.setattr(hub, "_content_length", lambda response: None)  # a server that does not say the size
    with pytest.raises(DownloadTooLargeError, match="more than 1000 bytes"):
        hub.download(url, max_bytes=1000, progress=False)
    assert leftovers(cache) == []


def test_download_size_cap_values(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRGAN_MAX_DOWNLOAD_BYTES", raising=False)
    assert hub.max_download_bytes() == 2 * 1024**3
    monkeypatch.setenv("SRGAN_MAX_DOWNLOAD_BYTES", " 5000 ")
    assert hub.max_download_bytes() == 5000
    for bad in ("abc", "-1", "0", "1.5"):
        monkeypatch.setenv("SRGAN_MAX_DOWNLOAD_BYTES", bad)
        with pytest.raises(ConfigError, match=f"SRGAN_MAX_DOWNLOAD_BYTES.*{bad}"):
            hub.max_download_bytes()
    monkeypatch.delenv("SRGAN_MAX_DOWNLOAD_BYTES")
    with pytest.raises(ConfigError, match="max_bytes"):
        hub.download(server.route("/w.pt"), max_bytes=0, progress=False)
    assert server.hits["/w.pt"] == 0


# --- malformed URLs and cache folders (issue 15, item 9) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://127.0.0.1:99999/x.pt", "port"),
        ("http://127.0.0.1:abc/x.pt", "port"),
        ("http://127.0.0.1:0/x.pt", "port"),
        ("http://[::1/x.pt", "IPv6"),
    ],
)
def test_malformed_urls_raise_config_error(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        hub.download(url, progress=False)
    assert url in str(info.value) and "check the URL" in str(info.value)
    with pytest.raises(ConfigError, match=match):
        SRGAN.from_pretrained(url, device="cpu", progress=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x.pt", "FTP://example.com/x.pt", "file:///tmp/x.pt"])
def test_other_schemes_raise_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"only https:// and http:// URLs are supported"):
        SRGAN.from_pretrained(url, device="cpu", progress=False)


def test_uppercase_scheme_is_a_url(server: Server, checkpoint_bytes: bytes) -> None:
    url = server.route("/w.pt", Reply(body=checkpoint_bytes))
    SRGAN.from_pretrained("HTTP" + url[4:], device="cpu", progress=False)
    assert server.hits["/w.pt"] == 1


def test_connection_refused_is_a_download_error(cache: pathlib.Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.pt"
    with pytest.raises(DownloadError) as info:
        hub.download(url, retries=0, progress=False)
    assert url in str(info.value) and "Check the network connection" in str(info.value)
    assert leftovers(cache) == []


def test_malformed_redirect_is_a_download_error(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/old.pt", Reply(status=302, body=b"", headers={"Location": "http://[::1/w.pt"}))
    with pytest.raises(DownloadError, match="malformed URL") as info:
        hub.download(url, progress=False)
    assert url in str(info.value)
    assert server.hits["/old.pt"] == 1  # not retried


@pytest.mark.parametrize("value", ["~nosuchuser-srgan/x", "~nosuchuser-srgan"])
def test_unusable_cache_dir_variable_is_a_config_error(
    server: Server, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SRGAN_CACHE_DIR", value)
    with pytest.raises(ConfigError) as info:
        hub.cache_dir()
    assert "SRGAN_CACHE_DIR" in str(info.value) and value in str(info.value)
    with pytest.raises(ConfigError, match="SRGAN_CACHE_DIR"):
        hub.download(server.route("/w.pt"), progress=False)
    assert server.hits["/w.pt"] == 0


def test_redirect_to_a_bad_port_is_refused(server: Server, cache: pathlib.Path) -> None:
    url = server.route("/old.pt", Reply(status=302, body=b"", headers={"Location": "http://127.0.0.1:99999/w.pt"}))
    with pytest.raises(DownloadError, match=r"refusing redirect.*malformed URL"):
        hub.download(url, progress=False)
    assert server.hits["/old.pt"] == 1
