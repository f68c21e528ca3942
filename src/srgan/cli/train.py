"""The ``srgan-train`` command (also ``python -m srgan.train``): single runs and recipes, through the Trainer."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SRGANError
from ..training.config import TrainConfig
from ._common import closed_pipe_exits_quietly

__all__ = ["main", "build_parser"]

_EPILOG = """examples:
  # SRResNet (pixel loss) then SRGAN, paper defaults:
  srgan-train --train-dir data/DIV2K_train_HR --val-dir data/Set5 --output-dir runs/srgan
  # only the pixel-loss pretraining, 20k steps of L1 with a cosine schedule:
  srgan-train --train-dir data/T91 data/BSDS200 --val-dir data/Set5 --output-dir runs/srresnet \\
      --phase pretrain --steps 20000 --pretrain-loss l1 --lr 2e-4 --set pretrain_lr_schedule=cosine
  # adversarial fine-tuning from a pretrained generator:
  srgan-train --train-dir data/coco --output-dir runs/gan --phase gan --init runs/srresnet
  # continue an interrupted run:
  srgan-train --train-dir data/coco --output-dir runs/srgan --resume
  # the chain of stages that made a packaged model (see --list-recipes), or its last stage from given weights:
  srgan-train --recipe srresnet-x4 --train-dir data/T91 data/BSDS200 --val-dir data/Set5 --output-dir runs/sr
  srgan-train --recipe srresnet-x4 --dry-run
  srgan-train --recipe srresnet-x4 --from-stage run7 --use run6=run6.pt --use run5=v4.pt ... --output-dir runs/r7
  # 4 GPUs of one machine with DistributedDataParallel (batch_size is the global batch: 4 per GPU here):
  torchrun --standalone --nproc_per_node=4 -m srgan.train --train-dir data/DIV2K_train_HR --output-dir runs/ddp \
      --batch-size 16 --set sync_batchnorm=true

The output folder loads directly: SRGAN.from_pretrained("runs/srgan").
Every TrainConfig field can be set with --config FILE.json or --set FIELD=VALUE (JSON values)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srgan-train",
        description="Train SRResNet (pixel loss) and SRGAN (adversarial) on folders of images.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train-dir", nargs="+", metavar="DIR", help="training image folders (recursive)")
    p.add_argument("--val-dir", nargs="*", default=[], metavar="DIR", help="validation image folders")
    p.add_argument("--output-dir", metavar="DIR", help="checkpoints, logs, samples and generator.pt")
    r = p.add_argument_group("recipes (the chains of stages that made the packaged models)")
    r.add_argument("--recipe", metavar="NAME|FILE", help="run a recipe: a packaged name or a TOML file")
    r.add_argument("--list-recipes", action="store_true", help="list the packaged recipes and exit")
    r.add_argument("--dry-run", action="store_true", help="print the resolved chain of stages and exit")
    r.add_argument("--from-stage", metavar="STAGE", help="start the chain at this stage")
    r.add_argument("--to-stage", metavar="STAGE", help="stop the chain after this stage")
    r.add_argument(
        "--use",
        action="append",
        default=[],
        metavar="STAGE=WEIGHTS",
        help="the output of a stage not run here (a file, folder or registered name), e.g. --use run5=v4.pt",
    )
    r.add_argument("--keep-exports", action="store_true", help="keep every exported generator in OUTPUT_DIR/exports")
    p.add_argument("--config", metavar="FILE", help="TrainConfig JSON file (command-line options override it)")
    p.add_argument("--phase", choices=["pretrain", "gan", "both"], help="which phase(s) to run (default: both)")
    p.add_argument("--steps", type=int, help="steps of each selected phase (overrides pretrain_steps/gan_steps)")
    p.add_argument(
        "--batch-size", type=int, help="images per step (default 16); under torchrun the global batch of all processes"
    )
    p.add_argument("--crop-size", type=int, help="HR crop size, divisible by the scale (default 96)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    p.add_argument("--pretrain-loss", help="pretrain pixel loss: mse (default), l1, or a spec like 'l1:1+mse:0.5'")
    p.add_argument("--content-loss", help="GAN content loss: vgg54 (default), vgg22, mse, l1, or 'l1:1+vgg54:0.006'")
    p.add_argument("--adv-loss", choices=["bce", "relativistic"], help="adversarial loss (default bce)")
    p.add_argument("--adv-weight", type=float, help="weight of the adversarial term (default 1e-3)")
    p.add_argument(
        "--fm-weight", type=float, help="weight of discriminator feature matching in the GAN phase (default 0: off)"
    )
    p.add_argument(
        "--degradation",
        choices=["bicubic", "blur", "real", "real-mild"],
        help="how LR images are made: bicubic (default), blur, or Real-ESRGAN's real-world model (real, real-mild)",
    )
    p.add_argument("--scale", type=int, choices=[2, 4, 8], help="upscaling factor (default 4)")
    p.add_argument("--init", metavar="MODEL", help="start from these generator weights (name, file or folder)")
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default auto; under torchrun cuda:LOCAL_RANK)"
    )
    p.add_argument("--workers", type=int, help="DataLoader worker processes")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an OUTPUT_DIR that holds a run (deletes its checkpoint, generator, config and metrics)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set any TrainConfig field, e.g. --set ema_decay=0.999 --set amp=none",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _resolve_config(args: argparse.Namespace) -> TrainConfig:

    data = TrainConfig.from_json(args.config).to_dict() if args.config else TrainConfig().to_dict()
    if args.resume and not args.config and (Path(args.output_dir) / "config.json").exists():
        data = TrainConfig.from_json(Path(args.output_dir) / "config.json").to_dict()
    simple = {
        "phase": "phase",
        "batch_size": "batch_size",
        "crop_size": "crop_size",
        "lr": "lr",
        "pretrain_loss": "pretrain_loss",
        "content_loss": "content_loss",
        "adv_loss": "adv_loss",
        "adv_weight": "adv_weight",
        "fm_weight": "fm_weight",
        "degradation": "degradation",
        "scale": "scale",
        "workers": "num_workers",
    }
    for arg, field in simple.items():
        value = getattr(args, arg)
        if value is not None:
            data[field] = value
    if args.steps is not None:
        phase = data["phase"]
        if phase in ("pretrain", "both"):
            data["pretrain_steps"] = args.steps
        if phase in ("gan", "both"):
            data["gan_steps"] = args.steps
    data.update(_set_overrides(args.set))
    return TrainConfig.from_dict(data)


