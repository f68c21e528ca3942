"""Tests for srgan.training.config: paper defaults, JSON round trips, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from srgan.errors import ConfigError, SRGANError
from srgan.training.config import CONTENT_LOSSES, TrainConfig, parse_loss_spec


def test_defaults_follow_the_paper() -> None:
    c = TrainConfig()
    assert c.lr == 1e-4
    assert c.betas[0] == 0.9
    assert c.batch_size == 16
    assert c.crop_size == 96
    assert c.adv_weight == 1e-3
    assert c.content_loss == "vgg54"
    assert c.pretrain_loss == "mse"
    assert c.adv_loss == "bce"
    assert (c.scale, c.num_blocks, c.channels) == (4, 16, 64)
    assert (c.pretrain_steps, c.gan_steps) == (1_000_000, 200_000)
    assert c.lr_decay_at == [0.5] and c.lr_decay_factor == 0.1


def _custom() -> TrainConfig:
    return TrainConfig(
        scale=2,
        num_blocks=3,
        channels=8,
        phase="gan",
        crop_size=32,
        lr=3e-4,
        betas=(0.5, 0.99),
        lr_schedule="cosine",
        lr_decay_at=[0.25, 0.75],
        content_loss="l1:1+vgg22:0.006",
        adv_loss="relativistic",
        ema_decay=0.999,
        amp="none",
        vgg_weights="none",
        cache_images=False,
        seed=7,
    )


def test_json_round_trip_through_a_file(tmp_path: Path) -> None:
    c = _custom()
    path = tmp_path / "config.json"
    text = c.to_json(path)
    assert path.read_text() == text
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write cleaned up
    back = TrainConfig.from_json(path)
    assert back == c
    assert back.betas == (0.5, 0.99) and isinstance(back.betas, tuple)
    assert TrainConfig.from_json(str(path)) == c


def test_json_round_trip_through_a_string() -> None:
    c = _custom()
    text = c.to_json()
    data = json.loads(text)
    assert data["betas"] == [0.5, 0.99] and data["ema_decay"] == 0.999 and data["content_loss"] == "l1:1+vgg22:0.006"
    assert TrainConfig.from_json(text) == c
    assert TrainConfig.from_json("  " + text) == c
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert TrainConfig.from_json(TrainConfig().to_json()) == TrainConfig()


def test_from_json_partial_object_keeps_defaults() -> None:
    c = TrainConfig.from_json('{"lr": 0.0002, "crop_size": 128}')
    assert c.lr == 2e-4 and c.crop_size == 128
    assert c.batch_size == TrainConfig().batch_size


def test_from_json_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json(bad)
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json('{"lr": }')
    arr = tmp_path / "list.json"
    arr.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_json(arr)


def test_crop_not_divisible_by_scale_names_both() -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig(crop_size=98, scale=4)
    msg = str(info.value)
    assert "crop_size" in msg and "98" in msg
    assert "scale" in msg and "4" in msg
    TrainConfig(crop_size=96, scale=8)  # 96 = 12 * 8 is fine


def test_unknown_field_is_named() -> None:
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_json('{"learning_rate": 0.1}')


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phase", "finetune"),
        ("content_loss", "vgg99"),
        ("content_loss", "l1:heavy"),
        ("pretrain_loss", "+"),
        ("scale", 3),
        ("crop_size", 8),
        ("batch_size", 0),
        ("lr", 0.0),
        ("betas", (0.9, 1.0)),
        ("lr_schedule", "linear"),
        ("lr_decay_at", [1.5]),
        ("adv_loss", "hinge"),
        ("vgg_weights", "random"),
        ("degradation", "jpeg"),
        ("ema_decay", 1.0),
        ("amp", "fp8"),
        ("ckpt_every", -1),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value})
    assert field in str(info.value) or repr(value) in str(info.value)
    assert isinstance(info.value, SRGANError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Values as they arrive from JSON or `srgan-train --set FIELD=VALUE` with the wrong type.
        ("crop_size", "abc"),
        ("pretrain_steps", 1.5),
        ("seed", "x"),
        ("lr", "fast"),
        ("betas", 0.9),
        ("betas", [0.9]),
        ("lr_decay_at", ["a"]),
        ("lr_decay_at", 0.5),
        ("pretrain_loss", 1),
        ("ema_decay", "high"),
        ("num_blocks", True),
    ],
)
def test_wrongly_typed_values_raise_config_error(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig.from_dict({field: value})


def test_validate_rechecks_a_mutated_config() -> None:
    c = TrainConfig()
    c.phase = "bogus"
    with pytest.raises(ConfigError, match="phase"):
        c.validate()


def test_parse_loss_spec() -> None:
    assert parse_loss_spec("vgg54") == {"vgg54": 1.0}
    assert parse_loss_spec("l1:1.0+vgg54:0.006") == {"l1": 1.0, "vgg54": 0.006}
    assert parse_loss_spec(" mse : 0.5 + vgg22 ") == {"mse": 0.5, "vgg22": 1.0}
    assert parse_loss_spec("l1+") == {"l1": 1.0}
    for name in CONTENT_LOSSES:
        assert parse_loss_spec(name) == {name: 1.0}


@pytest.mark.parametrize("spec", ["", "+", "vgg19", "l1:x", "l2:1", "l1:1+ssim:1"])
def test_parse_loss_spec_rejects(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_loss_spec(spec)


@pytest.mark.parametrize(("field", "value"), [("num_blocks", 257), ("channels", 1025)])
def test_architecture_bounds_match_the_generators(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})
