"""Training under faults: SIGKILL while a checkpoint is written, disk full, unusable training images."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import srgan.training.trainer as trainer_module
from conftest import make_photo
from srgan.errors import CheckpointError, ConfigError, DataError
from srgan.training.trainer import STATE_NAME
from srgan.weights import load_checkpoint

from .test_trainer import assert_states_equal, make_trainer, small_discriminator, snapshot, tiny_config

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

STEPS = 4
KILL_AT = 3  # the child is killed while writing the checkpoint of this step; the one of step 2 stays
CONFIG = tiny_config(pretrain_steps=STEPS, ckpt_every=1)


@pytest.fixture(autouse=True)
def _default_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler for each test, whatever the runner started with: a non-interactive shell starts
    its background jobs with SIGINT ignored, and then neither Python nor the Trainer installs a handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _small_discriminator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same narrow discriminator as in the child process (and as in test_trainer.py)."""
    monkeypatch.setattr(trainer_module, "Discriminator", small_discriminator)


def _write_images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (w, h) in enumerate([(48, 64), (80, 56), (64, 64)]):
        Image.fromarray(make_photo(w, h, seed=i)).save(folder / f"img{i}.png")
    return folder


_CHILD = """
import io, pathlib, sys, time
import torch
train_dir, out, config_json, ready, threads, kill_at = sys.argv[1:7]
torch.set_num_threads(int(threads))  # the parent's: the same floating point results
import srgan.training.trainer as trainer_module
from srgan.models import Discriminator
from srgan.training import TrainConfig, Trainer

trainer_module.Discriminator = lambda: Discriminator(channels=4, hidden=16)
real_save = torch.save

def save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("format") == "srgan.trainer" and obj["step"] == int(kill_at):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # half the checkpoint is on disk...
        f.flush()
        pathlib.Path(ready).write_text("writing")  # ...when the parent is told to kill us
        time.sleep(120)
        sys.exit("not killed")
    return real_save(obj, f, *args, **kwargs)

torch.save = save
config = TrainConfig.from_json(config_json)
Trainer(config, train_dirs=[train_dir], output_dir=out, device="cpu", progress=False).fit()
sys.exit("the run finished without being killed")
"""


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(training images, output folder of a run SIGKILLed inside torch.save of the step-3 checkpoint)."""
    root = tmp_path_factory.mktemp("killed")
    images, out, ready = _write_images(root / "train"), root / "out", root / "ready"
    args = [str(images), str(out), CONFIG.to_json(), str(ready), str(torch.get_num_threads()), str(KILL_AT)]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), child.communicate(timeout=10)[1] if child.poll() is not None else "child too slow"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()
    yield images, out


def _copy(out: Path, dest: Path) -> Path:
    return Path(shutil.copytree(out, dest))


def _temp_files(out: Path) -> list[Path]:
    return sorted(out.glob(f".{STATE_NAME}.*"))


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(
    killed_run: tuple[Path, Path], tmp_path: Path
) -> None:
    images, killed = killed_run
    out = _copy(killed, tmp_path / "out")
    (partial,) = _temp_files(out)  # the write that was cut short
    previous = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
    assert previous["step"] == KILL_AT - 1
    assert 0 < partial.stat().st_size < (out / STATE_NAME).stat().st_size

    resumed = make_trainer(CONFIG, images, out, resume=True)

    assert (resumed.phase, resumed.step, resumed.steps_done) == ("pretrain", KILL_AT - 1, {"pretrain": 2, "gan": 0})
    assert_states_equal(snapshot(resumed.generator), previous["generator"])
    assert _temp_files(out) == []  # the partial file was deleted, never loaded


def test_resume_after_sigkill_reaches_the_weights_of_an_uninterrupted_run(
    killed_run: tuple[Path, Path], tmp_path: Path
) -> None:
    images, killed = killed_run
    reference = make_trainer(CONFIG, images, tmp_path / "reference")
    reference.fit()

    resumed = make_trainer(CONFIG, images, _copy(killed, tmp_path / "out"), resume=True)
    assert resumed.step == KILL_AT - 1
    resumed.fit()

    assert resumed.steps_done == reference.steps_done == {"pretrain": STEPS, "gan": 0}
    assert_states_equal(snapshot(resumed.generator), snapshot(reference.generator))

    # The log holds each step once: the records the killed run wrote after its last checkpoint were dropped.
    def steps(out: Path) -> list[tuple[str, int, str]]:
        lines = (out / "metrics.jsonl").read_text().splitlines()
        return [(r["phase"], r["step"], "loss" if "loss" in r else "val") for r in map(json.loads, lines)]

    assert steps(resumed.output_dir) == steps(reference.output_dir)
    assert_states_equal(snapshot(resumed.discriminator), snapshot(reference.discriminator))
    assert_states_equal(
        load_checkpoint(tmp_path / "out" / "generator.pt").state_dict,
        load_checkpoint(tmp_path / "reference" / "generator.pt").state_dict,
    )


def _disk_full_on_save(monkeypatch: pytest.MonkeyPatch, save: int, after: int) -> None:
    """Make the ``save``-th file opened with ``os.fdopen`` (atomic saves) fail with ENOSPC after ``after`` bytes."""
    real_fdopen = os.fdopen
    opened = [0]

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        f = real_fdopen(fd, *args, **kwargs)
        opened[0] += 1
        if opened[0] != save:
            return f
        real_write, written = f.write, [0]

        def write(data: bytes) -> int:
            if written[0] + len(data) > after:
                real_write(bytes(data)[: after - written[0]])
                written[0] = after
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
            return int(real_write(data))

        f.write = write
        return f

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_disk_full_while_saving_a_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, out = _write_images(tmp_path / "train"), tmp_path / "out"
    trainer = make_trainer(CONFIG, images, out)
    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left on device") as info:
        _disk_full_on_save(patch, save=KILL_AT, after=10_000)  # the checkpoints of steps 1 and 2 are written
        trainer.fit()

    assert info.value.errno == errno.ENOSPC
    message = str(info.value)
    assert str(out / STATE_NAME) in message and "unchanged" in message and "free some disk space" in message
    assert _temp_files(out) == []
    resumed = make_trainer(CONFIG, images, out, resume=True)
    assert resumed.step == KILL_AT - 1


def test_unusable_training_images_are_skipped_or_refused_by_the_trainer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SRCropDataset's own tests (test_data.py) cover text files, truncated PNGs and small images.
    mixed = _write_images(tmp_path / "mixed")
    (mixed / "zero.png").write_bytes(b"")
    jpeg = mixed / "cut.jpg"
    Image.fromarray(make_photo(64, 64)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    Image.fromarray(make_photo(12, 40)).save(mixed / "narrow.png")
    with caplog.at_level(logging.WARNING, logger="srgan.training.data"):
        trainer = make_trainer(CONFIG, mixed, tmp_path / "out")
    assert [f.name for f in trainer.dataset.files] == ["img0.png", "img1.png", "img2.png"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert all(name in warned for name in ("zero.png", "cut.jpg", "narrow.png"))

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("zero.png", "cut.jpg", "narrow.png"):
        shutil.move(mixed / name, bad / name)
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, found in ((bad, "3 files found"), (empty, "0 files found")):
        with pytest.raises(DataError, match=f"no usable training image.*{found}.*at least 16x16"):
            make_trainer(CONFIG, folder, tmp_path / "out2")


class _Payload:
    """Unpickling this object would create a marker file (a stand-in for any code in a hostile pickle)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_resume_never_runs_code_from_a_checkpoint(tiny_image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"format": "srgan.trainer", "x": _Payload(str(marker))}, out / STATE_NAME)
    with pytest.raises(CheckpointError, match="runs no code"):
        make_trainer(tiny_config(), tiny_image_dir, out, resume=True)
    assert not marker.exists()