def _set_overrides(items: Sequence[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"srgan-train: --set expects FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields the command line sets for every stage of a recipe."""
    out: dict[str, Any] = {}
    if args.workers is not None:
        out["num_workers"] = args.workers
    out.update(_set_overrides(args.set))
    ignored = [
        name
        for name in ("config", "phase", "steps", "batch_size", "crop_size", "lr", "pretrain_loss", "content_loss")
        if getattr(args, name) is not None
    ]
    if args.init:
        ignored.append("init")
    if ignored:
        flags = ", ".join("--" + n.replace("_", "-") for n in ignored)
        raise SystemExit(
            "srgan-train: with --recipe, stage settings come from the recipe; use --set FIELD=VALUE to change a "
            f"field for every stage, or --use STAGE=WEIGHTS for a stage's input (not {flags})"
        )
    return out


def _run_recipe(args: argparse.Namespace) -> int:
    from ..training.recipes import load_recipe, run_recipe

    recipe = load_recipe(args.recipe)
    overrides = _recipe_overrides(args)
    provided: dict[str, str] = {}
    for item in args.use:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"srgan-train: --use expects STAGE=WEIGHTS, got {item!r}")
        recipe.stage(name)
        provided[name] = value
    if args.dry_run:
        print(recipe.describe(overrides))
        return 0
    if not args.train_dir or not args.output_dir:
        raise SystemExit("srgan-train: --recipe needs --train-dir and --output-dir (or --dry-run)")
    from ..training.callbacks import KeepExports

    callbacks = [KeepExports(Path(args.output_dir) / "exports")] if args.keep_exports else []
    result = run_recipe(
        recipe,
        train_dirs=args.train_dir,
        val_dirs=args.val_dir,
        output_dir=args.output_dir,
        overrides=overrides,
        provided=provided,
        from_stage=args.from_stage,
        to_stage=args.to_stage,
        resume=args.resume,
        trainer_kwargs={
            "device": args.device,
            "progress": False if args.no_progress else None,
            "callbacks": callbacks,
        },
    )
    print(
        f"recipe {recipe.name}: trained {result.trained or 'nothing'}, skipped (finished) {result.skipped or 'none'}; "
        f"generator: {result.generator}"
    )
    return 0


@closed_pipe_exits_quietly
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``srgan-train``."""
    args = build_parser().parse_args(argv)
    if args.list_recipes:
        from ..training.recipes import list_recipes, load_recipe

        for name in list_recipes():
            r = load_recipe(name)
            print(f"{name}: {len(r.stages)} stages -> {r.model}: {r.description}")
        return 0
    if not args.recipe and (not args.train_dir or not args.output_dir):
        build_parser().error("--train-dir and --output-dir are required (unless --recipe NAME --dry-run)")
    from ..runtime import env_rank, env_world_size

    try:
        rank, distributed = env_rank(), env_world_size() > 1
    except SRGANError as e:
        print(f"srgan-train: error: {e}", file=sys.stderr)
        return 2
    # Under torchrun only rank 0 reports progress; the other ranks log warnings and errors.
    where = f" (rank {rank})" if distributed else ""
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s %(levelname)s{where} %(message)s",
    )
    try:
        if args.recipe:
            return _run_recipe(args)
        config = _resolve_config(args)
        if rank == 0:
            print("resolved config:\n" + config.to_json(), end="")
        from ..training.trainer import Trainer

        trainer = Trainer(
            config,
            train_dirs=args.train_dir,
            val_dirs=args.val_dir,
            output_dir=args.output_dir,
            device=args.device,
            resume=args.resume,
            overwrite=args.overwrite,
            init_generator=args.init,
            progress=False if args.no_progress else None,
        )
        result = trainer.fit()
    except SRGANError as e:
        print(f"srgan-train: error{where}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if rank == 0:
            print(f"srgan-train: interrupted; resume with --resume (state in {args.output_dir})", file=sys.stderr)
        return 130
    if rank != 0:
        return 0
    scores = ", ".join(f"{k} {v:.4f}" for k, v in result.last_metrics.items()) or "no validation"
    best = f", best pretrain PSNR {result.best_psnr:.3f} dB" if result.best_psnr is not None else ""
    print(f"done: steps {result.steps}; last validation: {scores}{best}; output in {result.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
