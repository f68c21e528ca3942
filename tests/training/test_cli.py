"""Tests for srgan.cli.train (``srgan-train`` / ``python -m srgan.train``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srgan import SRGAN
from srgan.cli.train import build_parser, main
from srgan.training.config import TrainConfig

TINY = [
    "--set",
    "num_blocks=1",
    "--set",
    "channels=8",
    "--set",
    'vgg_weights="none"',
    "--set",
    "amp=none",
    "--crop-size",
    "16",
    "--batch-size",
    "2",
    "--device",
    "cpu",
    "--no-progress",
]


def _printed_config(stdout: str) -> dict[str, object]:
    start = stdout.index("resolved config:\n") + len("resolved config:\n")
    end = stdout.index("\n}\n", start) + 2
    data: dict[str, object] = json.loads(stdout[start:end])
    return data


def test_end_to_end_run(tiny_image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Both phases with the paper's networks and default losses (random VGG features instead of a download).
    out = tmp_path / "run"
    rc = main(["--train-dir", str(tiny_image_dir), "--output-dir", str(out), "--steps", "2", *TINY])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    printed = _printed_config(captured.out)
    assert printed["num_blocks"] == 1 and printed["channels"] == 8 and printed["vgg_weights"] == "none"
    assert printed["pretrain_steps"] == printed["gan_steps"] == 2 and printed["phase"] == "both"
    assert printed["content_loss"] == "vgg54" and printed["crop_size"] == 16 and printed["batch_size"] == 2
    saved = TrainConfig.from_json(out / "config.json")
    assert saved == TrainConfig.from_dict(printed)
    assert "done: steps {'pretrain': 2, 'gan': 2}" in captured.out
    assert torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["phase"] == "gan"
    model = SRGAN.from_pretrained(out, device="cpu", dtype="fp32")
    assert model.meta["phase"] == "gan" and model.generator.config.num_blocks == 1


def test_options_and_config_file_resolve_into_the_config(
    tiny_image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "base.json"
    TrainConfig(lr=5e-4, seed=9, log_every=7, scale=2).to_json(cfg_file)
    out = tmp_path / "run"
    rc = main(
        [
            "--train-dir",
            str(tiny_image_dir),
            "--output-dir",
            str(out),
            "--config",
            str(cfg_file),
            "--phase",
            "pretrain",
            "--steps",
            "1",
            "--pretrain-loss",
            "l1",
            "--lr",
            "2e-4",
            "--adv-weight",
            "5e-3",
            "--fm-weight",
            "0.05",
            "--set",
            "ema_decay=0.99",
            "--set",
            "lr_decay_at=[0.25, 0.75]",
            "--set",
            "val_every=0",
            *TINY,
        ]
    )
    assert rc == 0
    c = TrainConfig.from_json(out / "config.json")
    assert (c.phase, c.pretrain_steps, c.gan_steps) == ("pretrain", 1, TrainConfig().gan_steps)
    assert c.lr == 2e-4  # the option beats the file
    assert (c.seed, c.log_every, c.scale) == (9, 7, 2)  # the file beats the defaults
    assert c.pretrain_loss == "l1" and c.ema_decay == 0.99 and c.lr_decay_at == [0.25, 0.75]
    assert (c.adv_weight, c.fm_weight) == (5e-3, 0.05)
    assert c == TrainConfig.from_dict(_printed_config(capsys.readouterr().out))


def test_resume_continues_from_the_saved_config(
    tiny_image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    common = ["--train-dir", str(tiny_image_dir), "--output-dir", str(out)]
    assert main([*common, "--phase", "pretrain", "--steps", "2", "--set", "seed=5", "--set", "log_every=1", *TINY]) == 0
    capsys.readouterr()
    assert main([*common, "--resume", "--steps", "3", "--device", "cpu", "--no-progress"]) == 0
    assert "done: steps {'pretrain': 3, 'gan': 0}" in capsys.readouterr().out
    c = TrainConfig.from_json(out / "config.json")
    assert (c.seed, c.num_blocks, c.phase, c.pretrain_steps) == (5, 1, "pretrain", 3)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # the resumed run added only the third step


def test_help_mentions_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--train-dir", "--output-dir", "--resume", "--set", "from_pretrained"):
        assert option in text


def test_python_dash_m_srgan_train_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "srgan.train", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "--train-dir" in proc.stdout and "srgan-train" in proc.stdout


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("crop_size=abc", "crop_size"),
        ("crop_size=98", "not divisible by scale"),
        ("learning_rate=0.1", "learning_rate"),
        ("content_loss=vgg99", "vgg99"),
        ("betas=0.9", "betas"),
        ('phase="later"', "phase"),
    ],
)
def test_bad_set_value_exits_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, expected: str
) -> None:
    rc = main(["--train-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--set", setting])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("srgan-train: error:") and expected in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was started


def test_set_without_equals_sign_exits(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--train-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--set", "num_blocks"])
    assert "FIELD=VALUE" in str(info.value.code)


def test_missing_training_folder_exits_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--train-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "out"), *TINY])
    assert rc == 2
    assert "nowhere" in capsys.readouterr().err


def test_missing_required_options_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--output-dir", "x"])
    assert info.value.code == 2
    assert "--train-dir" in capsys.readouterr().err
    assert build_parser().prog == "srgan-train"


def test_old_module_path_still_works_with_a_deprecation_warning() -> None:
    import srgan.training.cli as old

    with pytest.warns(DeprecationWarning, match="srgan.cli.train"):
        old_main = old.main
    assert old_main is main
    with pytest.raises(AttributeError):
        _ = old.no_such_name


def test_an_existing_run_is_refused_without_resume_or_overwrite(
    tiny_image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    common = ["--train-dir", str(tiny_image_dir), "--output-dir", str(out), "--phase", "pretrain", *TINY]
    assert main([*common, "--steps", "2", "--set", "log_every=1"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    # The same command with other settings and neither flag: exit 2, a named error, nothing touched.
    assert main([*common, "--steps", "4", "--lr", "1e-2"]) == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # --overwrite starts over: one run's metrics only.
    assert main([*common, "--steps", "3", "--set", "log_every=1", "--overwrite"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert TrainConfig.from_json(out / "config.json").pretrain_steps == 3
