"""Smoke tests of scripts/train_srresnet.py, the recipe behind the packaged srresnet-x4 weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import make_photo

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_srresnet.py"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir()
    val.mkdir()
    for i in range(3):
        Image.fromarray(make_photo(72, 64, seed=i)).save(train / f"t{i}.png")
    Image.fromarray(make_photo(48, 40, seed=9)).save(val / "v.png")
    return train, val


def _run(train: Path, val: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--data", str(train), "--val", str(val), "--out", str(out), "--steps", "4"]
    cmd += ["--batch", "2", "--small-patch", "8", "--large-patch", "8", "--eval-every", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def test_trains_evaluates_and_resumes(folders: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = _run(*folders, out, "--loss", "mse", "--y-weight", "1")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_psnr_ema" in r] == [2, 4]
    assert all(r["val_psnr_ema"] > 5 for r in rows if "val_psnr_ema" in r)
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 4
    assert (out / "best_ema.pt").is_file()
    # Rerunning with more steps resumes from last.pt instead of starting over.
    again = _run(*folders, out, "--steps", "6")
    assert again.returncode == 0, again.stderr
    assert "resumed at step 4" in again.stderr


def test_teacher_cache_is_written_and_checked(folders: tuple[Path, Path], tmp_path: Path) -> None:
    teacher = tmp_path / "teacher.pt"
    cache = tmp_path / "cache.pt"
    from srgan import Generator

    torch.save(Generator(num_blocks=1, channels=8).state_dict(), teacher)
    done = _run(*folders, tmp_path / "a", "--teacher", str(teacher), "--teacher-cache", str(cache))
    assert done.returncode == 0, done.stderr
    targets = torch.load(cache, weights_only=True)
    assert [tuple(t.shape) for t in targets] == [(3, 64, 72)] * 3
    assert all(t.dtype == torch.uint8 for t in targets)
    # A cache made from other images is refused with a message that says what to do.
    Image.fromarray(make_photo(80, 64, seed=5)).save(folders[0] / "t9.png")
    bad = _run(*folders, tmp_path / "b", "--teacher", str(teacher), "--teacher-cache", str(cache))
    assert bad.returncode != 0
    assert "delete it to recompute" in bad.stderr


def test_freeze_bn_keeps_the_running_statistics(folders: tuple[Path, Path], tmp_path: Path) -> None:
    from srgan import Generator

    init = tmp_path / "init.pt"
    torch.save(Generator().state_dict(), init)
    before = torch.load(init, weights_only=True)
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats
    for flag, frozen in (("--freeze-bn", True), ("--y-weight", False)):
        out = tmp_path / flag
        extra = [flag] if frozen else [flag, "0.5"]
        done = _run(*folders, out, "--init", str(init), *extra)
        assert done.returncode == 0, done.stderr
        after = torch.load(out / "last.pt", weights_only=False)["model"]
        same = all(torch.equal(after[k], before[k]) for k in stats)
        assert same is frozen
        assert not torch.equal(after["head.0.weight"], before["head.0.weight"])
