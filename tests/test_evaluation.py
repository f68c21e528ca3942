from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan import SRGAN, Generator, weights
from srgan.degradation import imresize
from srgan.errors import ConfigError, DataError
from srgan.evaluation import BICUBIC, HR, evaluate, main
from srgan.niqe import NiqeParams, niqe

DATA = Path(os.environ.get("SRGAN_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _y_psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """PSNR on BT.601 Y of two (H, W, 3) uint8 images, border removed, written out independently of srgan."""

    def y(x: np.ndarray) -> np.ndarray:
        x = x[border:-border, border:-border].astype(np.float64) / 255
        return 16 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]

    mse = np.mean((y(a) - y(b)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _matlab_resize_u8(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB imresize of a (H, W, 3) uint8 image, rounded back to uint8."""
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1).to(torch.float64)
    out = imresize(t, scale=scale).clamp(0, 255).round()
    return out.permute(1, 2, 0).numpy().astype(np.uint8)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "Tiny"
    folder.mkdir()
    Image.fromarray(make_photo(50, 42, seed=1)).save(folder / "a.png")  # not a multiple of 4: modcrop
    Image.fromarray(make_photo(40, 36, seed=2)[..., 0]).save(folder / "b.png")  # mode L: read as RGB
    return folder


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return SRGAN(Generator(num_blocks=1, channels=8)).save_pretrained(tmp_path / "tiny")


def test_rows_and_bicubic_psnr_match_an_independent_computation(dataset: Path, model_dir: Path) -> None:
    report = evaluate([str(model_dir)], [dataset], device="cpu", progress=False)
    assert [(r.model, r.dataset, r.n_images) for r in report.rows] == [
        (BICUBIC, "Tiny", 2),
        (str(model_dir), "Tiny", 2),
    ]
    bicubic = report.row(BICUBIC, "Tiny")
    assert [im.name for im in bicubic.images] == ["a.png", "b.png"]
    expected = []
    for name in ("a.png", "b.png"):
        hr = np.asarray(Image.open(dataset / name).convert("RGB"))
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        sr = _matlab_resize_u8(_matlab_resize_u8(hr, 0.25), 4.0)
        expected.append(_y_psnr(sr, hr, 4))
    assert [im.psnr for im in bicubic.images] == pytest.approx(expected, abs=1e-9)
    assert bicubic.psnr == pytest.approx(np.mean(expected), abs=1e-9)
    assert bicubic.niqe is None and all(im.niqe is None for im in bicubic.images)
    assert bicubic.ssim is not None and 0 < bicubic.ssim < 1

    # The model row: fp32 upscaling of the 8-bit LR, rounded to 8 bits.
    model = SRGAN.from_pretrained(model_dir, device="cpu", dtype="fp32")
    hr = np.asarray(Image.open(dataset / "a.png").convert("RGB"))[:40, :48]
    lr = torch.from_numpy(_matlab_resize_u8(hr, 0.25)).permute(2, 0, 1)[None].float() / 255
    sr = (model.upscale_tensor(lr)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    row = report.row(str(model_dir), "Tiny")
    assert row.images[0].psnr == pytest.approx(_y_psnr(sr, hr, 4), abs=1e-6)


def test_niqe_columns_and_hr_row(dataset: Path, tmp_path: Path, niqe_params_file: Path, tiny_model: SRGAN) -> None:
    big = tmp_path / "Big"
    big.mkdir()
    for i in range(2):
        Image.fromarray(make_photo(208, 116, seed=i)).save(big / f"{i}.png")
    params = NiqeParams.from_file(niqe_params_file)
    report = evaluate([tiny_model], [big], niqe_params=params, include_hr=True, progress=False)
    assert [r.model for r in report.rows] == [BICUBIC, "model0", HR]
    hr_row = report.row(HR, "Big")
    assert hr_row.psnr is None and hr_row.ssim is None and hr_row.niqe is not None
    hr = np.asarray(Image.open(big / "1.png"))[:116, :208]
    assert hr_row.images[1].niqe == pytest.approx(niqe(hr, params=params, crop_border=4), abs=1e-9)
    sr = _matlab_resize_u8(_matlab_resize_u8(hr, 0.25), 4.0)
    assert report.row(BICUBIC, "Big").images[1].niqe == pytest.approx(niqe(sr, params=params, crop_border=4))
    assert all(r.niqe is not None and np.isfinite(r.niqe) for r in report.rows)
    table = report.format_table()
    assert "| HR | Big | bicubic | 2 | - | - |" in table


def test_main_prints_table_and_writes_json(
    dataset: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res" / "report.json"
    args = ["--model", str(model_dir), "--data", str(dataset), "--device", "cpu", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "| model | dataset | LR | images | PSNR (dB) | SSIM | NIQE |"
    assert len(printed.strip().splitlines()) == 4  # header, rule, bicubic, model
    data = json.loads(out.read_text())
    assert data["scale"] == 4 and data["crop_border"] == 4
    assert [r["model"] for r in data["rows"]] == [BICUBIC, str(model_dir)]
    first = data["rows"][0]
    assert first["n_images"] == 2 and first["niqe"] is None
    assert [im["name"] for im in first["images"]] == ["a.png", "b.png"]
    assert first["psnr"] == pytest.approx(np.mean([im["psnr"] for im in first["images"]]))
    assert f"{first['psnr']:.2f}" in printed


def test_self_ensemble_rows(dataset: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = evaluate([str(model_dir)], [dataset], device="cpu", progress=False, self_ensemble=True)
    name = f"{model_dir} (self-ensemble)"
    assert [r.model for r in report.rows] == [BICUBIC, name]
    model = SRGAN.from_pretrained(model_dir, device="cpu", dtype="fp32")
    hr = np.asarray(Image.open(dataset / "a.png").convert("RGB"))[:40, :48]
    lr = torch.from_numpy(_matlab_resize_u8(hr, 0.25)).permute(2, 0, 1)[None].float() / 255
    sr = (model.upscale_tensor(lr, self_ensemble=True)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert report.row(name, "Tiny").images[0].psnr == pytest.approx(_y_psnr(sr, hr, 4), abs=1e-6)
    assert main(["--model", str(model_dir), "--data", str(dataset), "--device", "cpu", "--self-ensemble"]) == 0
    assert "(self-ensemble)" in capsys.readouterr().out


def test_main_usage_and_data_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--data", str(tmp_path / "empty")]) == 2
    assert "holds no image" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--data", str(tmp_path), "--include-hr"])
    assert exc.value.code == 2


def test_evaluate_refuses_bad_configurations(dataset: Path, tiny_model: SRGAN) -> None:
    with pytest.raises(ConfigError, match="niqe_params"):
        evaluate([], [dataset], include_hr=True)
    with pytest.raises(ConfigError, match="x4"):
        evaluate([tiny_model], [dataset], scale=2)
    with pytest.raises(DataError):
        evaluate([], [dataset / "a.png"])


def test_reference_bicubic_numbers() -> None:
    """Bicubic x4 of the reference implementation (BasicSR): PSNR / SSIM / NIQE on Set5 and Set14."""
    folders = [DATA / "Set5", DATA / "Set14"]
    if not all(f.is_dir() for f in folders) or not (DATA / "niqe_pris_params.npz").is_file():
        pytest.skip(f"reference data not found in {DATA} (set SRGAN_TEST_DATA)")
    report = evaluate([], folders, niqe_params=DATA / "niqe_pris_params.npz", include_hr=True, progress=False)
    expected = {"Set5": (5, 28.43, 0.8113, 8.51), "Set14": (14, 26.09, 0.7050, 7.71)}
    for name, (n, p, s, q) in expected.items():
        row = report.row(BICUBIC, name)
        assert row.n_images == n
        assert row.psnr == pytest.approx(p, abs=0.01)
        assert row.ssim == pytest.approx(s, abs=0.001)
        assert row.niqe == pytest.approx(q, abs=0.05)
    assert report.row(HR, "Set14").niqe == pytest.approx(4.92, abs=0.05)


@pytest.mark.parametrize("entry", [e for e in weights.list_models() if e.file], ids=lambda e: e.name)
def test_packaged_models_reproduce_their_published_figures(entry: weights.WeightsEntry) -> None:
    """The PSNR/SSIM (and NIQE) in the registry and docs/models.md are what srgan-eval measures on the packaged file."""
    folders = [DATA / "Set5", DATA / "Set14"]
    if not all(f.is_dir() for f in folders) or not (DATA / "niqe_pris_params.npz").is_file():
        pytest.skip(f"reference data not found in {DATA} (set SRGAN_TEST_DATA)")
    reports = {}
    for key, claimed in entry.metrics.items():
        dataset, metric = key.split("_", 1)
        protocol = "bicubic"
        if metric.startswith("real_fixed_"):  # e.g. "Set14_real_fixed_psnr_y": the real-fixed protocol
            protocol, metric = "real-fixed", metric.removeprefix("real_fixed_")
        if protocol not in reports:
            reports[protocol] = evaluate(
                [entry.name],
                folders,
                niqe_params=DATA / "niqe_pris_params.npz",
                include_bicubic=False,
                progress=False,
                degradation=protocol,
            )
        row = reports[protocol].row(entry.name, dataset)
        measured = {"psnr_y": row.psnr, "ssim_y": row.ssim, "niqe": row.niqe}[metric]
        tolerance = {"psnr_y": 0.006, "ssim_y": 0.0006, "niqe": 0.006}[metric]  # figures are rounded
        assert measured == pytest.approx(claimed, abs=tolerance), key
