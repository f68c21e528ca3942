"""Recipes: the chain of training stages that makes a model, as data, run by the :class:`Trainer`.

A recipe is a TOML file (the packaged ones live in ``srgan/recipes/``, one per shipped model)::

    name = "srresnet-x4"                 # the recipe's name
    model = "srresnet-x4"                # the registered weights it makes
    description = "..."
    include = { recipe = "other", until = "stageX" }   # optional: start with another recipe's stages

    [defaults]                           # TrainConfig fields shared by this recipe's stages
    phase = "pretrain"

    [[stages]]                           # in order
    name = "run1"
    init = "none"                        # "none", "stage:NAME", or a registered name / file / folder / URL
    note = "free text: machine, time, what it gave"
    [stages.config]                      # TrainConfig fields of this stage
    pretrain_steps = 10000
    teacher = "stage:run0"               # model-valued fields may name a stage too

A stage's config is ``TrainConfig()`` updated by its recipe's ``[defaults]``, its own ``[stages.config]`` and
then the caller's overrides. Each stage trains in ``OUTPUT_DIR/<stage name>/`` (a normal Trainer run folder) and
writes ``stage.json`` there when it has finished; the last stage's ``generator.pt`` is copied to
``OUTPUT_DIR/generator.pt``, so ``SRGAN.from_pretrained(OUTPUT_DIR)`` loads the result.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_text
from ..errors import ConfigError
from .config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "Recipe",
    "Stage",
    "RecipeRun",
    "list_recipes",
    "load_recipe",
    "run_recipe",
    "STAGE_DONE_NAME",
]

logger = logging.getLogger(__name__)

STAGE_DONE_NAME = "stage.json"
"""Written into a stage's folder when the stage has finished (its steps, metrics and resolved inputs)."""

_MODEL_FIELDS = ("teacher",)  # TrainConfig fields whose value may be "stage:NAME"
_STAGE_KEYS = {"name", "init", "note", "config"}
_RECIPE_KEYS = {"name", "model", "description", "include", "defaults", "stages"}


@dataclass(frozen=True)
class Stage:
    """One training run of a recipe.

    Attributes:
        name: unique within the recipe; also the stage's folder name.
        init: the generator it starts from: ``"none"`` (fresh weights), ``"stage:NAME"`` (an earlier stage's
            exported generator) or a registered model name, file, folder or URL.
        config: the stage's complete :class:`TrainConfig` fields (defaults and stage settings merged).
        note: free text (machine, time, what it gave).
        recipe: the recipe that defines the stage (differs from the running recipe for included stages).
    """

    name: str
    init: str
    config: dict[str, Any]
    note: str = ""
    recipe: str = ""

    def train_config(self, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
        """The stage's :class:`TrainConfig` with ``overrides`` applied (model-valued fields unresolved)."""
        data = dict(self.config)
        data.update(overrides or {})
        try:
            return TrainConfig.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"recipe {self.recipe!r}, stage {self.name!r}: {e}") from e

    def references(self) -> list[str]:
        """Names of the stages whose output this stage uses (as init or teacher)."""
        refs = [self.init] + [str(self.config.get(k)) for k in _MODEL_FIELDS if self.config.get(k) is not None]
        return [r.removeprefix("stage:") for r in refs if r.startswith("stage:")]


@dataclass(frozen=True)
class Recipe:
    """An ordered chain of :class:`Stage` that makes one model."""

    name: str
    stages: tuple[Stage, ...]
    model: str | None = None
    description: str = ""
    source: str = ""

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise ConfigError(f"recipe {self.name!r} has no stage {name!r}; its stages: {[s.name for s in self.stages]}")

    def index(self, name: str) -> int:
        return self.stages.index(self.stage(name))

    def describe(self, overrides: Mapping[str, Any] | None = None) -> str:
        """The resolved chain as text: each stage's init and the config fields that differ from TrainConfig()."""
        base = TrainConfig().to_dict()
        lines = [f"recipe {self.name} ({self.source})" + (f" -> {self.model}" if self.model else "")]
        if self.description:
            lines.append(f"  {self.description}")
        lines.append("  (each stage lists the TrainConfig fields that differ from TrainConfig())")
        for i, s in enumerate(self.stages, 1):
            cfg = s.train_config(overrides).to_dict()
            origin = f"  [from recipe {s.recipe}]" if s.recipe != self.name else ""
            lines.append(f"stage {i}/{len(self.stages)} {s.name}: init {s.init}{origin}")
            if s.note:
                lines.append(f"  # {s.note}")
            for k, v in cfg.items():
                if v != base[k]:
                    lines.append(f"  {k} = {json.dumps(v)}")
        return "\n".join(lines)


