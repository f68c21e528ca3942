from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import make_photo
from srgan import SRGAN, __version__
from srgan.cli import main


def _write_photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(make_photo(12, 10, seed=i)).save(p)
        paths.append(p)
    return paths


def test_folder_with_one_broken_file(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    _write_photos(src, 2)
    (src / "sub").mkdir()
    Image.fromarray(make_photo(8, 8)).save(src / "sub" / "deep.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    out = tmp_path / "out"
    code = main(["upscale", str(src), "-o", str(out), "--model", str(tiny_model_dir), "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["img0_x4.png", "img1_x4.png", "sub/deep_x4.jpg"]
    assert Image.open(out / "img0_x4.png").size == (48, 40)
    assert not list(out.rglob("*.partial"))


def test_single_file_output_and_no_overwrite(tmp_path: Path, tiny_model_dir: Path) -> None:
    (src,) = _write_photos(tmp_path, 1)
    dest = tmp_path / "big.png"
    args = ["upscale", str(src), "-o", str(dest), "--model", str(tiny_model_dir), "--device", "cpu"]
    assert main(args) == 0
    assert Image.open(dest).size == (48, 40)
    dest.write_bytes(b"keep me")
    assert main(args) == 1  # exists, no --overwrite
    assert dest.read_bytes() == b"keep me"
    assert main([*args, "--overwrite"]) == 0
    assert Image.open(dest).size == (48, 40)


def test_self_ensemble_flag(tmp_path: Path, tiny_model_dir: Path) -> None:
    (src,) = _write_photos(tmp_path, 1)
    base = ["upscale", str(src), "--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "fp32"]
    assert main([*base, "-o", str(tmp_path / "se.png"), "--self-ensemble"]) == 0
    assert main([*base, "-o", str(tmp_path / "plain.png")]) == 0
    model = SRGAN.from_pretrained(tiny_model_dir, device="cpu", dtype="fp32")
    expected = model.upscale(Image.open(src), self_ensemble=True)
    written = np.asarray(Image.open(tmp_path / "se.png"))
    assert np.array_equal(written, np.asarray(expected))
    assert not np.array_equal(written, np.asarray(Image.open(tmp_path / "plain.png")))


def test_never_overwrites_an_input(tmp_path: Path, tiny_model_dir: Path) -> None:
    (src,) = _write_photos(tmp_path, 1)
    before = src.read_bytes()
    code = main(["upscale", str(src), "-o", str(src), "--model", str(tiny_model_dir), "--overwrite"])
    assert code == 1
    assert src.read_bytes() == before


def test_default_output_beside_input(tmp_path: Path, tiny_model_dir: Path) -> None:
    (src,) = _write_photos(tmp_path, 1)
    assert main(["upscale", str(src), "--model", str(tiny_model_dir), "-q"]) == 0
    assert (tmp_path / "img0_x4.png").is_file()


def test_bad_model_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (src,) = _write_photos(tmp_path, 1)
    assert main(["upscale", str(src), "--model", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_models_and_version(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path))
    assert main(["models"]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "srgan", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "upscale" in proc.stdout


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "bmp"])
def test_16bit_input_saved_sensibly_in_every_format(tmp_path: Path, tiny_model_dir: Path, fmt: str) -> None:
    arr = (np.linspace(0, 65535, 120).reshape(10, 12)).astype(np.uint16)
    src = tmp_path / "g16.png"
    Image.fromarray(arr).save(src)
    expected = np.asarray(SRGAN.from_pretrained(tiny_model_dir).upscale(Image.open(src)), dtype=np.float64)
    dest = tmp_path / f"out.{fmt}"
    assert main(["upscale", str(src), "-o", str(dest), "--model", str(tiny_model_dir), "-q"]) == 0
    out = np.asarray(Image.open(dest).convert("I"), dtype=np.float64)
    if fmt == "png":
        np.testing.assert_array_equal(out, expected)  # 16-bit kept
    else:
        assert np.abs(out - expected / 257).mean() < 3  # scaled to 8 bits, not clipped


def test_tile_must_be_positive(tmp_path: Path, tiny_model_dir: Path) -> None:
    (src,) = _write_photos(tmp_path, 1)
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "--tile", "0", "--model", str(tiny_model_dir)])
    assert exc.value.code == 2


def test_failure_while_saving_leaves_no_partial_output(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    _write_photos(src, 3)
    out = tmp_path / "out"
    real_save = Image.Image.save
    calls: list[object] = []

    def save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(fp)
        if len(calls) == 2:  # the second image: some bytes reach the file, then the disk fills up
            fp.write(b"\x89PNG\r\n\x1a\n" + bytes(1000))
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    code = main(
        ["upscale", str(src), "-o", str(out), "--model", str(tiny_model_dir), "--device", "cpu", "--workers", "1"]
    )

    assert code == 1
    assert len(calls) == 3
    err = capsys.readouterr().err
    assert f"srgan: {src / 'img1.png'}: " in err and "No space left on device" in err
    assert sorted(p.name for p in out.iterdir()) == ["img0_x4.png", "img2_x4.png"]  # no temporary file either
    for name in ("img0_x4.png", "img2_x4.png"):
        with Image.open(out / name) as image:
            assert image.size == (48, 40)


def test_skip_existing_resumes_a_half_done_folder(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "in"
    _write_photos(src, 3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1_x4.png").write_bytes(b"done earlier")
    args = ["upscale", str(src), "-o", str(out), "--model", str(tiny_model_dir), "--skip-existing", "--workers", "3"]
    assert main(args) == 0
    assert (out / "img1_x4.png").read_bytes() == b"done earlier"  # not redone
    assert Image.open(out / "img0_x4.png").size == (48, 40) and Image.open(out / "img2_x4.png").size == (48, 40)


def test_torchrun_environment_shards_the_file_list(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    _write_photos(src, 5)
    out = tmp_path / "out"
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        assert main(["upscale", str(src), "-o", str(out), "--model", str(tiny_model_dir), "-q"]) == 0
        done = sorted(p.name for p in out.iterdir())
        expected = {0: ["img0_x4.png", "img2_x4.png", "img4_x4.png"]}.get(rank, [f"img{i}_x4.png" for i in range(5)])
        assert done == expected


def test_exif_metadata_kept_without_orientation(tmp_path: Path, tiny_model_dir: Path) -> None:
    img = Image.fromarray(make_photo(12, 8))
    exif = Image.Exif()
    exif[0x010F] = "srgan-test-camera"  # Make
    exif[0x0112] = 6  # rotate on display
    img.save(tmp_path / "cam.jpg", exif=exif.tobytes())
    for fmt in ("jpg", "png"):
        dest = tmp_path / f"out.{fmt}"
        assert main(["upscale", str(tmp_path / "cam.jpg"), "-o", str(dest), "--model", str(tiny_model_dir), "-q"]) == 0
        with Image.open(dest) as out:
            assert out.size == (32, 48)  # rotated once, from the EXIF tag
            tags = out.getexif()
            assert tags.get(0x010F) == "srgan-test-camera"
            assert tags.get(0x0112) is None  # not rotated a second time by viewers


# ------------------------------------------------------------------------------- issue 15: reliability round 2


def _run(*args: str) -> int:
    return main(["upscale", *args, "--device", "cpu", "-q"])


def test_skip_existing_never_upscales_its_own_outputs(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "photos"
    _write_photos(folder, 2)
    model = ["--model", str(tiny_model_dir)]
    assert _run(str(folder), *model, "--skip-existing") == 0
    first = sorted(p.name for p in folder.iterdir())
    assert first == ["img0.png", "img0_x4.png", "img1.png", "img1_x4.png"]
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    for _ in range(2):  # a re-run does nothing: no img0_x4_x4.png (x16), no x64
        assert _run(str(folder), *model, "--skip-existing") == 0
        assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    # --outscale names (NAME_x1.5.EXT) are outputs too, and so is a BMP output that carries no metadata
    assert _run(str(folder), *model, "--skip-existing", "--outscale", "1.5", "--format", "bmp") == 0
    assert _run(str(folder), *model, "--skip-existing", "--outscale", "1.5", "--format", "bmp") == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["img0.png", "img0_x1.5.bmp", "img0_x4.png", "img1.png", "img1_x1.5.bmp", "img1_x4.png"]


def test_outputs_are_recognised_by_name_beside_their_input(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "photos"
    _write_photos(folder, 1)
    # an output of an older srgan: named NAME_x4.EXT beside NAME.png, but no marker in its metadata
    Image.fromarray(make_photo(48, 40)).save(folder / "img0_x4.png")
    Image.fromarray(make_photo(12, 10)).save(folder / "scan_x2.png")  # NAME_xF without a NAME image: an input
    assert _run(str(folder), "--model", str(tiny_model_dir), "--skip-existing") == 0
    assert sorted(p.name for p in folder.iterdir()) == ["img0.png", "img0_x4.png", "scan_x2.png", "scan_x2_x4.png"]


def test_outputs_are_recognised_by_their_metadata_marker(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "photos"
    _write_photos(folder, 1)
    out = folder / "big"  # the output folder inside the input folder: the outputs have no input beside them
    model = ["--model", str(tiny_model_dir), "-o", str(out), "--skip-existing"]
    assert _run(str(folder), *model, "--format", "jpg") == 0
    assert _run(str(folder), *model) == 0
    with Image.open(out / "img0_x4.jpg") as image:
        assert str(image.getexif().get(0x0131)).startswith("srgan")  # EXIF Software
    with Image.open(out / "img0_x4.png") as image:
        assert str(image.getexif().get(0x0131)).startswith("srgan")
    (out / "img0_x4.png").rename(out / "renamed.png")  # the marker, not the name, says what it is
    assert _run(str(folder), *model) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0_x4.jpg", "img0_x4.png", "renamed.png"]
    # named explicitly, an output is an input like any other (to upscale it again on purpose)
    assert _run(str(out / "renamed.png"), "--model", str(tiny_model_dir)) == 0
    assert (out / "renamed_x4.png").is_file()


def test_a_symlink_loop_fails_alone(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (good,) = _write_photos(tmp_path, 1)
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    assert _run(str(good), str(loop), "--model", str(tiny_model_dir)) == 1
    assert Image.open(tmp_path / "img0_x4.png").size == (48, 40)
    err = capsys.readouterr().err
    assert f"srgan: {loop}: InvalidImageError: " in err and "symbolic link" in err
    assert "Traceback" not in err
    # in a folder too, the loop is reported (not skipped in silence) and the rest is written
    (tmp_path / "img0_x4.png").unlink()
    assert _run(str(tmp_path), "--model", str(tiny_model_dir), "--skip-existing") == 1
    assert Image.open(tmp_path / "img0_x4.png").size == (48, 40)
    assert f"srgan: {loop}: InvalidImageError: " in capsys.readouterr().err


_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "webp": (b"RIFF",),
    "tif": (b"II*\x00", b"MM\x00*"),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "bmp": (b"BM",),
    "gif": (b"GIF87a", b"GIF89a"),
    "ppm": (b"P6",),
    "avif": (b"\x00\x00\x00",),
}


def _magic_ok(path: Path, ext: str) -> bool:
    data = path.read_bytes()
    if ext == "avif":
        return data[4:12] == b"ftypavif"
    if ext == "webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return data.startswith(_MAGIC[ext])


@pytest.mark.parametrize("ext", sorted(_MAGIC))
def test_output_bytes_match_the_extension(tmp_path: Path, tiny_model_dir: Path, ext: str) -> None:
    Image.init()  # load every plugin, so that Image.SAVE lists them all
    if ext == "avif" and "AVIF" not in Image.SAVE:
        pytest.skip("this Pillow cannot write AVIF")
    (src,) = _write_photos(tmp_path, 1)
    dest = tmp_path / f"o.{ext}"
    assert _run(str(src), "-o", str(dest), "--model", str(tiny_model_dir)) == 0
    assert _magic_ok(dest, ext), dest.read_bytes()[:16]
    with Image.open(dest) as image:
        assert image.size == (48, 40)


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif", "bmp"])
def test_output_bytes_match_format(tmp_path: Path, tiny_model_dir: Path, fmt: str) -> None:
    (src,) = _write_photos(tmp_path, 1)
    assert _run(str(src), "-o", str(tmp_path / "out"), "--format", fmt, "--model", str(tiny_model_dir)) == 0
    assert _magic_ok(tmp_path / "out" / f"img0_x4.{fmt}", fmt)


def test_format_and_output_extension_must_agree(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (src,) = _write_photos(tmp_path, 1)
    model = ["--model", str(tiny_model_dir)]
    assert _run(str(src), "-o", str(tmp_path / "o.jpg"), "--format", "png", *model) == 2
    err = capsys.readouterr().err
    assert "srgan: ConfigError: " in err and "o.jpg" in err and "--format png" in err
    assert not (tmp_path / "o.jpg").exists() and not (tmp_path / "o.png").exists()
    assert _run(str(src), "-o", str(tmp_path / "o.jpeg"), "--format", "jpg", *model) == 0  # the same format
    assert _magic_ok(tmp_path / "o.jpeg", "jpeg")


def test_an_output_format_pillow_cannot_write_is_refused(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (src,) = _write_photos(tmp_path, 1)
    dest = tmp_path / "o.psd"  # Pillow reads Photoshop files but cannot write them
    assert _run(str(src), "-o", str(dest), "--model", str(tiny_model_dir)) == 2
    err = capsys.readouterr().err
    assert "srgan: ConfigError: " in err and ".psd" in err and ".png" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img0.png", "tiny-model"]


def test_float_tiff_stays_float(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "f.tif"
    Image.fromarray(np.linspace(0, 1, 120, dtype=np.float32).reshape(10, 12)).save(src)
    assert _run(str(src), "--model", str(tiny_model_dir)) == 0
    with Image.open(tmp_path / "f_x4.tif") as out:
        assert out.mode == "F" and out.size == (48, 40)
        expected = SRGAN.from_pretrained(tiny_model_dir).upscale(src)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


@pytest.mark.parametrize(
    "command",
    [["srgan.cli.train", "--recipe", "srresnet-x4", "--dry-run"], ["srgan", "models"]],
    ids=["srgan-train", "srgan"],
)
def test_a_closed_pipe_ends_without_a_traceback(command: list[str]) -> None:
    # `srgan-train --dry-run | head -1`: the reader is gone before the command writes (closed while it imports)
    proc = subprocess.Popen([sys.executable, "-m", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
