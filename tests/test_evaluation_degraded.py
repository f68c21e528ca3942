"""Evaluation on degraded inputs (``degradation=``, ``srgan-eval --degradation``) and on real LR images without
ground truth (``evaluate_no_reference``, ``srgan-eval --no-reference``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from srgan import SRGAN
from srgan.degradation import gaussian_blur, imresize, quantize
from srgan.errors import ConfigError
from srgan.evaluation import (
    BICUBIC,
    NIQE_NOTE,
    evaluate,
    evaluate_no_reference,
    main,
    parse_degradation,
    protocol_lr,
    score,
)
from srgan.niqe import NiqeParams, niqe


def _hr(width: int = 48, height: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(make_photo(width, height, seed)).permute(2, 0, 1)[None].double() / 255


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def _pillow_jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality, subsampling=2)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def test_real_fixed_is_deterministic_seeded_by_index_and_on_the_8_bit_grid() -> None:
    hr = _hr()
    a = protocol_lr(hr, scale=4, degradation="real-fixed", index=3)
    assert a.shape == (1, 3, 10, 12) and a.dtype == torch.float64
    assert torch.equal(a, protocol_lr(hr.clone(), scale=4, degradation="real-fixed", index=3))
    assert not torch.equal(a, protocol_lr(hr, scale=4, degradation="real-fixed", index=4))
    assert torch.equal(a * 255, (a * 255).round())
    assert not torch.equal(a, protocol_lr(hr, scale=4))


def test_real_fixed_is_the_documented_chain() -> None:
    hr = _hr(64, 48)
    lr = quantize(imresize(gaussian_blur(hr, 1.2), scale=0.25))
    noise = torch.randn(lr.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * (5 / 255)
    expected = _pillow_jpeg(_u8(quantize(lr + noise)), 60)
    assert np.array_equal(_u8(protocol_lr(hr, scale=4, degradation="real-fixed", index=7)), expected)


@pytest.mark.parametrize("quality", [10, 75])
def test_jpeg_is_a_pillow_round_trip_of_the_bicubic_lr(quality: int) -> None:
    hr = _hr(64, 48)
    clean = protocol_lr(hr, scale=4)
    assert torch.equal(clean, quantize(imresize(hr, scale=0.25)))  # the default is the clean protocol
    jpeg = protocol_lr(hr, scale=4, degradation=f"jpeg:{quality}")
    assert np.array_equal(_u8(jpeg), _pillow_jpeg(_u8(clean), quality))
    assert not torch.equal(jpeg, clean)


def test_noise_is_seeded_gaussian_of_the_given_sigma() -> None:
    hr = torch.full((1, 3, 256, 256), 0.5, dtype=torch.float64)
    clean = protocol_lr(hr, scale=4)
    assert torch.equal(protocol_lr(hr, scale=4, degradation="noise:0", index=2), clean)
    noisy = protocol_lr(hr, scale=4, degradation="noise:5", index=2)
    assert torch.equal(noisy, protocol_lr(hr, scale=4, degradation="noise:5", index=2))
    assert not torch.equal(noisy, protocol_lr(hr, scale=4, degradation="noise:5", index=1))
    std = float((noisy - clean).std() * 255)
    assert 4.6 < std < 5.4  # 5 levels, plus rounding
    assert not torch.equal(noisy[:, 0], noisy[:, 1])  # colour noise: one value per channel


def test_specs_are_checked_and_canonical(tmp_path: Path) -> None:
    assert parse_degradation("Real-Fixed") == "real-fixed"
    assert parse_degradation("jpeg:060") == "jpeg:60"
    assert parse_degradation("noise:5.0") == "noise:5"
    for bad in ["", "gauss", "jpeg", "jpeg:0", "jpeg:101", "jpeg:50.5", "jpeg:q", "noise:-1", "noise:x", "noise:nan"]:
        with pytest.raises(ConfigError, match=r"'jpeg:Q' with Q in 1\.\.100"):
            protocol_lr(_hr(), scale=4, degradation=bad)
    with pytest.raises(ConfigError, match="degradation"):
        parse_degradation(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="jpeg:0"):  # checked before anything is loaded or read
        evaluate(["no-such-model"], [tmp_path / "missing"], degradation="jpeg:0")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "Tiny"
    folder.mkdir()
    for i, name in enumerate(["a.png", "b.png"]):
        Image.fromarray(make_photo(48, 40, seed=i + 1)).save(folder / name)
    return folder


def test_evaluate_scores_the_degraded_lr_against_the_clean_hr(
    dataset: Path, tiny_model: SRGAN, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = evaluate([tiny_model], [dataset], degradation="jpeg:50", progress=False)
    assert report.degradation == "jpeg:50" and report.to_dict()["degradation"] == "jpeg:50"
    hr = _hr(48, 40, seed=2)  # b.png, index 1
    lr = protocol_lr(hr, scale=4, degradation="jpeg:50", index=1)
    bicubic = score(quantize(imresize(lr, scale=4.0)), hr, scale=4)
    assert report.row(BICUBIC, "Tiny").images[1].psnr == pytest.approx(bicubic[0], abs=1e-9)
    sr = quantize(tiny_model.upscale_tensor(lr.float()).double())
    assert report.row("model0", "Tiny").images[1].ssim == pytest.approx(score(sr, hr, scale=4)[1], abs=1e-6)
    clean = evaluate([], [dataset], progress=False)
    assert clean.degradation == BICUBIC
    assert report.row(BICUBIC, "Tiny").psnr != clean.row(BICUBIC, "Tiny").psnr
    table = report.format_table().splitlines()
    assert table[0] == "| model | dataset | LR | images | PSNR (dB) | SSIM | NIQE |"
    assert table[2].startswith("| bicubic | Tiny | jpeg:50 | 2 |")

    out = tmp_path / "r.json"
    assert main(["--data", str(dataset), "--degradation", "noise:5", "--json", str(out)]) == 0
    assert "| bicubic | Tiny | noise:5 | 2 |" in capsys.readouterr().out
    assert json.loads(out.read_text())["degradation"] == "noise:5"
    assert main(["--data", str(dataset), "--degradation", "jpeg:0"]) == 2
    assert "1..100" in capsys.readouterr().err


@pytest.fixture
def lr_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "real"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(make_photo(16, 12, seed=1)).save(folder / "one.png")
    Image.fromarray(make_photo(12, 10, seed=2)).convert("RGBA").save(folder / "sub" / "two.png")
    return folder


def test_no_reference_writes_sheets_and_a_row_per_image_and_method(
    lr_folder: Path, tiny_model: SRGAN, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = tiny_model.save_pretrained(tmp_path / "second")
    out = tmp_path / "out"
    models = ["--model", str(tiny_model_dir), "--model", str(second)]
    assert main(["--no-reference", str(lr_folder), *models, "-o", str(out), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "NIQE skipped" in captured.err
    data = json.loads((out / "report.json").read_text())
    methods = [BICUBIC, str(tiny_model_dir), str(second)]
    assert data["methods"] == methods and data["niqe"] is False and data["note"] == NIQE_NOTE
    assert [(r["image"], r["model"]) for r in data["rows"]] == [
        (image, m) for image in ["one.png", "sub/two.png"] for m in methods
    ]
    assert all(r["niqe"] is None for r in data["rows"])
    model = SRGAN.from_pretrained(tiny_model_dir, device="cpu", dtype="fp32")
    for image, (w, h) in {"one.png": (16, 12), "sub/two.png": (12, 10)}.items():
        sheet = Image.open(data["sheets"][image])
        assert Path(data["sheets"][image]) == out / "sheets" / Path(image).with_suffix(".png")
        assert sheet.size == ((1 + 2) * 4 * w, 4 * h + 28)  # panels of the x4 output, labels below
        # The panels are the bicubic and the model's upscaling of the input (alpha dropped), pixel for pixel.
        lr = torch.from_numpy(np.array(Image.open(lr_folder / image).convert("RGB"))).permute(2, 0, 1)[None] / 255
        bicubic = _u8(quantize(imresize(lr.double(), scale=4.0)))
        assert np.array_equal(np.asarray(sheet)[: 4 * h, : 4 * w], bicubic)
        assert np.array_equal(np.asarray(sheet)[: 4 * h, 4 * w : 8 * w], _u8(model.upscale_tensor(lr.float())))
    assert "| one.png | bicubic | 64x48 | - |" in captured.out


def test_no_reference_niqe(tmp_path: Path, tiny_model: SRGAN, niqe_params_file: Path) -> None:
    folder = tmp_path / "real"
    folder.mkdir()
    Image.fromarray(make_photo(52, 29, seed=3)).save(folder / "x.png")
    params = NiqeParams.from_file(niqe_params_file)
    report = evaluate_no_reference([tiny_model], folder, niqe_params=params, progress=False)
    assert report.niqe_measured and report.sheets == {}  # no out_dir: nothing written
    assert [(r.model, r.width, r.height) for r in report.rows] == [(BICUBIC, 208, 116), ("model0", 208, 116)]
    lr = torch.from_numpy(make_photo(52, 29, seed=3)).permute(2, 0, 1)[None].double() / 255
    expected = niqe(quantize(imresize(lr, scale=4.0))[0], params=params, crop_border=4)
    assert report.rows[0].niqe == pytest.approx(expected, abs=1e-9)
    assert report.means()["model0"] == report.rows[1].niqe and np.isfinite(report.rows[1].niqe)


def test_no_reference_usage_errors(lr_folder: Path, tmp_path: Path) -> None:
    for args in (
        ["--no-reference", str(lr_folder)],  # no -o
        ["--no-reference", str(lr_folder), "-o", str(tmp_path), "--degradation", "jpeg:50"],
        ["--no-reference", str(lr_folder), "-o", str(tmp_path), "--data", str(lr_folder)],
        [],  # neither --data nor --no-reference
    ):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