def list_recipes() -> list[str]:
    """Names of the packaged recipes (``srgan/recipes/*.toml``)."""
    folder = resources.files("srgan") / "recipes"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read(name_or_path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    text: str | None = None
    source = str(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in list_recipes():
        res = resources.files("srgan") / "recipes" / f"{name_or_path}.toml"
        text, source = res.read_text(encoding="utf-8"), f"packaged recipe {name_or_path}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(
                f"no recipe {source!r}: expected a packaged recipe name ({', '.join(list_recipes())}) or a TOML file"
            )
        text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"recipe {source} is not valid TOML: {e}") from e


def load_recipe(name_or_path: str | os.PathLike[str], *, _seen: tuple[str, ...] = ()) -> Recipe:
    """Load a packaged recipe by name, or a recipe TOML file, and check it.

    Raises:
        ConfigError: unknown recipe, invalid TOML, unknown keys, duplicate or unknown stage names, a stage that
            uses a later stage, or an invalid TrainConfig field (named with its stage).
    """
    data, source = _read(name_or_path)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"recipe {source} needs a 'name' string")
    if name in _seen:
        raise ConfigError(f"recipe {name!r} includes itself (through {' -> '.join(_seen)})")
    unknown = sorted(set(data) - _RECIPE_KEYS)
    if unknown:
        raise ConfigError(f"recipe {source}: unknown keys {unknown}; known: {sorted(_RECIPE_KEYS)}")
    stages: list[Stage] = []
    include = data.get("include")
    if include is not None:
        if not isinstance(include, dict) or not isinstance(include.get("recipe"), str):
            raise ConfigError(f"recipe {source}: include must be {{ recipe = NAME, until = STAGE }}")
        inner = load_recipe(include["recipe"], _seen=(*_seen, name))
        until = include.get("until", inner.stages[-1].name)
        stages.extend(inner.stages[: inner.index(str(until)) + 1])
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"recipe {source}: [defaults] must be a table of TrainConfig fields")
    raw_stages = data.get("stages", [])
    if not isinstance(raw_stages, list) or not (raw_stages or stages):
        raise ConfigError(f"recipe {source} has no [[stages]]")
    for raw in raw_stages:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ConfigError(f"recipe {source}: every [[stages]] entry needs a 'name' string")
        bad = sorted(set(raw) - _STAGE_KEYS)
        if bad:
            raise ConfigError(
                f"recipe {source}, stage {raw['name']!r}: unknown keys {bad}; known: {sorted(_STAGE_KEYS)}"
            )
        config = {**defaults, **raw.get("config", {})}
        stages.append(
            Stage(
                name=raw["name"],
                init=str(raw.get("init", "none")),
                config=config,
                note=str(raw.get("note", "")),
                recipe=name,
            )
        )
    recipe = Recipe(
        name=name,
        stages=tuple(stages),
        model=data.get("model"),
        description=str(data.get("description", "")),
        source=source,
    )
    seen: set[str] = set()
    for s in recipe.stages:
        if s.name in seen:
            raise ConfigError(f"recipe {source}: two stages are named {s.name!r}")
        for ref in s.references():
            if ref not in seen:
                raise ConfigError(
                    f"recipe {source}, stage {s.name!r} uses stage {ref!r}, which is not an earlier stage "
                    f"(earlier: {sorted(seen) or 'none'})"
                )
        s.train_config()  # every field valid
        seen.add(s.name)
    return recipe


@dataclass
class RecipeRun:
    """What :func:`run_recipe` did: the stages trained, those skipped as finished, and the final generator."""

    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    generator: Path | None = None


def _stage_output(output_dir: Path, name: str) -> Path:
    return output_dir / name / "generator.pt"


