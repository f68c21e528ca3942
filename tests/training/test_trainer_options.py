"""Tests of the Trainer options the packaged recipes need: each TrainConfig field shown to do what it says.

lr_min, crop_size_late/crop_switch_at, degrade_whole_images, y_weight, teacher/teacher_weight, freeze_bn,
time_budget, val_at_start, export_rule, and the callbacks.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import srgan.training.trainer as trainer_module
from srgan._dihedral import self_ensemble
from srgan.degradation import imresize, quantize
from srgan.errors import ConfigError
from srgan.losses import pixel_loss
from srgan.metrics import rgb_to_y
from srgan.models import Generator
from srgan.training import TrainConfig, Trainer
from srgan.training.callbacks import KeepExports, TrainerCallback
from srgan.weights import load_checkpoint, save_checkpoint

from .test_trainer import _small_discriminator as _small_discriminator
from .test_trainer import make_trainer, tiny_config


def tiny(**overrides: Any) -> TrainConfig:
    return tiny_config(**overrides)


def make(config: TrainConfig, train: Path, out: Path, **kw: Any) -> Trainer:
    return make_trainer(config, train, out, **kw)


@pytest.fixture
def images(tiny_image_dir: Path) -> Path:
    return tiny_image_dir


def record_batches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, tuple[int, ...], bool]]:
    """(step, HR batch shape, whether a target came) of every training step."""
    seen: list[tuple[int, tuple[int, ...], bool]] = []
    original = Trainer._train_step

    def step(self: Trainer, lr: torch.Tensor, hr: torch.Tensor, target: torch.Tensor | None = None) -> Any:
        seen.append((self.step, tuple(hr.shape), target is not None))
        return original(self, lr, hr, target)

    monkeypatch.setattr(Trainer, "_train_step", step)
    return seen


# ------------------------------------------------------------------ config validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr_min", -1.0),
        ("lr_min", 1.0),  # above lr
        ("crop_size_late", 18),  # not divisible by 4
        ("crop_size_late", 8),
        ("crop_switch_at", 1.5),
        ("y_weight", -0.1),
        ("teacher_weight", -1.0),
        ("time_budget", 0),
        ("export_rule", "best-ema"),
        ("freeze_bn", "yes"),
        ("val_at_start", 1),
    ],
)
def test_new_fields_reject_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        tiny(**{field: value})


def test_teacher_needs_whole_image_degradation_and_that_needs_the_cache() -> None:
    with pytest.raises(ConfigError, match="teacher"):
        tiny(teacher="srresnet-x4")
    with pytest.raises(ConfigError, match="degrade_whole_images"):
        tiny(degrade_whole_images=True, cache_images=False)


def test_new_fields_round_trip_through_json() -> None:
    c = tiny(
        lr_min=1e-7,
        crop_size_late=32,
        crop_switch_at=0.5,
        degrade_whole_images=True,
        y_weight=2.0,
        teacher="t.pt",
        teacher_weight=0.5,
        freeze_bn=True,
        time_budget=60.0,
        val_at_start=True,
        export_rule="last",
    )
    assert TrainConfig.from_json(c.to_json()) == c


# ------------------------------------------------------------------ schedule and crops


def test_lr_min_is_the_cosine_floor(images: Path, tmp_path: Path) -> None:
    tr = make(tiny(pretrain_lr_schedule="cosine", lr_min=1e-7, pretrain_steps=100, warmup_steps=10), images, tmp_path)
    assert tr.lr_at(0, "pretrain") == pytest.approx(1e-3 / 10)
    assert tr.lr_at(10, "pretrain") == pytest.approx(1e-3)
    assert tr.lr_at(100, "pretrain") == pytest.approx(1e-7)
    default = make(tiny(pretrain_lr_schedule="cosine", pretrain_steps=100), images, tmp_path / "b")
    assert default.lr_at(100, "pretrain") == pytest.approx(1e-5)  # lr * 0.01 when lr_min is None


def test_crop_size_switches_at_the_configured_fraction(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_batches(monkeypatch)
    make(tiny(pretrain_steps=6, crop_size_late=32, crop_switch_at=0.5), images, tmp_path).fit()
    assert [(s, shape[-1]) for s, shape, _ in seen] == [(0, 16), (1, 16), (2, 16), (3, 32), (4, 32), (5, 32)]


def interrupted_then_resumed(
    cfg: TrainConfig, images: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, *, at: int = 4
) -> Trainer:
    """Train in ``folder`` until Ctrl-C before step ``at`` (0-based), then return a Trainer resuming that run."""
    part = make(cfg, images, folder)
    original = Trainer._train_step

    def stop(self: Trainer, *batch: torch.Tensor) -> Any:
        if self.step == at:
            raise KeyboardInterrupt
        return original(self, *batch)

    monkeypatch.setattr(Trainer, "_train_step", stop)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    monkeypatch.setattr(Trainer, "_train_step", original)
    return make(cfg, images, folder, resume=True)


def test_crop_switch_resumes_exactly(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny(pretrain_steps=6, crop_size_late=32, crop_switch_at=0.5, ckpt_every=1)
    full = make(cfg, images, tmp_path / "full")
    full.fit()
    resumed = interrupted_then_resumed(cfg, images, tmp_path / "part", monkeypatch)
    resumed.fit()
    for k, v in full.generator.state_dict().items():
        assert torch.equal(v, resumed.generator.state_dict()[k]), k


# ------------------------------------------------------------------ whole-image LR


def test_whole_image_lr_is_the_benchmark_lr_and_crops_are_aligned(images: Path, tmp_path: Path) -> None:
    tr = make(tiny(degrade_whole_images=True), images, tmp_path)
    ds = tr.dataset
    for hr, lr in zip(ds.hr_images, ds.lr_images, strict=True):
        assert hr.shape[-1] % 4 == 0 and hr.shape[-2] % 4 == 0
        expected = quantize(imresize(hr.unsqueeze(0).double() / 255, scale=0.25))[0].mul(255).round()
        assert torch.equal(lr.double(), expected)
    # Every item's LR crop is a window of its image's whole-image LR (up to a flip/transpose), and the HR crop is
    # the matching window of the HR image.
    for index in range(20):
        lr_crop, hr_crop = ds[index]
        assert lr_crop.shape == (3, 4, 4) and hr_crop.shape == (3, 16, 16)
        assert _is_aligned_window(ds, lr_crop, hr_crop), index


def _is_aligned_window(ds: Any, lr_crop: torch.Tensor, hr_crop: torch.Tensor) -> bool:
    for lr_img, hr_img in zip(ds.lr_images, ds.hr_images, strict=True):
        for flips in itertools.product((False, True), repeat=3):
            lr_c, hr_c = _undo(lr_crop, flips), _undo(hr_crop, flips)
            lr_u8 = lr_c.mul(255).round().to(torch.uint8)
            h, w = lr_img.shape[-2:]
            for y in range(h - 3):
                for x in range(w - 3):
                    if torch.equal(lr_img[:, y : y + 4, x : x + 4], lr_u8):
                        hr_u8 = hr_c.mul(255).round().to(torch.uint8)
                        if torch.equal(hr_img[:, 4 * y : 4 * y + 16, 4 * x : 4 * x + 16], hr_u8):
                            return True
    return False


def _undo(t: torch.Tensor, flips: tuple[bool, bool, bool]) -> torch.Tensor:
    if flips[2]:
        t = t.transpose(-1, -2)
    if flips[1]:
        t = t.flip(-2)
    if flips[0]:
        t = t.flip(-1)
    return t


# ------------------------------------------------------------------ losses


def test_y_weight_adds_the_luma_term() -> None:
    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    plain, _ = trainer_module._ContentLoss("mse", vgg_weights="none")(sr, hr)
    with_y, parts = trainer_module._ContentLoss("mse", vgg_weights="none", y_weight=2.0)(sr, hr)
    y_term = pixel_loss(rgb_to_y(sr) / 255, rgb_to_y(hr) / 255, kind="mse")
    assert float(with_y) == pytest.approx(float(plain) + 2.0 * float(y_term), rel=1e-6)
    assert parts["mse"] == pytest.approx(float(with_y), rel=1e-6)


@pytest.fixture
def teacher_file(tmp_path: Path) -> Path:
    torch.manual_seed(5)
    g = Generator(num_blocks=1, channels=8)
    return save_checkpoint(tmp_path / "teacher.pt", g)


def test_teacher_targets_are_the_teachers_self_ensemble(
    images: Path, tmp_path: Path, teacher_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny(degrade_whole_images=True, teacher=str(teacher_file))
    tr = make(cfg, images, tmp_path / "a")
    teacher = trainer_module._load_generator(str(teacher_file), what="teacher")
    for lr, target in zip(tr.dataset.lr_images, tr.dataset._targets or [], strict=True):
        expected = self_ensemble(teacher, lr.float().div(255).unsqueeze(0))[0].clamp(0, 1).mul(255).round()
        assert (target.float() - expected).abs().max() <= 1  # fp32 rounding at .5
    cache = list((tmp_path / "a").glob("teacher-*.pt"))
    assert len(cache) == 1
    # A second run on the same data reads the cache instead of recomputing.
    monkeypatch.setattr(trainer_module, "self_ensemble", lambda *a: pytest.fail("recomputed the teacher"))
    tr2 = make(cfg, images, tmp_path / "b", cache_dir=tmp_path / "a")
    assert all(torch.equal(a, b) for a, b in zip(tr2.dataset._targets or [], tr.dataset._targets or [], strict=True))


def test_a_corrupt_teacher_cache_is_recomputed(images: Path, tmp_path: Path, teacher_file: Path) -> None:
    cfg = tiny(degrade_whole_images=True, teacher=str(teacher_file))
    first = make(cfg, images, tmp_path / "a")
    (cache,) = (tmp_path / "a").glob("teacher-*.pt")
    cache.write_bytes(b"not a torch file")
    again = make(cfg, images, tmp_path / "b", cache_dir=tmp_path / "a")
    assert all(
        torch.equal(a, b) for a, b in zip(again.dataset._targets or [], first.dataset._targets or [], strict=True)
    )
    stored = torch.load(cache, weights_only=True)
    assert isinstance(stored, dict) and len(stored) == 3
    assert all(v.dtype == torch.uint8 for v in stored.values())


def test_the_teacher_cache_serves_a_run_on_a_subset_of_the_images(
    images: Path, tmp_path: Path, teacher_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny(degrade_whole_images=True, teacher=str(teacher_file))
    first = make(cfg, images, tmp_path / "a")  # crop 16: all three images
    full = dict(zip([f.name for f in first.dataset.files], first.dataset._targets or [], strict=True))
    # A stage with larger crops keeps only the images that fit (here 2 of 3): nothing is recomputed.
    monkeypatch.setattr(trainer_module, "self_ensemble", lambda *a: pytest.fail("recomputed the teacher"))
    sub = make(
        tiny(degrade_whole_images=True, teacher=str(teacher_file), crop_size=56),
        images,
        tmp_path / "b",
        cache_dir=tmp_path / "a",
    )
    assert 0 < len(sub.dataset.files) < 3
    for f, t in zip(sub.dataset.files, sub.dataset._targets or [], strict=True):
        assert torch.equal(t, full[f.name])


def test_teacher_term_enters_the_loss(
    images: Path, tmp_path: Path, teacher_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_batches(monkeypatch)
    losses = []
    for w in (0.0, 1.0):
        tr = make(
            tiny(degrade_whole_images=True, teacher=str(teacher_file), teacher_weight=w), images, tmp_path / str(w)
        )
        lr, hr, target = next(iter(tr._batches("pretrain")))
        losses.append(tr._train_step(lr, hr, target))
    assert all(t for _, _, t in seen)
    assert "loss_teacher_mse" not in losses[0] and "loss_teacher_mse" in losses[1]
    assert losses[1]["loss"] == pytest.approx(losses[1]["loss_mse"] + losses[1]["loss_teacher_mse"], rel=1e-5)


def test_an_init_or_teacher_of_another_architecture_is_refused(images: Path, tmp_path: Path) -> None:
    from srgan.models import MSRResNet

    path = save_checkpoint(tmp_path / "peer.pt", MSRResNet())
    with pytest.raises(ConfigError, match="MSRResNet"):
        make(tiny(degrade_whole_images=True, teacher=str(path)), images, tmp_path / "out")


# ------------------------------------------------------------------ frozen batch norm


def _bn_stats(g: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in g.state_dict().items() if "running" in k or "num_batches" in k}


def test_freeze_bn_keeps_the_running_statistics(images: Path, tmp_path: Path) -> None:
    frozen = make(tiny(freeze_bn=True, val_every=2), images, tmp_path / "f")  # validation toggles modes too
    before = _bn_stats(frozen.generator)
    frozen.fit()
    after = _bn_stats(frozen.generator)
    assert all(torch.equal(before[k], after[k]) for k in before)
    free = make(tiny(), images, tmp_path / "u")
    before = _bn_stats(free.generator)
    free.fit()
    assert any(not torch.equal(before[k], _bn_stats(free.generator)[k]) for k in before)


# ------------------------------------------------------------------ time budget


def test_time_budget_fitter_counts_from_measured_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.chain(
        [0.0, 5.0, 15.0], itertools.repeat(99.0)
    )  # start, after the settle steps, after 100 more: 0.1 s/step, 15 s used
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: next(clock))
    fit = trainer_module._BudgetFitter(65.0, 20, 0)
    results = [fit.update(s, lambda: None) for s in range(1, 121)]
    assert results[:119] == [None] * 119
    assert results[119] == 120 + 500  # 50 s left at 0.1 s/step
    assert trainer_module._BudgetFitter(None, 0, 0).update(110, lambda: None) is None


def test_time_budget_lowers_the_step_count_and_survives_resume(images: Path, tmp_path: Path) -> None:
    cfg = tiny(pretrain_steps=100_000, time_budget=0.001, ckpt_every=50)
    tr = make(cfg, images, tmp_path)
    result = tr.fit()
    assert 110 <= result.steps["pretrain"] < 100_000
    assert tr.fitted_steps["pretrain"] == result.steps["pretrain"]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["fitted_steps"] == {"pretrain": result.steps["pretrain"]}
    again = make(cfg, images, tmp_path, resume=True)
    assert again._phase_steps("pretrain") == result.steps["pretrain"]


# ------------------------------------------------------------------ validation at start and export rule


def test_val_at_start_validates_before_the_first_step(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Trainer(
        tiny(val_at_start=True, val_every=2), train_dirs=[images], val_dirs=[images], output_dir=out, device="cpu"
    ).fit()
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "val_psnr" in r]
    assert steps == [0, 2, 4]


@pytest.mark.parametrize("rule", ["best", "last"])
def test_export_rule(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rule: str) -> None:
    scores = iter([30.0, 20.0, 10.0])  # validation gets worse: "best" keeps step 1, "last" the final weights
    monkeypatch.setattr(Trainer, "validate", lambda self: {"val_psnr": next(scores), "val_ssim": 0.5})
    tr = make(tiny(val_every=1, pretrain_steps=3, export_rule=rule), images, tmp_path)
    tr.fit()
    exported = load_checkpoint(tmp_path / "generator.pt")
    assert exported.meta["steps"]["pretrain"] == (1 if rule == "best" else 3)
    final = {k: v.float() for k, v in tr.generator.state_dict().items()}
    same = all(torch.equal(exported.state_dict[k], final[k]) for k in final)
    assert same == (rule == "last")


# ------------------------------------------------------------------ callbacks


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, int, Any]] = []

    def on_validation(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self.events.append(("validation", trainer.step, sorted(metrics)))

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        assert path.is_file()
        self.events.append(("checkpoint", trainer.step, path.name))

    def on_export(self, trainer: Trainer, path: Path) -> None:
        assert load_checkpoint(path).meta["steps"]["pretrain"] == trainer.step
        self.events.append(("export", trainer.step, path.name))


def test_callbacks_hear_validation_checkpoint_and_export(images: Path, tmp_path: Path) -> None:
    rec = Recorder()
    Trainer(
        tiny(val_every=2, ckpt_every=3, pretrain_steps=4),
        train_dirs=[images],
        val_dirs=[images],
        output_dir=tmp_path,
        device="cpu",
        callbacks=[rec],
    ).fit()
    kinds = [(e, s) for e, s, _ in rec.events]
    assert ("validation", 2) in kinds and ("validation", 4) in kinds
    assert ("checkpoint", 3) in kinds and ("checkpoint", 4) in kinds
    assert ("export", 2) in kinds or ("export", 4) in kinds
    assert all(v == ["val_psnr", "val_ssim"] for e, _, v in rec.events if e == "validation")


def test_keep_exports_keeps_each_exported_generator(images: Path, tmp_path: Path) -> None:
    keep = KeepExports(tmp_path / "exports", keep=2)
    tr = make(tiny(phase="gan", gan_steps=3, val_every=1), images, tmp_path / "run", callbacks=[keep])
    tr.val_images = [("v", torch.rand(1, 3, 8, 8), torch.rand(1, 3, 32, 32))]
    tr.fit()
    files = sorted(p.name for p in (tmp_path / "exports").iterdir())
    assert files == ["gan_0000002.pt", "gan_0000003.pt"]
    assert load_checkpoint(tmp_path / "exports" / "gan_0000003.pt").meta["steps"]["gan"] == 3
    with pytest.raises(ValueError):
        KeepExports(tmp_path, keep=0)


# ------------------------------------------------------------------ real-world degradations in the step


def test_real_degradation_configs_are_checked() -> None:
    with pytest.raises(ConfigError, match="degradation"):
        tiny(degradation="real", degrade_whole_images=True)
    with pytest.raises(ConfigError, match="sharpen_hr"):
        tiny(sharpen_hr=True)  # bicubic
    with pytest.raises(ConfigError, match="pair_pool"):
        tiny(degradation="real", pair_pool=-2)
    assert tiny(degradation="real-mild", sharpen_hr=True, pair_pool=4).pair_pool == 4


@pytest.mark.parametrize("kind", ["real", "real-mild"])
def test_real_degradation_runs_in_the_step_and_is_seeded_by_step(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    torch.set_num_threads(1)
    seen: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    original = Trainer._train_step

    def step(self: Trainer, lr: torch.Tensor, hr: torch.Tensor, target: torch.Tensor | None = None) -> Any:
        seen.append((self.step, lr.clone(), hr.clone()))
        return original(self, lr, hr, target)

    monkeypatch.setattr(Trainer, "_train_step", step)
    cfg = tiny(degradation=kind, crop_size=32, pretrain_steps=3)
    tr = make(cfg, images, tmp_path / "a")
    assert len(next(iter(tr._batches("pretrain")))) == 1  # the loader yields HR only
    tr.fit()
    assert [s for s, _, _ in seen] == [0, 1, 2]
    for _, lr, hr in seen:
        assert lr.shape == (2, 3, 8, 8) and hr.shape == (2, 3, 32, 32)
        assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit grid
        # Not the clean bicubic LR of the crop: the real-world chain degraded it.
        clean = imresize(hr.double(), scale=0.25).float()
        assert (lr - clean).abs().mean() > 1e-3
    first = [lr for _, lr, _ in seen]
    seen.clear()
    make(cfg, images, tmp_path / "b").fit()
    assert all(torch.equal(a, b) for a, (_, b, _) in zip(first, seen, strict=True))  # same seed, same pairs


def test_sharpen_hr_trains_towards_sharpened_targets(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srgan.degradation import unsharp_mask

    targets: list[torch.Tensor] = []
    original = Trainer._train_step

    def step(self: Trainer, lr: torch.Tensor, hr: torch.Tensor, target: torch.Tensor | None = None) -> Any:
        targets.append(hr.clone())
        return original(self, lr, hr, target)

    monkeypatch.setattr(Trainer, "_train_step", step)
    tr = make(tiny(degradation="real", sharpen_hr=True, crop_size=32, pretrain_steps=1), images, tmp_path)
    (raw,) = next(iter(tr._batches("pretrain")))
    tr.fit()
    assert torch.allclose(targets[0], unsharp_mask(raw), atol=1e-6)
    assert not torch.allclose(targets[0], raw)
    assert load_checkpoint(tmp_path / "generator.pt").meta["sharpen_hr"] is True


def test_pair_pool_mixes_batches_and_resumes_exactly(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny(degradation="real-mild", crop_size=32, pretrain_steps=6, pair_pool=4, ckpt_every=1)
    full = make(cfg, images, tmp_path / "full")
    full.fit()
    assert full._pool is not None and full._pool.full
    resumed = interrupted_then_resumed(cfg, images, tmp_path / "part", monkeypatch)
    assert resumed._pool is not None and resumed._pool.full
    resumed.fit()
    for k, v in full.generator.state_dict().items():
        assert torch.equal(v, resumed.generator.state_dict()[k]), k


def test_real_degradation_validates_on_the_real_fixed_protocol(images: Path, tmp_path: Path) -> None:
    from srgan.evaluation import protocol_lr

    tr = Trainer(tiny(degradation="real", crop_size=32), train_dirs=[images], val_dirs=[images], output_dir=tmp_path)
    _name, lr, hr = tr.val_images[0]
    expected = protocol_lr(hr.double(), scale=4, degradation="real-fixed", index=0).float()
    assert torch.equal(lr, expected)
