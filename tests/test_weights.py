from __future__ import annotations

import errno
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from srgan import SRGAN, weights
from srgan.errors import (
    CheckpointError,
    ChecksumMismatchError,
    IncompatibleCheckpointError,
    SRGANError,
    UnknownModelError,
)
from srgan.hub import sha256_file
from srgan.models import Generator, GeneratorConfig
from srgan.pipeline import CHECKPOINT_NAME


def test_save_load_round_trip(tmp_path: Path, tiny_generator: Generator) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", tiny_generator, meta={"loss": "l1"})
    ckpt = weights.load_checkpoint(path)
    assert ckpt.config == tiny_generator.config
    assert ckpt.meta == {"loss": "l1"}
    g = weights.build_generator(ckpt)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(g(x), tiny_generator(x))


def test_half_storage_is_smaller_and_loads_as_fp32(tmp_path: Path) -> None:
    g = Generator(num_blocks=2, channels=16)
    full = weights.save_checkpoint(tmp_path / "full.pt", g)
    half = weights.save_checkpoint(tmp_path / "half.pt", g, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    ckpt = weights.load_checkpoint(half)
    assert all(v.dtype == torch.float32 for v in ckpt.state_dict.values() if v.is_floating_point())


def test_plain_state_dict_infers_architecture(tmp_path: Path) -> None:
    g = Generator(scale=8, num_blocks=3, channels=12)
    torch.save(g.state_dict(), tmp_path / "sd.pt")
    ckpt = weights.load_checkpoint(tmp_path / "sd.pt")
    assert ckpt.config == GeneratorConfig(scale=8, num_blocks=3, channels=12)


def test_checksum_mismatch(tmp_path: Path, tiny_generator: Generator) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", tiny_generator)
    good = sha256_file(path)
    assert weights.load_checkpoint(path, sha256=good).config == tiny_generator.config
    with pytest.raises(ChecksumMismatchError, match="expected"):
        weights.load_checkpoint(path, sha256="0" * 64)


def test_truncated_and_garbage_files(tmp_path: Path, tiny_generator: Generator) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", tiny_generator)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("hello")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "text.pt", "empty.pt"):
        with pytest.raises(CheckpointError):
            weights.load_checkpoint(tmp_path / name)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED_MARKER",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="plain-data"):
        weights.load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_nan_weights_refused(tmp_path: Path) -> None:
    g = Generator(num_blocks=1, channels=4)
    with torch.no_grad():
        g.tail.weight[0, 0, 0, 0] = float("nan")
    weights.save_checkpoint(tmp_path / "nan.pt", g)
    with pytest.raises(CheckpointError, match="NaN"):
        weights.load_checkpoint(tmp_path / "nan.pt")


def test_newer_format_version(tmp_path: Path, tiny_generator: Generator) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", tiny_generator)
    obj = torch.load(path, weights_only=True)
    obj["format_version"] = weights.FORMAT_VERSION + 1
    torch.save(obj, path)
    with pytest.raises(IncompatibleCheckpointError, match="upgrade srgan"):
        weights.load_checkpoint(path)


def test_wrong_architecture_names_keys(tmp_path: Path) -> None:
    g = Generator(num_blocks=2, channels=8)
    path = weights.save_checkpoint(tmp_path / "g.pt", g)
    obj = torch.load(path, weights_only=True)
    obj["config"]["num_blocks"] = 3
    torch.save(obj, path)
    with pytest.raises(IncompatibleCheckpointError, match=r"missing keys \['body\.2\."):
        weights.build_generator(weights.load_checkpoint(path))
    obj["config"]["num_blocks"] = 2
    obj["config"]["channels"] = 16
    torch.save(obj, path)
    with pytest.raises(IncompatibleCheckpointError, match="wrong shapes"):
        weights.build_generator(weights.load_checkpoint(path))


def test_unknown_name_lists_known() -> None:
    with pytest.raises(UnknownModelError, match="not a registered name"):
        weights.get_entry("no-such-model")


@pytest.mark.parametrize("entry", weights.list_models(), ids=lambda e: e.name)
def test_registry_entries_are_complete_and_verified(entry: weights.WeightsEntry) -> None:
    assert entry.name and entry.description and entry.trained_on and entry.loss
    assert len(entry.sha256) == 64
    assert (entry.file is None) != (entry.url is None)
    if entry.file is not None:
        path = weights.packaged_path(entry)
        assert sha256_file(path) == entry.sha256
        ckpt = weights.load_checkpoint(path, sha256=entry.sha256)
        assert ckpt.config == entry.config
        assert all(v.dtype == torch.float32 for v in ckpt.state_dict.values() if v.is_floating_point())


def test_default_is_registered() -> None:
    assert weights.DEFAULT_MODEL is None or weights.DEFAULT_MODEL in weights.REGISTRY


def test_default_follows_the_perceptual_models_acceptance_bar() -> None:
    """The default is srgan-x4 when its registered figures meet the bar (Set14 NIQE <= 4.6 at >= 26.8 dB; the
    figures themselves are checked against srgan-eval in tests/test_evaluation.py), else srresnet-x4."""
    gan = weights.REGISTRY.get("srgan-x4")
    meets = gan is not None and gan.metrics["Set14_niqe"] <= 4.6 and gan.metrics["Set14_psnr_y"] >= 26.8
    expected = "srgan-x4" if meets else "srresnet-x4"
    assert expected == weights.DEFAULT_MODEL


# --- hostile and broken checkpoints through the public loader ------------------------------------------------------


def _write_evil_torch(path: Path) -> None:
    torch.save({"format": weights.FORMAT, "state_dict": _Evil()}, path)


def _write_evil_raw_pickle(path: Path) -> None:
    with open(path, "wb") as f:  # not torch's zip format: a bare pickle, as older torch.save wrote
        pickle.dump({"state_dict": _Evil()}, f, protocol=2)


def _write_with(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        g = Generator(num_blocks=2, channels=8)
        weights.save_checkpoint(path, g)
        obj = torch.load(path, weights_only=True)
        change(obj)
        torch.save(obj, path)

    return write


def _poison(value: float) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["state_dict"]["body.1.conv1.weight"][0, 0, 1, 1] = value

    return change


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["state_dict"].pop(key)


@pytest.mark.parametrize(
    ("write", "error", "match"),
    [
        (_write_evil_torch, CheckpointError, r"plain-data.*GLOBAL posix\.system|plain-data.*GLOBAL nt\.system"),
        (_write_evil_raw_pickle, CheckpointError, "plain-data checkpoint.*may contain code"),
        (_write_with(_poison(float("nan"))), CheckpointError, r"'body\.1\.conv1\.weight' contains NaN or inf"),
        (_write_with(_poison(float("inf"))), CheckpointError, r"'body\.1\.conv1\.weight' contains NaN or inf"),
        (_write_with(_set("format_version", weights.FORMAT_VERSION + 1)), IncompatibleCheckpointError, "upgrade srgan"),
        (
            _write_with(_set("config", {"scale": 4, "num_blocks": 1, "channels": 8})),
            IncompatibleCheckpointError,
            r"Generator\(GeneratorConfig\(scale=4, num_blocks=1, channels=8\)\).*missing keys \[\].*"
            r"unexpected keys \['body\.1\.act\.weight', 'body\.1\.bn1\.bias'",
        ),
        (
            _write_with(_drop("tail.weight")),
            IncompatibleCheckpointError,
            r"num_blocks=2, channels=8\)\): missing keys \['tail\.weight'\], unexpected keys \[\]",
        ),
    ],
    ids=["pickle-code", "raw-pickle-code", "nan", "inf", "newer-format", "unexpected-keys", "missing-key"],
)
@pytest.mark.parametrize("as_folder", [False, True], ids=["file", "folder"])
def test_from_pretrained_refuses_hostile_and_broken_checkpoints(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write: Callable[[Path], None],
    error: type[Exception],
    match: str,
    as_folder: bool,
) -> None:
    monkeypatch.chdir(tmp_path)  # where _Evil would create its marker
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / CHECKPOINT_NAME
    write(path)
    with pytest.raises(error, match=match) as info:
        SRGAN.from_pretrained(folder if as_folder else path, device="cpu")
    assert isinstance(info.value, SRGANError) and isinstance(info.value, ValueError)
    assert str(path) in str(info.value) or str(folder) in str(info.value)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_disk_full_while_saving_keeps_the_previous_file(
    tmp_path: Path, tiny_generator: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = weights.save_checkpoint(tmp_path / "g.pt", tiny_generator, meta={"version": 1})
    before = path.read_bytes()
    fill_disk_after(monkeypatch, 4096)
    with pytest.raises(OSError, match="No space left on device") as info:
        weights.save_checkpoint(path, Generator(num_blocks=2, channels=8), meta={"version": 2})
    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value) and "unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert weights.load_checkpoint(path).meta == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt"]  # no temporary file left


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """Make files opened with ``os.fdopen`` (as atomic saves do) fail with ENOSPC once ``size`` bytes are written."""
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        f = real_fdopen(fd, *args, **kwargs)
        real_write, written = f.write, [0]

        def write(data: bytes) -> int:
            if written[0] + len(data) > size:
                real_write(bytes(data)[: size - written[0]])
                written[0] = size
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
            return int(real_write(data))

        f.write = write
        return f

    monkeypatch.setattr(os, "fdopen", fdopen)
