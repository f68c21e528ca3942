"""Tests of the thin wrappers in scripts/: packing images for a GPU machine, the GPU run, packaging weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan import Generator
from srgan.weights import load_checkpoint, save_checkpoint

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=600, check=False, cwd=cwd, env={**os.environ, **(env or {})}
    )


def test_pack_images_writes_lossless_webp_cropped_to_the_scale(tmp_path: Path) -> None:
    src = tmp_path / "src" / "set"
    src.mkdir(parents=True)
    photo = make_photo(70, 45, seed=1)
    Image.fromarray(photo).save(src / "a.png")
    done = _run(sys.executable, str(SCRIPTS / "pack_images.py"), str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out" / "set_a.webp") as img:
        assert img.format == "WEBP"
        assert np.array_equal(np.asarray(img.convert("RGB")), photo[:44, :68])


def test_package_weights_stores_fp16_and_prints_the_sha256(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = save_checkpoint(tmp_path / "g.pt", Generator(num_blocks=1, channels=8), meta={"loss": "l1"})
    dest = tmp_path / "packaged.pt"
    done = _run(sys.executable, str(SCRIPTS / "package_weights.py"), str(src), str(dest), "--meta", '{"steps": 3}')
    assert done.returncode == 0, done.stderr
    raw = torch.load(dest, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    assert load_checkpoint(dest).meta == {"loss": "l1", "steps": 3}
    from srgan.hub import sha256_file

    assert f"sha256 {sha256_file(dest)}" in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_gpu_train_runs_a_recipe_slice_through_srgan_train(tmp_path: Path) -> None:
    for folder, n in (("train", 2), ("val", 1)):
        d = tmp_path / ".gpu" / folder
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(make_photo(132, 132, seed=i)).save(d / f"{i}.png")
    tiny = {"num_blocks": 1, "channels": 8, "batch_size": 2, "crop_size": 32, "pretrain_steps": 2, "amp": "none"}
    sets = " ".join(f"{k}={json.dumps(v)}" for k, v in tiny.items())
    out = tmp_path / "out"
    done = _run(
        "bash",
        str(SCRIPTS / "gpu_train.sh"),
        cwd=tmp_path,
        env={
            "OUT": str(out),
            "DEVICE": "cpu",
            "TO": "run1",
            "SET": f"{sets} warmup_steps=0 val_every=1",
            "LIMIT": "300",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((out / "run" / "run1" / "stage.json").read_text())
    assert record["recipe"] == "srresnet-x4" and record["steps"]["pretrain"] == 2
    assert (out / "run" / "generator.pt").is_file() and any((out / "run" / "exports").iterdir())


def test_gpu_pack_halves_stage_outputs_and_exports_into_two_tars(tmp_path: Path) -> None:
    import tarfile

    run = tmp_path / "run"
    gen = Generator(scale=4, num_blocks=1, channels=8)
    for rel in ("real1/generator.pt", "gan/generator.pt", "exports/pretrain_0000001.pt", "exports/gan_0000002.pt"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(run / rel, gen, meta={"step": 1})
    (run / "real1" / "metrics.jsonl").write_text('{"step": 1}\n')
    done = _run(sys.executable, str(SCRIPTS / "gpu_pack.py"), str(run), str(tmp_path / "mild"))
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "mild.tar") as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "x", filter="data")
    assert {"mild/weights/real1_generator.pt", "mild/weights/gan_generator.pt", "mild/real1/metrics.jsonl"} <= names
    with tarfile.open(tmp_path / "mild_exports.tar") as tar:
        exports = {"mild/weights/exports_pretrain_0000001.pt", "mild/weights/exports_gan_0000002.pt"}
        assert set(tar.getnames()) == exports
    packed = tmp_path / "x" / "mild" / "weights" / "real1_generator.pt"
    stored = torch.load(packed, map_location="cpu", weights_only=True)["state_dict"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    back, ref = load_checkpoint(packed).state_dict, gen.state_dict()
    assert all(torch.allclose(back[k].float(), ref[k].float(), atol=1e-2) for k in ref if ref[k].is_floating_point())


def test_real_gallery_writes_one_row_per_photo_and_input_kind(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    Image.fromarray(make_photo(200, 160, seed=3)).save(photo)
    save_checkpoint(tmp_path / "tiny.pt", Generator(scale=4, num_blocks=1, channels=8), meta={})
    out = tmp_path / "gallery"
    model = f"tiny={tmp_path / 'tiny.pt'}"
    done = _run(sys.executable, str(SCRIPTS / "real_gallery.py"), str(photo), "-o", str(out), "--model", model)
    assert done.returncode == 0, done.stderr
    with Image.open(out / "p_real-fixed.png") as row:  # input, bicubic, one model: 3 panels of 4x the LR
        assert row.size == (3 * 200, 160 + 28)
    with Image.open(out / "p_phone.png") as row:  # the central 80x64 of the half-size JPEG, x4
        assert row.size == (3 * 320, 256 + 28)
