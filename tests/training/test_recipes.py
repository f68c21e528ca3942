"""Tests for srgan.training.recipes: the packaged recipes load, print, and run through the Trainer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import srgan.training.trainer as trainer_module
from srgan import SRGAN
from srgan.cli.train import main
from srgan.errors import ConfigError
from srgan.models import Discriminator
from srgan.training import TrainConfig
from srgan.training.recipes import STAGE_DONE_NAME, list_recipes, load_recipe, run_recipe
from srgan.weights import REGISTRY, load_checkpoint

from .conftest import MakeImage

# Every stage of every recipe shrunk to a few milliseconds: the chain, inits, teachers and options stay real.
TINY: dict[str, Any] = {
    "num_blocks": 1,
    "channels": 8,
    "batch_size": 2,
    "crop_size": 32,
    "pretrain_steps": 2,
    "gan_steps": 2,
    "warmup_steps": 0,
    "val_every": 1,
    "ckpt_every": 1,
    "vgg_weights": "none",
    "amp": "none",
}


@pytest.fixture(autouse=True)
def _small_discriminator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_module, "Discriminator", lambda: Discriminator(channels=4, hidden=16))


@pytest.fixture
def data(tmp_path: Path, make_image: MakeImage) -> tuple[Path, Path]:
    train, val = tmp_path / "train", tmp_path / "val"
    for i in range(3):
        make_image(train / f"t{i}.png", 136, 132, seed=i)  # >= the recipes' 128 px late crops
    make_image(val / "v.png", 48, 48, seed=9)
    return train, val


def test_packaged_recipes_name_registered_models() -> None:
    names = list_recipes()
    assert {"srresnet-x4", "srgan-x4"} <= set(names)
    for name in names:
        recipe = load_recipe(name)
        assert recipe.name == name
        assert recipe.model in REGISTRY, f"recipe {name} makes an unregistered model {recipe.model}"
        assert len({s.name for s in recipe.stages}) == len(recipe.stages)
        for stage in recipe.stages:
            assert isinstance(stage.train_config(), TrainConfig)
            assert stage.note, f"{name}/{stage.name} has no note (machine, time, result)"


def test_srresnet_recipe_is_the_chain_that_made_v5() -> None:
    r = load_recipe("srresnet-x4")
    assert [s.name for s in r.stages] == ["run1", "run2", "run3", "run4", "run5", "run6", "run7"]
    run7 = r.stage("run7").train_config()
    assert (run7.pretrain_steps, run7.batch_size, run7.crop_size, run7.lr, run7.seed) == (1943, 12, 192, 2e-5, 13)
    assert run7.freeze_bn and run7.pretrain_loss == "mse" and run7.y_weight == 2.0 and run7.export_rule == "last"
    assert r.stage("run7").config["teacher"] == "stage:run5" and r.stage("run7").init == "stage:run6"


def test_srgan_recipe_includes_the_srresnet_stages_it_starts_from() -> None:
    r = load_recipe("srgan-x4")
    assert [s.name for s in r.stages] == ["run1", "run2", "run3", "gan"]
    assert r.stage("run3").recipe == "srresnet-x4" and r.stage("gan").init == "stage:run3"
    gan = r.stage("gan").train_config()
    assert (gan.phase, gan.adv_loss, gan.adv_weight, gan.fm_weight, gan.content_loss) == (
        "gan",
        "relativistic",
        1e-3,
        0.5,
        "l1",
    )


@pytest.mark.parametrize("name", list_recipes())
def test_every_packaged_recipe_runs_on_tiny_data(name: str, data: tuple[Path, Path], tmp_path: Path) -> None:
    train, val = data
    out = tmp_path / "run"
    recipe = load_recipe(name)
    overrides = dict(TINY)
    if recipe.stages[0].init in REGISTRY:  # starts from shipped weights: keep their architecture
        del overrides["num_blocks"], overrides["channels"]
    result = run_recipe(
        recipe,
        train_dirs=[train],
        val_dirs=[val],
        output_dir=out,
        overrides=overrides,
        trainer_kwargs={"device": "cpu", "progress": False},
    )
    assert result.trained == [s.name for s in recipe.stages]
    for stage in recipe.stages:
        record = json.loads((out / stage.name / STAGE_DONE_NAME).read_text())
        assert record["stage"] == stage.name
        assert sum(record["steps"].values()) == 2
    # Each stage started from the previous one's export (init = "stage:...").
    for stage in recipe.stages[1:]:
        record = json.loads((out / stage.name / STAGE_DONE_NAME).read_text())
        assert record["init"] == str(out / stage.init.removeprefix("stage:") / "generator.pt")
    assert result.generator == out / "generator.pt"
    model = SRGAN.from_pretrained(out, device="cpu", dtype="fp32")
    assert model.upscale_tensor(torch.rand(1, 3, 6, 6)).shape == (1, 3, 24, 24)


def test_a_finished_recipe_is_skipped_and_an_unfinished_stage_needs_resume(
    data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, val = data
    out = tmp_path / "run"
    recipe = load_recipe("srresnet-x4")
    kw: dict[str, Any] = dict(
        train_dirs=[train], val_dirs=[val], output_dir=out, overrides=TINY, trainer_kwargs={"device": "cpu"}
    )
    first = run_recipe(recipe, to_stage="run2", **kw)
    assert first.trained == ["run1", "run2"]
    again = run_recipe(recipe, to_stage="run2", **kw)
    assert again.trained == [] and again.skipped == ["run1", "run2"]
    # An interrupted stage: its folder holds a checkpoint but no stage.json.
    original = trainer_module.Trainer._train_step

    def interrupt(self: Any, *batch: torch.Tensor) -> Any:
        if self.step == 1:
            raise KeyboardInterrupt
        return original(self, *batch)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, from_stage="run3", to_stage="run3", **kw)
    monkeypatch.setattr(trainer_module.Trainer, "_train_step", original)
    with pytest.raises(ConfigError, match="--resume"):
        run_recipe(recipe, from_stage="run3", to_stage="run3", **kw)
    done = run_recipe(recipe, from_stage="run3", to_stage="run3", resume=True, **kw)
    assert done.trained == ["run3"]
    assert json.loads((out / "run3" / STAGE_DONE_NAME).read_text())["steps"]["pretrain"] == 2


def test_a_stage_needs_its_inputs_or_use(data: tuple[Path, Path], tmp_path: Path, tiny_model_dir: Path) -> None:
    train, val = data
    recipe = load_recipe("srresnet-x4")
    kw: dict[str, Any] = dict(train_dirs=[train], val_dirs=[val], overrides=TINY, trainer_kwargs={"device": "cpu"})
    with pytest.raises(ConfigError, match="--use run5="):
        run_recipe(recipe, output_dir=tmp_path / "a", from_stage="run6", to_stage="run6", **kw)
    # --use gives run5's output: run6 starts from it and uses it as the teacher.
    small = tmp_path / "small.pt"
    torch.manual_seed(3)
    from srgan.models import Generator
    from srgan.weights import save_checkpoint

    save_checkpoint(small, Generator(num_blocks=1, channels=8))
    result = run_recipe(
        recipe, output_dir=tmp_path / "b", from_stage="run6", to_stage="run6", provided={"run5": small}, **kw
    )
    record = json.loads((tmp_path / "b" / "run6" / STAGE_DONE_NAME).read_text())
    assert result.trained == ["run6"] and record["init"] == str(small) and record["config"]["teacher"] == str(small)
    meta = load_checkpoint(tmp_path / "b" / "generator.pt").meta
    assert meta["teacher"]["model"] == str(small) and meta["y_weight"] == 2.0


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('name = "r"\n[[stages]]\nname = "a"\ninit = "stage:b"\n', "not an earlier stage"),
        ('name = "r"\n[[stages]]\nname = "a"\n[[stages]]\nname = "a"\n', "two stages"),
        ('name = "r"\ncolour = 1\n[[stages]]\nname = "a"\n', "unknown keys"),
        ('name = "r"\n[[stages]]\nname = "a"\nstep = 3\n', "unknown keys"),
        ('name = "r"\n[[stages]]\nname = "a"\n[stages.config]\nlr = -1\n', "stage 'a'.*lr"),
        ('name = "r"\n[[stages]]\nname = "a"\n[stages.config]\nlearning_rate = 1\n', "stage 'a'.*learning_rate"),
        ('name = "r"\n', "no \\[\\[stages\\]\\]"),
        ("name = r\n", "not valid TOML"),
    ],
)
def test_bad_recipes_are_refused_with_the_reason(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_recipe(_write(tmp_path, text))


def test_unknown_recipe_lists_the_packaged_ones() -> None:
    with pytest.raises(ConfigError, match="srresnet-x4"):
        load_recipe("no-such-recipe")


def test_cli_dry_run_prints_the_resolved_chain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--recipe", "srresnet-x4", "--dry-run", "--set", "num_workers=2"]) == 0
    text = capsys.readouterr().out
    for stage in ("run1", "run5", "run7"):
        assert f" {stage}: init" in text
    assert "pretrain_steps = 1943" in text and "freeze_bn = true" in text and "num_workers = 2" in text
    assert main(["--recipe", "srgan-x4", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "gan: init stage:run3" in text and "fm_weight = 0.5" in text and "[from recipe srresnet-x4]" in text


def test_cli_list_recipes_and_refused_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-recipes"]) == 0
    assert "srresnet-x4: 7 stages" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--lr"):
        main(["--recipe", "srresnet-x4", "--dry-run", "--lr", "1e-3"])
    with pytest.raises(SystemExit, match="STAGE=WEIGHTS"):
        main(["--recipe", "srresnet-x4", "--dry-run", "--use", "run5"])


def test_cli_runs_a_recipe_slice(data: tuple[Path, Path], tmp_path: Path) -> None:
    train, val = data
    out = tmp_path / "cli"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    argv = ["--recipe", "srresnet-x4", "--train-dir", str(train), "--val-dir", str(val), "--output-dir", str(out)]
    assert main([*argv, "--to-stage", "run1", "--device", "cpu", "--no-progress", "--keep-exports", *sets]) == 0
    assert (out / "run1" / STAGE_DONE_NAME).is_file() and (out / "generator.pt").is_file()
    assert sorted(p.name for p in (out / "exports").iterdir())  # KeepExports copied the exports


def test_the_example_recipe_file_extends_a_packaged_recipe() -> None:
    root = Path(__file__).resolve().parents[2]
    recipe = load_recipe(root / "examples" / "recipes" / "srgan-x4-real.toml")
    assert [s.name for s in recipe.stages] == [s.name for s in load_recipe("srresnet-x4-real").stages] + ["gan"]
    assert recipe.stages[0].init == "srresnet-x4"
    gan = recipe.stage("gan").train_config({})
    assert (gan.phase, gan.degradation, gan.sharpen_hr, gan.content_loss) == ("gan", "real-mild", False, "l1")