def test_resume_from_an_incomplete_checkpoint_is_a_named_error(tiny_image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"format": "srgan.trainer"}, out / STATE_NAME)
    with pytest.raises(CheckpointError, match="incomplete"):
        make_trainer(tiny_config(), tiny_image_dir, out, resume=True)


def test_a_zero_step_run_exports_a_loadable_generator(tiny_image_dir: Path, tmp_path: Path) -> None:
    from srgan import SRGAN

    tr = make_trainer(tiny_config(pretrain_steps=0), tiny_image_dir, tmp_path / "z")
    tr.fit()
    model = SRGAN.from_pretrained(tmp_path / "z", device="cpu", dtype="fp32")
    ref = {k: v.float() for k, v in tr.generator.state_dict().items()}
    assert all(torch.equal(model.generator.state_dict()[k].float(), ref[k]) for k in ref if "num_batches" not in k)


def _sigint_during_forward(trainer: Any, at_step: int, times: int = 1) -> None:
    """Send this process SIGINT from inside the generator's forward pass of step ``at_step`` (0-based)."""

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        if module.training and trainer.step == at_step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    trainer.generator.head.register_forward_hook(hook)


def test_ctrl_c_mid_step_saves_the_state_after_that_step(tiny_image_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(pretrain_steps=5, ckpt_every=1000)
    full = make_trainer(cfg, tiny_image_dir, tmp_path / "full")
    full.fit()
    part = make_trainer(cfg, tiny_image_dir, tmp_path / "part")
    _sigint_during_forward(part, at_step=2)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    state = torch.load(tmp_path / "part" / STATE_NAME, weights_only=True)
    assert state["step"] == 3  # step 2 (the third) completed before stopping
    resumed = make_trainer(cfg, tiny_image_dir, tmp_path / "part", resume=True)
    resumed.fit()
    # Every tensor of the state, batch-norm statistics and num_batches_tracked included, as without the interrupt.
    assert_states_equal(snapshot(full.generator), snapshot(resumed.generator))
    assert_states_equal(snapshot(full.discriminator), snapshot(resumed.discriminator))


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tiny_image_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(pretrain_steps=5, ckpt_every=1)
    tr = make_trainer(cfg, tiny_image_dir, tmp_path / "run")
    _sigint_during_forward(tr, at_step=2, times=2)
    with pytest.raises(KeyboardInterrupt):
        tr.fit()
    state = torch.load(tmp_path / "run" / STATE_NAME, weights_only=True)
    assert state["step"] == 2  # the periodic checkpoint after step 2 of 5; the interrupted step is not in it
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_missing_vgg_weights_stop_the_run_before_its_first_step(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.error

    import srgan.losses as losses

    real_vgg19 = losses.vgg19

    def offline_vgg19(*, weights: Any = None, progress: bool = False) -> Any:
        if weights is not None:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return real_vgg19(weights=None, progress=progress)

    monkeypatch.setattr(losses, "vgg19", offline_vgg19)
    steps: list[int] = []
    monkeypatch.setattr(trainer_module.Trainer, "_train_step", lambda self, *a: steps.append(self.step))
    cfg = tiny_config(phase="both", content_loss="vgg54", vgg_weights="imagenet")
    with pytest.raises(ConfigError, match="VGG19 ImageNet weights") as info:
        make_trainer(cfg, tiny_image_dir, tmp_path / "run")
    assert "vgg19-dcbb9e9d.pth" in str(info.value) and "--content-loss l1" in str(info.value)
    assert steps == []
    # Without VGG terms nothing is downloaded and the run starts.
    make_trainer(tiny_config(phase="both", content_loss="l1", fm_weight=0.5), tiny_image_dir, tmp_path / "ok")
