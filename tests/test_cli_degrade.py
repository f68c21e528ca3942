"""``srgan degrade``: file -> file, folder -> folder, seeded, errors exit 2 with a named error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan.cli import main


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny images: one thread is faster; restored after the test
    yield
    torch.set_num_threads(threads)


def _photo(path: Path, width: int = 32, height: int = 24, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_photo(width, height, seed)).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).copy()


def test_file_to_file_is_seeded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _photo(tmp_path / "photo.png")
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert main(["degrade", str(src), "-o", str(a), "--seed", "3"]) == 0
    assert "32x24 -> 8x6" in capsys.readouterr().out
    assert main(["degrade", str(src), "-o", str(b), "--seed", "3", "-q"]) == 0
    assert main(["degrade", str(src), "-o", str(c), "--seed", "4", "-q"]) == 0
    assert Image.open(a).size == (8, 6) and Image.open(a).mode == "RGB"
    assert np.array_equal(_pixels(a), _pixels(b))
    assert not np.array_equal(_pixels(a), _pixels(c))


def test_preset_and_scale(tmp_path: Path) -> None:
    src = _photo(tmp_path / "photo.png")
    out = tmp_path / "x2.png"
    assert main(["degrade", str(src), "-o", str(out), "--preset", "mild", "--scale", "2", "-q"]) == 0
    assert Image.open(out).size == (16, 12)
    with pytest.raises(SystemExit) as e:
        main(["degrade", str(src), "-o", str(out), "--preset", "heavy"])
    assert e.value.code == 2


def test_folder_to_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    _photo(src / "a.png", seed=1)
    _photo(src / "sub" / "b.jpg", seed=2)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    out = tmp_path / "out"
    assert main(["degrade", str(src), "-o", str(out), "-q"]) == 1  # one bad file among good ones
    assert "broken.png: InvalidImageError" in capsys.readouterr().err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "sub/b.png"]
    assert Image.open(out / "sub" / "b.png").size == (8, 6)


def test_bad_input_exits_2_with_a_named_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = _photo(tmp_path / "tiny.png", width=3, height=3)
    assert main(["degrade", str(tiny), "-o", str(tmp_path / "t.png")]) == 2
    assert "InvalidImageError" in capsys.readouterr().err
    assert main(["degrade", str(tmp_path / "missing.png"), "-o", str(tmp_path / "m.png")]) == 2
    assert "missing.png: FileNotFoundError" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["degrade", str(empty), "-o", str(tmp_path / "o")]) == 2
    two = [str(_photo(tmp_path / f"p{i}.png", seed=i)) for i in range(2)]
    assert main(["degrade", *two, "-o", str(tmp_path / "one.png")]) == 2
    assert "names one file" in capsys.readouterr().err
