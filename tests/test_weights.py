from __future__ import annotations

import dataclasses
import errno
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from srgan import SRGAN, weights
from srgan.cli import main
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


# --- configs that do not match their weights, malformed checkpoints (issue 15, items 4 and 8) ----------------------


def _write_obj(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def _checkpoint(config: dict[str, Any], state_dict: Any = None, meta: Any = None) -> dict[str, Any]:
    return {
        "format": weights.FORMAT,
        "format_version": 1,
        "config": config,
        "state_dict": {} if state_dict is None else state_dict,
        "meta": {} if meta is None else meta,
    }


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (
            {"scale": 8, "num_blocks": 10**7, "channels": 64},
            r"num_blocks must be an integer from 1 to 256, got 10000000",
        ),
        ({"scale": 4, "num_blocks": 16, "channels": 12000}, r"channels must be an integer from 1 to 1024, got 12000"),
        ({"scale": 3, "num_blocks": 16, "channels": 64}, r"scale must be one of \(2, 4, 8\), got 3"),
        # Within the bounds, but the file holds no weights: refused from the keys, before the model is built.
        ({"scale": 8, "num_blocks": 10, "channels": 64}, r"missing keys \['body\.0\.act\.weight'.*holds 0 entries"),
    ],
    ids=["10M-blocks", "12000-channels", "scale-3", "empty-state-dict"],
)
def test_tiny_file_with_a_huge_config_fails_fast(tmp_path: Path, config: dict[str, Any], match: str) -> None:
    path = _write_obj(tmp_path / "bomb.pt", _checkpoint(config))
    assert path.stat().st_size < 2000
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=match) as info:
        SRGAN.from_pretrained(path, device="cpu")
    assert time.monotonic() - start < 2.0
    assert str(path) in str(info.value)


def test_config_that_contradicts_its_weights_is_refused_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = Generator(num_blocks=2, channels=8)
    path = weights.save_checkpoint(tmp_path / "g.pt", g)
    obj = torch.load(path, weights_only=True)
    obj["config"] = {"scale": 4, "num_blocks": 2, "channels": 1024}
    torch.save(obj, path)
    arch = weights.registry.for_config(g.config)
    devices: list[torch.device] = []

    def build(config: GeneratorConfig) -> Generator:
        model = arch.build(config)
        devices.append(next(model.parameters()).device)
        return model

    monkeypatch.setattr(weights.registry, "for_config", lambda config: dataclasses.replace(arch, build=build))
    ckpt = weights.load_checkpoint(path)
    with pytest.raises(IncompatibleCheckpointError, match=r"head\.0\.weight: expected \(1024, 3, 9, 9\), got \(8, 3"):
        weights.build_generator(ckpt, source=str(path))
    assert devices == [torch.device("meta")]  # checked on the meta device; no model was built with real memory


def test_tensors_with_less_data_than_their_shape_are_refused(tmp_path: Path) -> None:
    # torch.save keeps an expanded (stride 0) view as one element: a tiny file could claim gigabytes of weights.
    g = Generator(num_blocks=1, channels=4)
    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in g.state_dict().items()}
    path = _write_obj(tmp_path / "views.pt", _checkpoint(g.config.to_dict(), state))
    with pytest.raises(CheckpointError, match=r"'head\.0\.weight' of shape \(4, 3, 9, 9\) has 4 bytes of data") as info:
        weights.load_checkpoint(path)
    assert str(path) in str(info.value)


def _with_state(state: dict[Any, Any]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        g = Generator(num_blocks=1, channels=4)
        obj = _checkpoint(g.config.to_dict(), dict(g.state_dict()))
        obj["state_dict"].update(state)
        torch.save(obj, path)

    return write


def _writes(obj: object) -> Callable[[Path], None]:
    return lambda path: torch.save(obj, path)


_CONFIG = {"scale": 4, "num_blocks": 1, "channels": 4}

MALFORMED = [
    ("meta-str", _writes(_checkpoint(_CONFIG, meta="abc")), r"its 'meta' entry to be a dict, got str 'abc'"),
    ("meta-int", _writes(_checkpoint(_CONFIG, meta=5)), r"its 'meta' entry to be a dict, got int 5"),
    ("config-str", _writes(_checkpoint("abc")), r"its 'config' entry to be a dict, got str 'abc'"),  # type: ignore[arg-type]
    ("config-int", _writes(_checkpoint(5)), r"its 'config' entry to be a dict, got int 5"),  # type: ignore[arg-type]
    ("config-missing", _writes({"format": weights.FORMAT, "format_version": 1, "state_dict": {}}), r"no 'config'"),
    ("blocks-abc", _writes(_checkpoint(dict(_CONFIG, num_blocks="abc"))), r"num_blocks must be an integer.*'abc'"),
    ("blocks-float", _writes(_checkpoint(dict(_CONFIG, num_blocks=2.5))), r"num_blocks must be an integer.*2\.5"),
    ("state-list", _writes(_checkpoint(_CONFIG, state_dict=[1, 2])), r"its 'state_dict' entry to be a dict, got list"),
    ("int-key", _with_state({1: torch.zeros(1)}), r"expected string state-dict keys.*got int 1"),
    ("plain-int-keys", _writes({0: torch.zeros(1), 1: torch.zeros(1)}), r"expected string state-dict keys.*got int 0"),
    (
        "plain-scalar",
        _writes({"head.0.weight": torch.tensor(1.0)}),
        r"needs head\.0\.weight of shape \(C, 3, 9, 9\), got \(\)",
    ),
    (
        "plain-scalar-disc",
        _writes({"features.0.weight": torch.tensor(1.0), "classifier.1.weight": torch.tensor(1.0)}),
        r"needs features\.0\.weight of shape \(C, 3, 3, 3\).*got \(\) and \(\)",
    ),
    (
        "plain-too-wide",
        _writes({"head.0.weight": torch.zeros(()).expand(2000, 3, 9, 9)}),
        r"weights describe an unusable model: GeneratorConfig\.scale must be one of \(2, 4, 8\), got 1",
    ),
    ("version-0", _writes(dict(_checkpoint(_CONFIG), format_version=0)), r"format version 0"),
]


@pytest.mark.parametrize(("write", "match"), [(w, m) for _, w, m in MALFORMED], ids=[i for i, _, _ in MALFORMED])
@pytest.mark.parametrize("through", ["load_checkpoint", "from_pretrained"])
def test_malformed_checkpoints_raise_checkpoint_error(
    tmp_path: Path, write: Callable[[Path], None], match: str, through: str
) -> None:
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises(CheckpointError, match=match) as info:
        if through == "load_checkpoint":
            weights.build_generator(weights.load_checkpoint(path), source=str(path))
        else:
            SRGAN.from_pretrained(path, device="cpu")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("case", ["meta-str", "blocks-abc", "plain-int-keys", "plain-scalar"])
def test_cli_exits_2_on_malformed_checkpoints(
    tmp_path: Path, photo: Image.Image, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write = next(w for i, w, _ in MALFORMED if i == case)
    model, src = tmp_path / "bad.pt", tmp_path / "in.png"
    write(model)
    photo.save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out.png"), "--model", str(model), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "CheckpointError" in err and str(model) in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
