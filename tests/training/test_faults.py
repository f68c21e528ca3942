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
from srgan.errors import DataError
from srgan.training.trainer import STATE_NAME
from srgan.weights import load_checkpoint

from .test_trainer import assert_states_equal, make_trainer, small_discriminator, snapshot, tiny_config

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

STEPS = 4
KILL_AT = 3  # the child is killed while writing the checkpoint of this step; the one of step 2 stays
CONFIG = tiny_config(pretrain_steps=STEPS, ckpt_every=1)


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