def run_recipe(
    recipe: Recipe,
    *,
    train_dirs: Sequence[str | os.PathLike[str]],
    val_dirs: Sequence[str | os.PathLike[str]] = (),
    output_dir: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    provided: Mapping[str, str | os.PathLike[str]] | None = None,
    from_stage: str | None = None,
    to_stage: str | None = None,
    resume: bool = False,
    trainer_kwargs: Mapping[str, Any] | None = None,
    make_trainer: Callable[..., Any] | None = None,
) -> RecipeRun:
    """Run ``recipe``'s stages in order through the :class:`Trainer`.

    Args:
        recipe: the chain (see :func:`load_recipe`).
        train_dirs, val_dirs: image folders, as for the Trainer.
        output_dir: each stage trains in ``output_dir/<stage>``; the final generator is copied to
            ``output_dir/generator.pt``.
        overrides: TrainConfig fields applied to every stage (e.g. ``{"num_workers": 4}``).
        provided: the output of stages not run here, by stage name: ``{"run5": "v4.pt"}``.
        from_stage, to_stage: run only this slice of the chain (inclusive). Earlier stages a run stage uses must
            have finished in ``output_dir`` or be ``provided``.
        resume: continue an unfinished stage from its ``checkpoint.pt`` (finished stages are always skipped).
        trainer_kwargs: more keyword arguments for each :class:`Trainer` (``device``, ``progress``,
            ``callbacks``).
        make_trainer: the Trainer class or a factory with its signature (tests substitute one).

    Raises:
        ConfigError: a needed stage output is missing, or a stage folder holds an unfinished run and ``resume`` is
            false.
    """
    from .trainer import Trainer

    factory = make_trainer or Trainer
    out = Path(output_dir)
    provided = {k: Path(v) for k, v in (provided or {}).items()}
    for k in provided:
        recipe.stage(k)  # raises for an unknown stage name
    first = recipe.index(from_stage) if from_stage else 0
    last = recipe.index(to_stage) if to_stage else len(recipe.stages) - 1
    if first > last:
        raise ConfigError(f"--from-stage {from_stage} comes after --to-stage {to_stage} in recipe {recipe.name!r}")
    result = RecipeRun()

    def resolve(ref: str, user: str) -> str | None:
        if ref == "none":
            return None
        if not ref.startswith("stage:"):
            return ref
        name = ref.removeprefix("stage:")
        if name in provided:
            return str(provided[name])
        done = out / name / STAGE_DONE_NAME
        if done.is_file() and _stage_output(out, name).is_file():
            return str(_stage_output(out, name))
        raise ConfigError(
            f"stage {user!r} needs the output of stage {name!r}, which has not finished in {out / name}: run it "
            f"(--from-stage {name}) or give its weights with --use {name}=FILE"
        )

    for stage in recipe.stages[first : last + 1]:
        folder = out / stage.name
        if (folder / STAGE_DONE_NAME).is_file():
            logger.info("stage %s already finished in %s: skipped", stage.name, folder)
            result.skipped.append(stage.name)
            result.outputs[stage.name] = _stage_output(out, stage.name)
            continue
        if (folder / "checkpoint.pt").exists() and not resume:
            raise ConfigError(
                f"{folder} holds an unfinished run of stage {stage.name!r}: pass --resume to continue it, or delete "
                "the folder to start the stage over"
            )
        init = resolve(stage.init, stage.name)
        resolved = dict(overrides or {})
        for key in _MODEL_FIELDS:
            value = stage.config.get(key)
            if isinstance(value, str):
                resolved[key] = resolve(value, stage.name)
        config = stage.train_config(resolved)
        logger.info("stage %s (%s): init %s", stage.name, recipe.name, init or "fresh weights")
        trainer = factory(
            config,
            train_dirs=train_dirs,
            val_dirs=val_dirs,
            output_dir=folder,
            resume=resume,
            init_generator=init,
            cache_dir=out,
            **dict(trainer_kwargs or {}),
        )
        fit = trainer.fit()
        record = {
            "recipe": recipe.name,
            "stage": stage.name,
            "init": init,
            "config": config.to_dict(),
            "steps": fit.steps,
            "last_metrics": fit.last_metrics,
            "best_psnr": fit.best_psnr,
        }
        atomic_write_text(folder / STAGE_DONE_NAME, json.dumps(record, indent=2) + "\n")
        result.trained.append(stage.name)
        result.outputs[stage.name] = _stage_output(out, stage.name)
    final = result.outputs.get(recipe.stages[last].name)
    if final is not None and final.is_file():
        atomic_write_bytes(out / "generator.pt", final.read_bytes())
        result.generator = out / "generator.pt"
    return result
