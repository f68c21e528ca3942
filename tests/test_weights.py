from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from srgan import weights
from srgan.errors import CheckpointError, ChecksumMismatchError, IncompatibleCheckpointError, UnknownModelError
from srgan.hub import sha256_file
from srgan.models import Generator, GeneratorConfig


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
