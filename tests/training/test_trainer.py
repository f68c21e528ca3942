"""Tests for srgan.training.trainer: steps, learning, exact resume, outputs, failures, EMA, init weights."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import srgan.training.trainer as trainer_module
from srgan import SRGAN
from srgan.errors import CheckpointError, ConfigError, TrainingDivergedError
from srgan.losses import pixel_loss as real_pixel_loss
from srgan.models import Discriminator, Generator
from srgan.pipeline import cpu_has_native_bf16
from srgan.training import TrainConfig, Trainer
from srgan.training.trainer import STATE_NAME
from srgan.weights import load_checkpoint

MakeImage = Callable[..., Path]
State = dict[str, torch.Tensor]

TRAIN_STEP = Trainer._train_step  # the real one, to put back after a test's patch


def tiny_config(**overrides: Any) -> TrainConfig:
    """A config that trains in milliseconds: 1 block, 8 channels, 16 px crops, batch 2, fp32, no VGG download."""
    base: dict[str, Any] = dict(
        num_blocks=1,
        channels=8,
        crop_size=16,
        batch_size=2,
        phase="pretrain",
        pretrain_steps=4,
        gan_steps=4,
        lr=1e-3,
        vgg_weights="none",
        content_loss="mse",
        amp="none",
        val_every=0,
        ckpt_every=1000,
        log_every=1,
    )
    base.update(overrides)
    return TrainConfig(**base)


def make_trainer(config: TrainConfig, train_dir: Path, out: Path, **kw: Any) -> Trainer:
    return Trainer(config, train_dirs=[train_dir], output_dir=out, device="cpu", progress=False, **kw)


def snapshot(module: torch.nn.Module) -> State:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_states_equal(a: State, b: State) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def states_differ(a: State, b: State) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def read_metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def first_batch(trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(trainer._batches(trainer.phase)))


def small_discriminator() -> Discriminator:
    return Discriminator(channels=4, hidden=16)


@pytest.fixture(autouse=True)
def _small_discriminator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the paper's 19 M-parameter discriminator for a narrow one: GAN steps run 10x faster and the
    training checkpoints (which hold the discriminator) shrink from 94 MB to 100 kB."""
    monkeypatch.setattr(trainer_module, "Discriminator", small_discriminator)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, phase: str, step: int) -> None:
    """Make the training loop raise KeyboardInterrupt (as Ctrl-C would) when it is about to run ``step + 1``."""
    original = Trainer._train_step

    def train_step(self: Trainer, lr_img: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        if self.phase == phase and self.step == step:
            raise KeyboardInterrupt
        return original(self, lr_img, hr)

    monkeypatch.setattr(Trainer, "_train_step", train_step)


def count_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record (phase, step) of every training step that runs."""
    calls: list[tuple[str, int]] = []
    original = Trainer._train_step

    def train_step(self: Trainer, lr_img: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        calls.append((self.phase, self.step))
        return original(self, lr_img, hr)

    monkeypatch.setattr(Trainer, "_train_step", train_step)
    return calls


# ---------------------------------------------------------------------------------------------------------------
# Single steps and learning


def test_pretrain_step_updates_only_the_generator(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(tiny_config(), tiny_image_dir, tmp_path / "out")
    g0, d0 = snapshot(tr.generator), snapshot(tr.discriminator)
    logs = tr._train_step(*first_batch(tr))
    assert math.isfinite(logs["loss"]) and logs["loss"] > 0
    assert logs["loss_mse"] == pytest.approx(logs["loss"])
    assert states_differ(g0, snapshot(tr.generator))
    assert_states_equal(d0, snapshot(tr.discriminator))


def test_gan_step_updates_generator_and_discriminator(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The paper's discriminator here: the real networks work together at 16 px crops.
    monkeypatch.setattr(trainer_module, "Discriminator", Discriminator)
    tr = make_trainer(tiny_config(phase="gan", lr=1e-4), tiny_image_dir, tmp_path / "out")
    assert tr.phase == "gan"
    g0, d0 = snapshot(tr.generator), snapshot(tr.discriminator)
    logs = tr._train_step(*first_batch(tr))
    for key in ("loss", "loss_content", "loss_adv", "loss_d", "loss_mse"):
        assert math.isfinite(logs[key]), key
    assert logs["loss"] == pytest.approx(logs["loss_content"] + 1e-3 * logs["loss_adv"], rel=1e-5)
    assert logs["loss_d"] > 0
    assert states_differ(g0, snapshot(tr.generator))
    assert states_differ(d0, snapshot(tr.discriminator))
    assert all(p.requires_grad for p in tr.discriminator.parameters())  # re-enabled after the G update


def test_relativistic_gan_step(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(tiny_config(phase="gan", adv_loss="relativistic"), tiny_image_dir, tmp_path / "out")
    g0, d0 = snapshot(tr.generator), snapshot(tr.discriminator)
    logs = tr._train_step(*first_batch(tr))
    assert math.isfinite(logs["loss"]) and math.isfinite(logs["loss_d"])
    assert states_differ(g0, snapshot(tr.generator)) and states_differ(d0, snapshot(tr.discriminator))


def test_feature_matching_term_is_added_to_the_generator_loss(tiny_image_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(phase="gan", content_loss="l1", adv_loss="relativistic", adv_weight=5e-3, fm_weight=0.5)
    tr = make_trainer(cfg, tiny_image_dir, tmp_path / "out")
    g0, d0 = snapshot(tr.generator), snapshot(tr.discriminator)
    logs = tr._train_step(*first_batch(tr))
    assert logs["loss_fm"] > 0
    expected = logs["loss_content"] + 5e-3 * logs["loss_adv"] + 0.5 * logs["loss_fm"]
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert states_differ(g0, snapshot(tr.generator)) and states_differ(d0, snapshot(tr.discriminator))
    assert all(p.requires_grad for p in tr.discriminator.parameters())
    assert "feature matching" in tr._gan_loss_text()


def test_feature_matching_alone_pulls_the_generator_towards_the_hr_features(
    tiny_image_dir: Path, tmp_path: Path
) -> None:
    # With no content and no adversarial weight, the generator's only gradient is the feature-matching one: the
    # generator step must change the generator, and the term must fall when the discriminator is held fixed.
    cfg = tiny_config(phase="gan", content_loss="l1:0", adv_weight=0.0, fm_weight=1.0, lr=1e-3)
    tr = make_trainer(cfg, tiny_image_dir, tmp_path / "out")
    d0 = snapshot(tr.discriminator)
    tr.opt_d.step = lambda *args, **kwargs: None  # type: ignore[method-assign]  # the discriminator stays fixed
    batch = first_batch(tr)
    fm = [tr._train_step(*batch)["loss_fm"] for _ in range(15)]
    assert fm[-1] < 0.8 * fm[0]
    weights = {k: v for k, v in snapshot(tr.discriminator).items() if "running" not in k and "batches" not in k}
    assert_states_equal({k: d0[k] for k in weights}, weights)


def test_pretrain_loss_decreases_on_one_image(tmp_path: Path, make_image: MakeImage) -> None:
    train = tmp_path / "one"
    make_image(train / "only.png", 48, 48, seed=4)
    cfg = tiny_config(pretrain_steps=40, pretrain_loss="l1", lr=1e-3, pretrain_lr_schedule="constant")
    out = tmp_path / "out"
    result = make_trainer(cfg, train, out).fit()
    assert result.steps == {"pretrain": 40, "gan": 0}
    losses = [r["loss"] for r in read_metrics(out) if "loss" in r]
    assert len(losses) == 40 and all("loss_l1" in r for r in read_metrics(out))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # Each step sees new random crops, so the logged loss is noisy; it still drops clearly.
    assert last < 0.85 * first, f"loss did not decrease: {first:.4f} -> {last:.4f}"


def test_pretrain_overfits_a_fixed_batch(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(
        tiny_config(pretrain_loss="l1", lr=1e-3, pretrain_lr_schedule="constant", pretrain_steps=30),
        tiny_image_dir,
        tmp_path / "out",
    )
    batch = first_batch(tr)
    losses = [tr._train_step(*batch)["loss"] for _ in range(30)]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, f"loss did not decrease: {first:.4f} -> {last:.4f}"


def test_bf16_autocast_step(tiny_image_dir: Path, tmp_path: Path) -> None:
    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    tr = make_trainer(tiny_config(amp="bf16"), tiny_image_dir, tmp_path / "out")
    assert tr.amp_dtype == torch.bfloat16
    g0 = snapshot(tr.generator)
    batches = iter(tr._batches("pretrain"))
    losses = [tr._train_step(*next(batches))["loss"] for _ in range(2)]
    assert all(math.isfinite(v) for v in losses)
    assert states_differ(g0, snapshot(tr.generator))
    assert all(p.dtype == torch.float32 for p in tr.generator.parameters())  # master weights stay fp32


def test_amp_resolution_on_cpu(tiny_image_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fp16"):
        make_trainer(tiny_config(amp="fp16"), tiny_image_dir, tmp_path / "a")
    tr = make_trainer(tiny_config(amp="auto"), tiny_image_dir, tmp_path / "b")
    assert tr.amp_dtype == (torch.bfloat16 if cpu_has_native_bf16() else None)


def test_learning_rate_schedules(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(tiny_config(lr=1e-4, gan_steps=10), tiny_image_dir, tmp_path / "out")
    # Paper: 1e-4 for the first half of the GAN phase, then 1e-5.
    assert tr.lr_at(0, "gan") == tr.lr_at(4, "gan") == 1e-4
    assert tr.lr_at(5, "gan") == pytest.approx(1e-5) and tr.lr_at(9, "gan") == pytest.approx(1e-5)
    tr.config.lr_schedule = "cosine"
    assert tr.lr_at(0, "gan") == pytest.approx(1e-4)
    assert tr.lr_at(5, "gan") == pytest.approx(0.5 * (1e-4 + 1e-6))
    assert tr.lr_at(10, "gan") == pytest.approx(1e-6)
    tr.config.warmup_steps = 4
    assert [tr.lr_at(s, "gan") for s in range(4)] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4])
    tr.config.lr_schedule, tr.config.warmup_steps = "constant", 0
    assert tr.lr_at(9, "gan") == 1e-4


def test_step_schedule_is_applied_to_the_optimizers(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(
        tiny_config(lr=1e-3, pretrain_steps=4, pretrain_lr_schedule="step"), tiny_image_dir, tmp_path / "out"
    )
    seen: list[float] = []
    original = tr._train_step

    def step(lr_img: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        out = original(lr_img, hr)
        seen.append(tr.opt_g.param_groups[0]["lr"])
        return out

    tr._train_step = step  # type: ignore[method-assign]
    tr.fit()
    assert seen == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])
    assert [r["lr"] for r in read_metrics(tmp_path / "out")] == pytest.approx(seen)


# ---------------------------------------------------------------------------------------------------------------
# Exact resume


def test_resume_reproduces_an_uninterrupted_pretrain_run(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The step schedule decays at step 2 of 4, so a resume that lost its place would use the wrong lr.
    cfg = tiny_config(pretrain_steps=4, ckpt_every=2, pretrain_lr_schedule="step")
    a = make_trainer(cfg, tiny_image_dir, tmp_path / "a")
    a.fit()

    interrupt_at(monkeypatch, "pretrain", 2)
    b = make_trainer(cfg, tiny_image_dir, tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        b.fit()
    assert b.step == 2
    monkeypatch.setattr(Trainer, "_train_step", TRAIN_STEP)

    calls = count_steps(monkeypatch)
    resumed = make_trainer(cfg, tiny_image_dir, tmp_path / "b", resume=True)
    assert resumed.step == 2 and resumed.steps_done["pretrain"] == 2
    resumed.fit()
    assert calls == [("pretrain", 2), ("pretrain", 3)]  # only the two missing steps ran
    assert_states_equal(snapshot(a.generator), snapshot(resumed.generator))
    assert_states_equal(snapshot(a.discriminator), snapshot(resumed.discriminator))
    assert resumed.opt_g.state_dict()["state"][0]["step"] == a.opt_g.state_dict()["state"][0]["step"] == 4
    assert [r["step"] for r in read_metrics(tmp_path / "b")] == [1, 2, 3, 4]
    assert [r["loss"] for r in read_metrics(tmp_path / "b")] == [r["loss"] for r in read_metrics(tmp_path / "a")]
    ga = load_checkpoint(tmp_path / "a" / "generator.pt").state_dict
    gb = load_checkpoint(tmp_path / "b" / "generator.pt").state_dict
    assert_states_equal(ga, gb)


def test_resume_across_the_phase_boundary_reproduces_the_gan_phase(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(phase="both", pretrain_steps=2, gan_steps=4, ckpt_every=2)
    a = make_trainer(cfg, tiny_image_dir, tmp_path / "a")
    result = a.fit()
    assert result.steps == {"pretrain": 2, "gan": 4}

    interrupt_at(monkeypatch, "gan", 1)
    b = make_trainer(cfg, tiny_image_dir, tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        b.fit()
    monkeypatch.setattr(Trainer, "_train_step", TRAIN_STEP)

    calls = count_steps(monkeypatch)
    resumed = make_trainer(cfg, tiny_image_dir, tmp_path / "b", resume=True)
    assert (resumed.phase, resumed.step) == ("gan", 1)
    resumed.fit()
    assert calls == [("gan", 1), ("gan", 2), ("gan", 3)]
    assert_states_equal(snapshot(a.generator), snapshot(resumed.generator))
    assert_states_equal(snapshot(a.discriminator), snapshot(resumed.discriminator))
    assert_states_equal(
        load_checkpoint(tmp_path / "a" / "generator.pt").state_dict,
        load_checkpoint(tmp_path / "b" / "generator.pt").state_dict,
    )


def test_resume_of_a_finished_run_does_nothing(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(pretrain_steps=2)
    first = make_trainer(cfg, tiny_image_dir, tmp_path / "out")
    first.fit()
    calls = count_steps(monkeypatch)
    again = make_trainer(cfg, tiny_image_dir, tmp_path / "out", resume=True)
    assert again.fit().steps == {"pretrain": 2, "gan": 0}
    assert calls == []
    assert_states_equal(snapshot(first.generator), snapshot(again.generator))


def test_resume_without_a_checkpoint_starts_fresh(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(tiny_config(), tiny_image_dir, tmp_path / "out", resume=True)
    assert (tr.phase, tr.step) == ("pretrain", 0)


def test_resume_with_another_architecture_is_refused(tiny_image_dir: Path, tmp_path: Path) -> None:
    make_trainer(tiny_config(pretrain_steps=1), tiny_image_dir, tmp_path / "out").fit()
    for change in ({"channels": 4}, {"num_blocks": 2}, {"scale": 2}):
        with pytest.raises(ConfigError, match="different architecture"):
            make_trainer(tiny_config(pretrain_steps=1, **change), tiny_image_dir, tmp_path / "out", resume=True)


def test_resume_from_a_corrupt_checkpoint_raises(tiny_image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / STATE_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Delete it"):
        make_trainer(tiny_config(), tiny_image_dir, out, resume=True)
    torch.save({"format": "something else"}, out / STATE_NAME)
    with pytest.raises(CheckpointError, match="not an srgan training checkpoint"):
        make_trainer(tiny_config(), tiny_image_dir, out, resume=True)


# ---------------------------------------------------------------------------------------------------------------
# Outputs


def test_output_folder_contents(tiny_image_dir: Path, tmp_path: Path, make_image: MakeImage) -> None:
    val = tmp_path / "val"
    make_image(val / "butterfly.png", 50, 42, seed=7)  # modcrop to 48x40
    make_image(val / "bird.png", 40, 40, seed=8)
    cfg = tiny_config(pretrain_steps=3, val_every=2, num_samples=1)
    out = tmp_path / "out"
    tr = Trainer(cfg, train_dirs=[tiny_image_dir], val_dirs=[val], output_dir=out, device="cpu", progress=False)
    result = tr.fit()

    names = {p.name for p in out.iterdir()} - {"tensorboard"}  # present only when tensorboard is installed
    assert names == {"config.json", STATE_NAME, "generator.pt", "metrics.jsonl", "samples"}
    assert TrainConfig.from_json(out / "config.json") == cfg
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["pretrain_0000002_bird.png", "pretrain_0000003_bird.png"]  # sorted names: bird first
    with Image.open(out / "samples" / samples[0]) as im:
        assert im.size == (40, 40) and im.mode == "RGB"

    records = read_metrics(out)
    train_records = [r for r in records if "loss" in r]
    val_records = [r for r in records if "val_psnr" in r]
    assert [r["step"] for r in train_records] == [1, 2, 3]
    assert all(r["phase"] == "pretrain" and r["steps_per_s"] > 0 for r in train_records)
    assert [r["step"] for r in val_records] == [2, 3]
    assert all(5 < r["val_psnr"] < 60 and 0 < r["val_ssim"] <= 1 for r in val_records)
    assert result.best_psnr == max(r["val_psnr"] for r in val_records)
    assert result.last_metrics.keys() == {"val_psnr", "val_ssim"}

    state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
    assert state["format"] == "srgan.trainer" and state["step"] == 3 and state["phase"] == "pretrain"
    assert_states_equal(state["generator"], snapshot(tr.generator))

    meta = load_checkpoint(out / "generator.pt").meta
    assert meta["phase"] == "pretrain" and meta["vgg_weights"] == "none" and meta["loss"] == "mse"
    assert meta["metrics"]["val_psnr"] == result.best_psnr


def test_output_folder_loads_with_from_pretrained(tiny_image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tr = make_trainer(tiny_config(pretrain_steps=2), tiny_image_dir, out)
    tr.fit()
    model = SRGAN.from_pretrained(out, device="cpu", dtype="fp32")
    assert (model.scale, model.generator.config.num_blocks, model.generator.config.channels) == (4, 1, 8)
    assert_states_equal(snapshot(model.generator), snapshot(tr.generator))
    img = Image.new("RGB", (12, 10), (120, 60, 200))
    up = model.upscale(img)
    assert isinstance(up, Image.Image) and up.size == (48, 40)
    x = torch.rand(1, 3, 8, 8)
    tr.generator.eval()
    with torch.no_grad():
        expected = tr.generator(x).clamp(0, 1)
    assert torch.allclose(model.upscale_tensor(x), expected, atol=1e-5)


def test_best_psnr_generator_is_exported_in_pretrain(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores = iter([20.0, 30.0, 25.0])
    at_validation: dict[int, State] = {}

    def validate(self: Trainer) -> dict[str, float]:
        at_validation[self.step] = snapshot(self.generator)
        return {"val_psnr": next(scores), "val_ssim": 0.5}

    monkeypatch.setattr(Trainer, "validate", validate)
    out = tmp_path / "out"
    result = make_trainer(tiny_config(pretrain_steps=3, val_every=1), tiny_image_dir, out).fit()
    assert sorted(at_validation) == [1, 2, 3]
    assert states_differ(at_validation[2], at_validation[3])
    assert result.best_psnr == 30.0
    ckpt = load_checkpoint(out / "generator.pt")
    assert_states_equal(ckpt.state_dict, at_validation[2])
    assert ckpt.meta["steps"]["pretrain"] == 2 and ckpt.meta["metrics"]["val_psnr"] == 30.0
    assert [r["val_psnr"] for r in read_metrics(out) if "val_psnr" in r] == [20.0, 30.0, 25.0]


def test_checkpoint_every_zero_writes_only_the_final_state(tiny_image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_trainer(tiny_config(pretrain_steps=2, ckpt_every=0), tiny_image_dir, out).fit()
    assert torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)["step"] == 2


# ---------------------------------------------------------------------------------------------------------------
# Failures and interruptions


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = iter(range(1000))

    def nan_after_two(sr: torch.Tensor, hr: torch.Tensor, **kw: Any) -> torch.Tensor:
        loss = real_pixel_loss(sr, hr, **kw)
        return loss * float("nan") if next(calls) >= 2 else loss

    monkeypatch.setattr(trainer_module, "pixel_loss", nan_after_two)
    out = tmp_path / "out"
    tr = make_trainer(tiny_config(pretrain_steps=10, ckpt_every=1), tiny_image_dir, out)
    with pytest.raises(TrainingDivergedError) as info:
        tr.fit()
    assert "nan" in str(info.value).lower() and STATE_NAME in str(info.value)
    assert isinstance(info.value, FloatingPointError)
    assert tr.step == 2

    state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["generator"].values() if v.is_floating_point())
    # No optimizer step was taken with the NaN loss (the BN running statistics did see the forward pass).
    params = {k: v.detach() for k, v in tr.generator.named_parameters()}
    assert_states_equal({k: state["generator"][k] for k in params}, params)
    monkeypatch.setattr(trainer_module, "pixel_loss", real_pixel_loss)
    resumed = make_trainer(tiny_config(pretrain_steps=10, ckpt_every=1), tiny_image_dir, out, resume=True)
    assert resumed.step == 2


def test_ctrl_c_saves_a_checkpoint(tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    interrupt_at(monkeypatch, "pretrain", 3)
    tr = make_trainer(tiny_config(pretrain_steps=10, ckpt_every=1000), tiny_image_dir, out)
    with pytest.raises(KeyboardInterrupt):
        tr.fit()
    state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
    assert (state["phase"], state["step"], state["steps_done"]) == ("pretrain", 3, {"pretrain": 3, "gan": 0})
    assert_states_equal(state["generator"], snapshot(tr.generator))
    assert not list(out.glob(f".{STATE_NAME}.*"))  # no temporary file left behind


# ---------------------------------------------------------------------------------------------------------------
# EMA and initial weights


def test_ema_weights_are_exported(tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    after_step: list[State] = []
    original = Trainer._update_ema

    def update_ema(self: Trainer) -> None:
        after_step.append(snapshot(self.generator))
        original(self)

    monkeypatch.setattr(Trainer, "_update_ema", update_ema)
    out = tmp_path / "out"
    tr = make_trainer(tiny_config(pretrain_steps=3, ema_decay=0.9), tiny_image_dir, out)
    assert tr.ema is not None
    initial = snapshot(tr.generator)
    tr.fit()
    exported = load_checkpoint(out / "generator.pt").state_dict
    assert_states_equal(exported, snapshot(tr.ema))
    assert states_differ(exported, snapshot(tr.generator))
    assert states_differ(exported, initial)
    # Replay the average: decay min(0.9, (1 + n) / (10 + n)) after step n, integer buffers copied.
    expected = initial
    for n, g in enumerate(after_step, start=1):
        d = min(0.9, (1 + n) / (10 + n))
        expected = {k: d * expected[k] + (1 - d) * v if v.is_floating_point() else v for k, v in g.items()}
    assert len(after_step) == 3
    for k, v in expected.items():
        torch.testing.assert_close(exported[k], v, rtol=1e-5, atol=1e-7, msg=k)


def test_without_ema_the_raw_generator_is_exported(tiny_image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tr = make_trainer(tiny_config(pretrain_steps=2), tiny_image_dir, out)
    assert tr.ema is None
    tr.fit()
    assert_states_equal(load_checkpoint(out / "generator.pt").state_dict, snapshot(tr.generator))


def test_init_generator_is_loaded(tiny_image_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(123)
    init = Generator(num_blocks=1, channels=8)
    tr = make_trainer(tiny_config(), tiny_image_dir, tmp_path / "a", init_generator=init)
    assert_states_equal(snapshot(tr.generator), snapshot(init))
    folder = SRGAN(init, device="cpu", dtype="fp32").save_pretrained(tmp_path / "init-model")
    tr = make_trainer(tiny_config(), tiny_image_dir, tmp_path / "b", init_generator=folder)
    assert_states_equal(snapshot(tr.generator), snapshot(init))


@pytest.mark.parametrize(("num_blocks", "channels", "scale"), [(2, 8, 4), (1, 16, 4), (1, 8, 2)])
def test_init_generator_with_another_architecture_is_refused(
    tiny_image_dir: Path, tmp_path: Path, num_blocks: int, channels: int, scale: int
) -> None:
    init = Generator(scale=scale, num_blocks=num_blocks, channels=channels)
    with pytest.raises(ConfigError, match="architecture"):
        make_trainer(tiny_config(), tiny_image_dir, tmp_path / "out", init_generator=init)


def test_tensorboard_scalars_written_when_installed(tmp_path: Path, tiny_image_dir: Path) -> None:
    pytest.importorskip("tensorboard")
    from srgan import TrainConfig, Trainer

    cfg = TrainConfig(
        num_blocks=1,
        channels=8,
        phase="pretrain",
        pretrain_steps=2,
        batch_size=2,
        crop_size=16,
        val_every=0,
        log_every=1,
        vgg_weights="none",
        amp="none",
    )
    Trainer(cfg, train_dirs=[tiny_image_dir], output_dir=tmp_path / "run", progress=False).fit()
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100


def test_pretrain_lr_is_constant_by_default_as_in_the_paper(tiny_image_dir: Path, tmp_path: Path) -> None:
    tr = make_trainer(tiny_config(pretrain_steps=10), tiny_image_dir, tmp_path / "out")
    assert {tr.lr_at(s, "pretrain") for s in range(10)} == {tr.config.lr}
    assert tr.lr_at(9, "gan") == pytest.approx(tr.config.lr * 0.1)  # the GAN phase decays halfway


def test_gan_phase_starts_from_the_best_pretrain_generator(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srgan.weights import load_checkpoint

    cfg = tiny_config(phase="both", pretrain_steps=3, gan_steps=1, val_every=1)
    tr = make_trainer(cfg, tiny_image_dir, tmp_path / "out", val_dirs=[tiny_image_dir])
    checks: list[bool] = []
    original = Trainer._start_gan_from_best_pretrain

    def spy(self: Trainer) -> None:
        best = load_checkpoint(self.output_dir / "generator.pt").state_dict
        original(self)
        now = self.generator.state_dict()
        checks.append(all(torch.equal(now[k].float(), best[k]) for k in best))

    monkeypatch.setattr(Trainer, "_start_gan_from_best_pretrain", spy)
    tr.fit()
    assert checks == [True]


def test_gan_with_single_pixel_discriminator_batch_is_refused() -> None:
    from srgan.errors import ConfigError

    with pytest.raises(ConfigError, match="BatchNorm"):
        TrainConfig(phase="gan", batch_size=1, crop_size=16)
