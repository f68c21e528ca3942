"""The training loop: SRResNet pretraining with a pixel loss, then adversarial (SRGAN) fine-tuning."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .._dihedral import self_ensemble
from .._files import atomic_write_text
from .._resolve import CHECKPOINT_NAME, resolve_checkpoint
from ..degradation import TrainingPairPool, modcrop, quantize, unsharp_mask
from ..errors import CheckpointError, ConfigError, DataError, RunExistsError, TrainingDivergedError
from ..evaluation import protocol_lr, score
from ..losses import AdversarialLoss, PerceptualLoss, feature_matching_loss, pixel_loss
from ..metrics import rgb_to_y
from ..models import Discriminator, Generator
from ..runtime import cpu_has_native_bf16
from ..weights import atomic_torch_save, load_checkpoint, remove_leftover_temp_files, save_checkpoint
from .callbacks import TrainerCallback
from .config import REAL_DEGRADATIONS, TrainConfig, parse_loss_spec
from .data import SRCropDataset, StepSampler, find_images, make_degradation, read_rgb
from .distributed import DistributedContext, convert_sync_batchnorm, setup

__all__ = ["Trainer", "TrainResult", "STATE_NAME"]

logger = logging.getLogger(__name__)

STATE_NAME = "checkpoint.pt"
"""Resumable training state inside the output folder (generator, discriminator, optimizers, RNG, step)."""

_VGG_LAYERS = {"vgg54": "relu5_4", "vgg22": "relu2_2"}


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    steps: dict[str, int]
    best_psnr: float | None
    last_metrics: dict[str, float]
    output_dir: Path


class _ContentLoss(nn.Module):
    """Weighted sum of pixel and VGG losses from a spec like ``"l1:1+vgg54:0.006"``.

    ``y_weight`` adds, for each pixel term, the same loss on the luma channel (BT.601 Y scaled to [0, 1]) times
    ``y_weight``.
    """

    def __init__(self, spec: str, *, vgg_weights: str, y_weight: float = 0.0) -> None:
        super().__init__()
        self.y_weight = y_weight
        self.terms = parse_loss_spec(spec)
        self.vgg = nn.ModuleDict()
        for name in self.terms:
            if name in _VGG_LAYERS:
                weights: Any = "DEFAULT" if vgg_weights == "imagenet" else None
                self.vgg[name] = PerceptualLoss(layer=_VGG_LAYERS[name], weights=weights)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        total = sr.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        for name, w in self.terms.items():
            if name in self.vgg:
                value = self.vgg[name](sr, hr).float()
            else:
                value = pixel_loss(sr.float(), hr.float(), kind=name)  # type: ignore[arg-type]
                if self.y_weight:
                    y_sr, y_hr = rgb_to_y(sr.float()) / 255, rgb_to_y(hr.float()) / 255
                    value = value + self.y_weight * pixel_loss(y_sr, y_hr, kind=name)  # type: ignore[arg-type]
            parts[name] = float(value.detach())
            total = total + w * value
        return total, parts


class Trainer:
    """Train a :class:`~srgan.models.Generator` (and a :class:`~srgan.models.Discriminator`) on image folders.

    The output folder receives ``config.json``, ``checkpoint.pt`` (resumable state, written atomically every
    ``ckpt_every`` steps and on Ctrl-C; temporary files left by a run killed while saving are deleted when a Trainer
    opens the folder), ``generator.pt`` (best generator of the pretrain phase by validation
    PSNR, or the last of the GAN phase; ``SRGAN.from_pretrained(output_dir)`` loads it), ``metrics.jsonl`` and
    ``samples/``.

    Under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) the Trainer initialises ``torch.distributed`` and
    trains with DistributedDataParallel: ``config.batch_size`` is the global batch, split evenly over the ranks, and
    only rank 0 logs, validates and writes files (see ``docs/distributed.md``). A process group the Trainer created
    is destroyed when :meth:`fit` returns or raises, or when the constructor fails.

    Args:
        config: the run's :class:`TrainConfig`.
        train_dirs: folders of training images (searched recursively).
        val_dirs: folders of validation images (full images, LR by the benchmark's bicubic).
        output_dir: where everything is written.
        device: ``"auto"`` (CUDA, MPS, CPU) or a torch device; in a distributed run ``"auto"`` and ``"cuda"`` mean
            ``cuda:LOCAL_RANK``.
        resume: continue from ``output_dir/checkpoint.pt`` if it exists.
        overwrite: start over in a folder that holds a run (its checkpoint, generator, config, metrics and samples
            are deleted first). Without ``resume`` or ``overwrite`` such a folder is refused
            (:class:`~srgan.errors.RunExistsError`): nothing is lost by mistake.
        init_generator: start from these generator weights (e.g. a pretrained SRResNet for ``phase="gan"``):
            a :class:`Generator`, or anything ``SRGAN.from_pretrained`` accepts (name, file, folder, URL).
        progress: show a progress bar (None: only on a terminal).
        callbacks: objects notified after each validation, checkpoint and export (see
            :class:`~srgan.training.callbacks.TrainerCallback`).
        cache_dir: where computed data that runs can share is kept (the teacher's outputs); default
            ``output_dir``.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        train_dirs: Sequence[str | os.PathLike[str]],
        val_dirs: Sequence[str | os.PathLike[str]] = (),
        output_dir: str | os.PathLike[str],
        device: str | torch.device | None = "auto",
        resume: bool = False,
        overwrite: bool = False,
        init_generator: Generator | str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.callbacks = list(callbacks)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(output_dir)
        self.train_dirs = [Path(d) for d in train_dirs]
        self.val_dirs = [Path(d) for d in val_dirs]
        self.output_dir = Path(output_dir)
        self.dist: DistributedContext = setup(device)
        self.device = self.dist.device
        try:
            self._build(progress=progress, resume=resume, overwrite=overwrite, init_generator=init_generator)
        except BaseException:
            self.dist.shutdown()
            raise

    def _build(
        self,
        *,
        progress: bool | None,
        resume: bool,
        overwrite: bool,
        init_generator: Generator | str | os.PathLike[str] | None,
    ) -> None:
        config = self.config
        if self.dist.enabled:
            self._check_same_config()
        self.batch_per_rank = self._check_batch()
        main = self.dist.is_main
        self.progress = main and (sys.stderr.isatty() if progress is None else progress)
        self.amp_dtype = self._resolve_amp()
        if main:
            self._claim_output_dir(resume=resume, overwrite=overwrite)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for name in (STATE_NAME, CHECKPOINT_NAME):  # partial files of a run that was killed while saving
                remove_leftover_temp_files(self.output_dir / name)

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        self.generator = Generator(scale=config.scale, num_blocks=config.num_blocks, channels=config.channels)
        self.generator.reset_parameters(residual_init_scale=config.residual_init_scale)
        if init_generator is not None:
            self._load_init(init_generator)
        self.generator.to(self.device)
        self.discriminator = Discriminator().to(self.device)
        if config.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.ema: Generator | None = None
        if config.ema_decay is not None:
            self.ema = copy.deepcopy(self.generator).requires_grad_(False)
        if config.sync_batchnorm and self.dist.enabled:
            convert_sync_batchnorm(self.generator, self.device)
            convert_sync_batchnorm(self.discriminator, self.device)
        # Fused Adam: one kernel per parameter group instead of a dozen elementwise passes; it matters for the
        # discriminator's 19 M-parameter dense layer (about 10 % of a GAN step on a CPU).
        fused = True if self.device.type in ("cpu", "cuda") else None
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=config.betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=config.betas, fused=fused)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.phase = "gan" if config.phase == "gan" else "pretrain"
        self.step = 0  # within the current phase
        self.steps_done: dict[str, int] = {"pretrain": 0, "gan": 0}
        # Step counts fitted to ``time_budget`` (a phase absent here trains its configured steps).
        self.fitted_steps: dict[str, int] = {}
        self.best_psnr: float | None = None
        self.last_metrics: dict[str, float] = {}
        self._losses: dict[str, nn.Module] = {}
        self._tb: Any = _tensorboard_writer(self.output_dir / "tensorboard") if main else None

        self.dataset = SRCropDataset(
            self.train_dirs,
            crop_size=config.crop_size,
            scale=config.scale,
            degradation=make_degradation(config.degradation, scale=config.scale, blur_sigma=config.blur_sigma),
            cache_images=config.cache_images,
            seed=config.seed,
            degrade_whole_images=config.degrade_whole_images,
            min_size=config.crop_size_late,
            hr_only=config.degradation in REAL_DEGRADATIONS,
        )
        # Real-world degradations run batched on the training device, in the step (see _prepare).
        self._real = self.dataset.degradation if config.degradation in REAL_DEGRADATIONS else None
        self._pool = TrainingPairPool(config.pair_pool, seed=config.seed) if config.pair_pool else None
        self._step_open = False
        if config.teacher is not None:
            self.dataset.set_targets(self._teacher_targets(config.teacher))
        self._check_losses_available()
        self.val_images = self._load_val() if main else []
        if resume:
            path = self.output_dir / STATE_NAME
            # Rank 0 reads the file and sends it: other nodes need no shared file system.
            state = self.dist.on_main(lambda: self._read_state(path) if path.exists() else None)
            if state is not None:
                self._load_state_dict(state)
                if main:
                    self._trim_metrics()
                    logger.info("resumed from %s: phase %s, step %d", path, self.phase, self.step)
        if main:
            config.to_json(self.output_dir / "config.json")
        # What the training step calls: DistributedDataParallel wrappers in a distributed run (gradients averaged
        # over ranks), else the modules themselves. ``generator`` and ``discriminator`` stay the plain modules, so
        # state dicts and checkpoints never carry DDP's "module." prefix.
        self._g = self.dist.wrap(self.generator)
        self._d = self.dist.wrap(self.discriminator)

    # ------------------------------------------------------------------ setup helpers
    def _claim_output_dir(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse a folder that holds a run unless resuming or overwriting; with ``overwrite`` clear the run."""
        found = [name for name in _RUN_FILES if (self.output_dir / name).exists()]
        if not found or resume:
            return
        if not overwrite:
            raise RunExistsError(
                f"{self.output_dir} already holds a training run ({', '.join(found)}): pass --resume to continue "
                "it, --overwrite to delete it and start over, or choose another --output-dir"
            )
        logger.warning("--overwrite: deleting the run in %s (%s)", self.output_dir, ", ".join(found))
        for name in found:
            path = self.output_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def _check_same_config(self) -> None:
        """Every rank must train with rank 0's configuration (e.g. nodes started with different options).

        ``num_workers`` and ``cache_images`` may differ: they change how a process loads data, not what it computes.
        """
        mine = {k: v for k, v in self.config.to_dict().items() if k not in ("num_workers", "cache_images")}
        reference = self.dist.on_main(lambda: mine)
        if not self.dist.all_true(reference == mine):
            differ = sorted(k for k in mine if reference.get(k) != mine[k]) or "none here; another rank's differs"
            raise ConfigError(
                f"the processes of this run have different TrainConfigs (fields differing from rank 0's: {differ}); "
                "start every node with the same options (with --resume and no --config, each node reads "
                "OUTPUT_DIR/config.json: copy it or pass --config)"
            )

    def _check_batch(self) -> int:
        """Images per rank: ``batch_size`` is the global batch and must split evenly over the ranks."""
        c, w = self.config, self.dist.world_size
        if c.batch_size % w:
            raise ConfigError(
                f"TrainConfig.batch_size = {c.batch_size} is the global batch and must be divisible by the number "
                f"of processes, {w}: use e.g. {-(-c.batch_size // w) * w} ({-(-c.batch_size // w)} per process)"
            )
        per_rank = c.batch_size // w
        if w > 1 and c.phase != "pretrain" and not c.sync_batchnorm and per_rank * (c.crop_size // 16) ** 2 < 2:
            raise ConfigError(
                f"batch_size = {c.batch_size} over {w} processes with crop_size = {c.crop_size} leaves each rank's "
                "discriminator BatchNorm a single value per channel; use a larger batch_size or crop_size, or "
                "sync_batchnorm=true"
            )
        return per_rank

    def _resolve_amp(self) -> torch.dtype | None:
        amp = self.config.amp
        if amp == "none":
            return None
        if amp == "bf16":
            return torch.bfloat16
        if amp == "fp16":
            if self.device.type == "cpu":
                raise ConfigError("amp='fp16' is not supported on CPU; use 'bf16', 'auto' or 'none'")
            return torch.float16
        if self.device.type == "cpu":
            return torch.bfloat16 if cpu_has_native_bf16() else None
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None

    def _load_init(self, init: Generator | str | os.PathLike[str]) -> None:
        src = init if isinstance(init, Generator) else _load_generator(init, what="init weights")
        if src.config != self.generator.config:
            raise ConfigError(
                f"init generator has architecture {src.config}, but the config asks for {self.generator.config}"
            )
        self.generator.load_state_dict(src.state_dict())

    def _check_losses_available(self) -> None:
        """Build the content losses of the phases to run now, so that missing VGG19 weights (offline, no cache)
        stop the run before its first step with a named error, not after hours of pretraining."""
        phases = {"pretrain": ["pretrain"], "gan": ["content"], "both": ["pretrain", "content"]}[self.config.phase]
        for name in phases:
            spec = self.config.pretrain_loss if name == "pretrain" else self.config.content_loss
            try:
                self._loss(name)
            except ConfigError:
                raise
            except Exception as e:  # torchvision's download: URLError, HTTPError, OSError, RuntimeError...
                hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
                raise ConfigError(
                    f"the {'pretrain' if name == 'pretrain' else 'GAN content'} loss {spec!r} needs torchvision's "
                    f"VGG19 ImageNet weights, which could not be loaded ({type(e).__name__}: {e}). torchvision "
                    f"downloads them once into {hub_dir}; on a machine without network, copy the file "
                    "vgg19-dcbb9e9d.pth there (or set TORCH_HOME), or train without VGG features, e.g. "
                    "--content-loss l1 --fm-weight 0.5 (discriminator feature matching)"
                ) from e

    def _teacher_targets(self, spec: str) -> list[torch.Tensor]:
        """The teacher's x8 self-ensemble output on each training image's LR, (3, H, W) uint8 like the HR images.

        Computed once per image in fp32 on the training device and cached in ``cache_dir`` in one file per teacher
        (named from a hash of its weights), keyed by a hash of each LR image: runs and recipe stages that use the
        same teacher share it, also when their crop sizes keep different subsets of the images.
        """
        teacher = _load_generator(spec, what="teacher")
        digest = hashlib.sha256()
        for k, v in teacher.state_dict().items():
            digest.update(k.encode())
            digest.update(v.detach().float().cpu().numpy().tobytes())
        path = self.cache_dir / f"teacher-{digest.hexdigest()[:16]}.pt"
        keys = [
            hashlib.sha256(f"{tuple(lr.shape)}".encode() + lr.numpy().tobytes()).hexdigest()[:24]
            for lr in self.dataset.lr_images
        ]
        cached: dict[str, torch.Tensor] = {}
        if path.is_file():
            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
                if not isinstance(loaded, dict):
                    raise TypeError(f"expected a dict of tensors, got {type(loaded).__name__}")
                cached = {
                    str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor) and v.dtype == torch.uint8
                }
            except Exception as e:  # a broken cache is recomputed, never trusted
                logger.warning("ignoring unreadable teacher cache %s: %s", path, e)
        missing = [
            i
            for i, (key, hr) in enumerate(zip(keys, self.dataset.hr_images, strict=True))
            if key not in cached or cached[key].shape != hr.shape
        ]
        if missing:
            model = teacher.to(self.device).float().eval()
            t0 = time.perf_counter()
            for n, i in enumerate(missing, 1):
                x = self.dataset.lr_images[i].float().div(255).unsqueeze(0).to(self.device)
                sr = self_ensemble(model, x)[0].clamp_(0, 1)
                cached[keys[i]] = sr.mul_(255).round_().to(torch.uint8).cpu()
                if n % 50 == 0:
                    logger.info("teacher: %d / %d images, %.0f s", n, len(missing), time.perf_counter() - t0)
            if self.dist.is_main:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                atomic_torch_save(cached, path)
                logger.info("teacher outputs of %d images computed, cached in %s", len(missing), path)
        else:
            logger.info("teacher outputs from %s", path)
        return [cached[key] for key in keys]

    def _load_val(self) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        if not self.val_dirs:
            return []
        out: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        files = find_images(self.val_dirs)[: self.config.val_max_images]
        s = self.config.scale
        for f in files:
            try:
                hr = modcrop(read_rgb(f).float().div_(255), s)
            except (OSError, ValueError) as e:
                logger.warning("skipping unreadable validation image %s: %s", f, e)
                continue
            if min(hr.shape[-2:]) < 4 * s:
                continue
            if self.config.degradation in REAL_DEGRADATIONS:  # the evaluation protocol's fixed real-world chain
                lr = protocol_lr(hr.unsqueeze(0).double(), scale=s, degradation="real-fixed", index=len(out)).float()
            else:
                degrade = make_degradation(self.config.degradation, scale=s, blur_sigma=self.config.blur_sigma)
                lr = quantize(degrade(hr.unsqueeze(0).double()).float())
            out.append((f.stem, lr, hr.unsqueeze(0)))
        if not out:
            raise DataError(f"no usable validation image in {[str(d) for d in self.val_dirs]}")
        return out

    def _loss(self, name: str) -> nn.Module:
        if name not in self._losses:
            c = self.config
            if name == "pretrain":
                self._losses[name] = _ContentLoss(c.pretrain_loss, vgg_weights=c.vgg_weights, y_weight=c.y_weight).to(
                    self.device
                )
            elif name == "content":
                self._losses[name] = _ContentLoss(c.content_loss, vgg_weights=c.vgg_weights).to(self.device)
            else:
                self._losses[name] = AdversarialLoss(kind=c.adv_loss)  # type: ignore[arg-type]
        return self._losses[name]

    # ------------------------------------------------------------------ schedule
    def _phase_steps(self, phase: str) -> int:
        """Steps of ``phase``: the configured count, or the count fitted to ``time_budget``."""
        if phase in self.fitted_steps:
            return self.fitted_steps[phase]
        return self.config.pretrain_steps if phase == "pretrain" else self.config.gan_steps

    def crop_size_at(self, step: int, phase: str) -> int:
        """HR crop size at ``step`` of ``phase`` (``crop_size``, then ``crop_size_late`` after the switch)."""
        c = self.config
        if c.crop_size_late is None or step < int(c.crop_switch_at * self._phase_steps(phase)):
            return c.crop_size
        return c.crop_size_late

    def lr_at(self, step: int, phase: str) -> float:
        """Learning rate at ``step`` of ``phase`` (warm-up, then the configured schedule)."""
        c = self.config
        total = max(1, self._phase_steps(phase))
        if c.warmup_steps and step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        schedule = c.pretrain_lr_schedule if phase == "pretrain" else c.lr_schedule
        if schedule == "constant":
            return c.lr
        if schedule == "cosine":
            t = min(1.0, (step - c.warmup_steps) / max(1, total - c.warmup_steps))
            floor = c.lr * 0.01 if c.lr_min is None else c.lr_min
            return floor + 0.5 * (c.lr - floor) * (1 + math.cos(math.pi * t))
        decays = sum(1 for f in c.lr_decay_at if step >= f * total)
        return c.lr * c.lr_decay_factor**decays

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            "format": "srgan.trainer",
            "format_version": 1,
            "config": self.config.to_dict(),
            "phase": self.phase,
            "step": self.step,
            "steps_done": dict(self.steps_done),
            "fitted_steps": dict(self.fitted_steps),
            "best_psnr": self.best_psnr,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pool": self._pool_state(),
            "rng": {
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
                "numpy": _numpy_rng_state(),
            },
        }

    def save_state(self) -> Path:
        """Write ``checkpoint.pt`` atomically; the previous one stays intact if this fails."""
        path = self.output_dir / STATE_NAME
        atomic_torch_save(self.state_dict(), path)
        for cb in self.callbacks:
            cb.on_checkpoint(self, path)
        return path

    def _read_state(self, path: Path) -> dict[str, Any]:
        """Load and check a training checkpoint. Run folders are shared like models: the file is read with
        ``torch.load(weights_only=True)`` (tensors, numbers, strings and containers only: no code runs)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # any unpickling failure means a broken, foreign or hostile file
            raise CheckpointError(
                f"cannot resume from {path}: it is not a readable srgan training checkpoint ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}). srgan loads checkpoints as data only and runs no code "
                "from them. Delete it to start over (or use another --output-dir)."
            ) from e
        if not isinstance(state, dict) or state.get("format") != "srgan.trainer":
            raise CheckpointError(
                f"{path} is not an srgan training checkpoint (expected a dict with format 'srgan.trainer'); delete "
                "it or use another --output-dir"
            )
        missing = sorted(k for k in _STATE_KEYS if k not in state)
        config = state.get("config")
        if missing or not isinstance(config, dict) or not isinstance(state.get("rng"), dict):
            raise CheckpointError(
                f"{path} is an incomplete srgan training checkpoint (missing or malformed: "
                f"{missing or ['config/rng']}); delete it to start over"
            )
        if any(config.get(k) != getattr(self.config, k) for k in ("scale", "num_blocks", "channels")):
            raise ConfigError(
                f"{path} was written for a different architecture ({state['config']}); use a fresh output folder"
            )
        return state

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a :meth:`state_dict`, written by a run with any number of processes)."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.ema is not None:
            # A run that enables EMA on resume starts the average from the loaded weights.
            self.ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])
        self.phase, self.step = state["phase"], int(state["step"])
        self.steps_done = dict(state["steps_done"])
        self.fitted_steps = {str(k): int(v) for k, v in dict(state.get("fitted_steps") or {}).items()}
        pool = state.get("pool")
        if self._pool is not None and pool is not None and pool["lr"] is not None:
            self._pool._lr = pool["lr"].to(self.device)
            self._pool._hr = pool["hr"].to(self.device)
            self._pool._filled = int(pool["filled"])
            self._pool.generator.set_state(pool["generator"])
        self.best_psnr = state["best_psnr"]
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(_as_tuples(state["rng"]["python"]))
        _set_numpy_rng_state(state["rng"]["numpy"])

    def _gan_loss_text(self) -> str:
        c = self.config
        text = f"{c.content_loss} + {c.adv_weight} * {c.adv_loss} adversarial"
        if c.fm_weight:
            text += f" + {c.fm_weight} * discriminator feature matching"
        return text

    def _pool_state(self) -> dict[str, Any] | None:
        if self._pool is None:
            return None
        p = self._pool
        return {
            "lr": None if p._lr is None else p._lr.cpu(),
            "hr": None if p._hr is None else p._hr.cpu(),
            "filled": p._filled,
            "generator": p.generator.get_state(),
        }

    def _prepare(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The step's (lr, hr[, target]) from a loader batch: with a real-world degradation the batch is HR only,
        degraded here on the training device, seeded by (seed, step, rank) so that a resumed run sees the same
        pairs; then optionally mixed through the pair pool."""
        if self._real is None:
            return tensors
        hr = tensors[0]
        if self.config.sharpen_hr:
            hr = unsharp_mask(hr)
        offset = 0 if self.phase == "pretrain" else self.config.pretrain_steps
        seed = (self.config.seed * 1_000_003 + (offset + self.step) * 8191 + self.dist.rank) % (1 << 63)
        lr = self._real(hr, generator=torch.Generator().manual_seed(seed))
        if self._pool is not None:
            lr, hr = self._pool(lr, hr)
        return lr, hr

    def export_generator(self) -> Path:
        """Write ``generator.pt`` (the EMA weights when enabled) for ``SRGAN.from_pretrained(output_dir)``."""
        model = self.ema if self.ema is not None else self.generator
        meta: dict[str, Any] = {
            "phase": self.phase,
            "steps": dict(self.steps_done),
            "loss": self.config.pretrain_loss if self.phase == "pretrain" else self._gan_loss_text(),
            "vgg_weights": self.config.vgg_weights,
            "degradation": self.config.degradation,
            "trained_on": [str(d) for d in self.train_dirs],
            "metrics": self.last_metrics,
        }
        if self.config.teacher is not None:
            meta["teacher"] = {"model": self.config.teacher, "weight": self.config.teacher_weight}
        if self.config.y_weight:
            meta["y_weight"] = self.config.y_weight
        if self.config.sharpen_hr:
            meta["sharpen_hr"] = True
        if self.config.pair_pool:
            meta["pair_pool"] = self.config.pair_pool
        path = save_checkpoint(self.output_dir / CHECKPOINT_NAME, model, meta=meta)
        for cb in self.callbacks:
            cb.on_export(self, path)
        return path

    # ------------------------------------------------------------------ loop
    def _batches(self, phase: str) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batches for steps ``self.step..`` of ``phase`` (the caller advances ``self.step`` between them).

        One DataLoader per crop size: when the crop size changes (``crop_size_late``) or the phase's step count
        is lowered (``time_budget``), the current loader is dropped and the next starts at the current step.
        """
        offset = 0 if phase == "pretrain" else self.config.pretrain_steps
        while self.step < self._phase_steps(phase):
            crop = self.crop_size_at(self.step, phase)
            self.dataset.crop_size = crop
            sampler = StepSampler(
                start_step=self.step,
                steps=self._phase_steps(phase),
                batch_size=self.config.batch_size,
                offset=offset,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
            )
            loader = DataLoader(
                self.dataset,
                batch_size=self.batch_per_rank,
                sampler=sampler,
                num_workers=self.config.num_workers,
                pin_memory=self.device.type == "cuda",
                persistent_workers=False,
            )
            for batch in loader:
                yield tuple(t.to(self.device, non_blocking=True) for t in batch)
                if self.step >= self._phase_steps(phase) or self.crop_size_at(self.step, phase) != crop:
                    break

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _check(self, loss: torch.Tensor, what: str) -> None:
        finite = bool(torch.isfinite(loss))
        if not self.dist.all_true(finite):  # every rank stops together
            value = "non-finite on another rank" if finite else loss.item()
            raise TrainingDivergedError(
                f"{what} loss became {value} at {self.phase} step {self.step}; the run stopped and the last "
                f"good checkpoint ({self.output_dir / STATE_NAME}) is intact. Lower the learning rate or use "
                "amp='none' and resume."
            )

    def _set_lr(self) -> None:
        lr = self.lr_at(self.step, self.phase)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def _train_step(
        self, lr_img: torch.Tensor, hr: torch.Tensor, target: torch.Tensor | None = None
    ) -> dict[str, float]:
        if self.config.channels_last:
            lr_img = lr_img.contiguous(memory_format=torch.channels_last)
            hr = hr.contiguous(memory_format=torch.channels_last)
        self._set_lr()
        self.generator.train()
        if self.config.freeze_bn:
            _freeze_batchnorm(self.generator)
        logs: dict[str, float] = {}
        if self.phase == "pretrain":
            with self._autocast():
                sr = self._g(lr_img)
            loss, parts = self._loss("pretrain")(sr.float(), hr)
            if target is not None and self.config.teacher_weight:
                t_loss, t_parts = self._loss("pretrain")(sr.float(), target)
                loss = loss + self.config.teacher_weight * t_loss
                parts.update({f"teacher_{k}": v for k, v in t_parts.items()})
            self._check(loss, "pixel")
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt_g)
            self.scaler.update()
            logs["loss"] = float(loss.detach())
            logs.update({f"loss_{k}": v for k, v in parts.items()})
            return logs
        adv: Any = self._loss("adversarial")
        # Discriminator update.
        self.discriminator.train()
        with self._autocast():
            sr = self._g(lr_img)
            d_real = self._d(hr)
            d_fake = self._d(sr.detach())
        d_loss = adv.discriminator_loss(d_real.float(), d_fake.float())
        self._check(d_loss, "discriminator")
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.opt_d)
        # Generator update: through the plain discriminator (its parameters frozen), so that DDP waits for no
        # discriminator gradients; the generator's gradients are averaged by its own DDP wrapper.
        self.discriminator.requires_grad_(False)
        try:
            fm_weight = self.config.fm_weight
            real_logits = None
            with self._autocast():
                if fm_weight:
                    fake_logits, fake_feats = self.discriminator.forward_features(sr)
                    with torch.no_grad():
                        real_logits, real_feats = self.discriminator.forward_features(hr)
                else:
                    fake_logits = self.discriminator(sr)
                    if adv.kind == "relativistic":
                        with torch.no_grad():
                            real_logits = self.discriminator(hr)
            content, parts = self._loss("content")(sr.float(), hr)
            g_adv = adv.generator_loss(fake_logits.float(), None if real_logits is None else real_logits.float())
            g_loss = content + self.config.adv_weight * g_adv
            if fm_weight:
                g_fm = feature_matching_loss(fake_feats, real_feats)
                parts["fm"] = float(g_fm.detach())
                g_loss = g_loss + fm_weight * g_fm
            self._check(g_loss, "generator")
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(g_loss).backward()
            self.scaler.step(self.opt_g)
            self.scaler.update()
        finally:
            self.discriminator.requires_grad_(True)
        logs.update(
            {
                "loss": float(g_loss.detach()),
                "loss_content": float(content.detach()),
                "loss_adv": float(g_adv.detach()),
                "loss_d": float(d_loss.detach()),
            }
        )
        logs.update({f"loss_{k}": v for k, v in parts.items()})
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None or self.config.ema_decay is None:
            return
        done = self.steps_done["pretrain"] + self.steps_done["gan"]
        d = min(self.config.ema_decay, (1 + done) / (10 + done))
        for e, m in zip(self.ema.state_dict().values(), self.generator.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM on the Y channel (border = scale) over the validation images; writes sample images."""
        if not self.val_images:
            return {}
        model = self.ema if self.ema is not None else self.generator
        was_training = model.training
        model.eval()
        s = self.config.scale
        p, q = [], []
        sample_dir = self.output_dir / "samples"
        for i, (name, lr, hr) in enumerate(self.val_images):
            sr = quantize(model(lr.to(self.device)).float().cpu())
            scores = score(sr, hr, scale=s)
            p.append(scores[0])
            q.append(scores[1])
            if i < self.config.num_samples:
                from PIL import Image

                sample_dir.mkdir(exist_ok=True)
                arr = (sr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                Image.fromarray(arr).save(sample_dir / f"{self.phase}_{self.step:07d}_{name}.png")
        model.train(was_training)
        return {"val_psnr": float(np.mean(p)), "val_ssim": float(np.mean(q))}

    def _trim_metrics(self) -> None:
        """Drop the ``metrics.jsonl`` records written after the checkpoint being resumed (a killed run's tail).

        Without this the steps between the last checkpoint and the kill would appear twice.
        """
        path = self.output_dir / "metrics.jsonl"
        if not path.exists():
            return
        order = {"pretrain": 0, "gan": 1}
        position = (order[self.phase], self.step)
        kept, dropped = [], 0
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                where = (order[record["phase"]], int(record["step"]))
            except (ValueError, KeyError, TypeError):
                kept.append(line)  # not one of ours: keep it
                continue
            if where <= position:
                kept.append(line)
            else:
                dropped += 1
        if dropped:
            atomic_write_text(path, "".join(f"{line}\n" for line in kept))
            logger.info("dropped %d metrics.jsonl records written after the resumed checkpoint", dropped)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.output_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            global_step = self.steps_done["pretrain"] + self.steps_done["gan"]
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(f"{record.get('phase', 'train')}/{key}", value, global_step)
            self._tb.flush()

    def fit(self) -> TrainResult:
        """Run the configured phase(s) to the end (or continue a resumed run). Ctrl-C saves and re-raises.

        In a distributed run the result's ``best_psnr`` and ``last_metrics`` are rank 0's (other ranks do not
        validate).
        """
        phases = {"pretrain": ["pretrain"], "gan": ["gan"], "both": ["pretrain", "gan"]}[self.config.phase]
        try:
            for phase in phases[phases.index(self.phase) :]:
                if phase != self.phase:
                    self._start_gan_from_best_pretrain()
                    self.phase, self.step = phase, 0
                self._run_phase()
            if self.dist.is_main and not (self.output_dir / CHECKPOINT_NAME).exists():
                # A run with nothing to do (0 steps) still leaves a folder that loads: its initial weights.
                logger.warning("no training step ran: exporting the initial generator to %s", CHECKPOINT_NAME)
                self.export_generator()
        finally:
            if self._tb is not None:
                self._tb.close()
                self._tb = None
            self.dist.shutdown()
        return TrainResult(
            steps=dict(self.steps_done),
            best_psnr=self.best_psnr,
            last_metrics=self.last_metrics,
            output_dir=self.output_dir,
        )

    def _start_gan_from_best_pretrain(self) -> None:
        """The GAN phase starts from the exported pretrain generator (best validation PSNR, or EMA weights)."""
        exported = self.output_dir / CHECKPOINT_NAME
        # Only rank 0 knows which pretrain generator was best: it reads the file and sends the weights.
        state = self.dist.on_main(lambda: load_checkpoint(exported).state_dict if exported.exists() else None)
        if state is not None:
            self.generator.load_state_dict(state)
            if self.ema is not None:
                self.ema.load_state_dict(state)
            if self.dist.is_main:
                logger.info("GAN phase starts from %s (pretrain PSNR %s)", exported, self.best_psnr)

    def _run_phase(self) -> None:
        c = self.config
        main = self.dist.is_main
        total = self._phase_steps(self.phase)
        if self.step >= total:
            return
        if main:
            w = self.dist.world_size
            batch = f"{c.batch_size}" if w == 1 else f"{c.batch_size} global ({self.batch_per_rank} x {w} processes)"
            logger.info(
                "%s phase: steps %d..%d, batch %s, crop %d, amp %s, device %s",
                self.phase,
                self.step,
                total,
                batch,
                c.crop_size,
                self.amp_dtype,
                self.device,
            )
        if c.val_at_start and self.step == 0 and main and c.val_every:
            self._after_validation(self.validate())
            self.save_state()
        bar = tqdm(
            total=total, initial=self.step, desc=self.phase, unit="step", disable=not self.progress, dynamic_ncols=True
        )
        window: list[float] = []
        t0 = time.perf_counter()
        budget = (
            _BudgetFitter(c.time_budget, c.warmup_steps, self.step) if self.phase not in self.fitted_steps else None
        )
        stop = _DeferredInterrupt()
        try:
            for tensors in self._batches(self.phase):
                prepared = self._prepare(tensors)
                self._step_open = True  # until the step completes, the pool holds its swap (undone on Ctrl-C)
                logs = self._train_step(*prepared)
                self._step_open = False
                self.step += 1
                self.steps_done[self.phase] = self.step
                self._update_ema()
                if budget is not None:
                    fitted = budget.update(self.step, self._sync)
                    if fitted is not None:
                        total = self._fit_steps(fitted)
                        bar.total = total
                        budget = None
                window.append(logs["loss"])
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{self.lr_at(self.step - 1, self.phase):.1e}")
                if self.step % c.log_every == 0:
                    dt = time.perf_counter() - t0
                    # Losses of the global batch: the mean of the ranks' (equal-sized) shares.
                    keys = [k for k in logs if k != "loss"]
                    values = self.dist.mean([float(np.mean(window)), *(logs[k] for k in keys)])
                    if main:
                        rec = {
                            "phase": self.phase,
                            "step": self.step,
                            "lr": self.lr_at(self.step - 1, self.phase),
                            "loss": values[0],
                            "steps_per_s": len(window) / dt,
                        }
                        rec.update(zip(keys, values[1:], strict=True))
                        self._log(rec)
                    window, t0 = [], time.perf_counter()
                if main:
                    last = self.step >= total
                    if c.val_every and (self.step % c.val_every == 0 or last):
                        self._after_validation(self.validate())
                    if (c.ckpt_every and self.step % c.ckpt_every == 0) or last:
                        self.save_state()
                if stop.requested:  # Ctrl-C during the step: it has completed, now stop
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if self._step_open and self._pool is not None:
                self._pool.undo_last()  # the checkpoint holds the state after the last completed step
            open_step, self._step_open = self._step_open, False
            if stop.forced and open_step:
                logger.warning(
                    "stopped inside %s step %d by a second Ctrl-C: %s keeps the last periodic checkpoint",
                    self.phase,
                    self.step + 1,
                    self.output_dir / STATE_NAME,
                )
                raise
            if main:
                logger.warning(
                    "interrupted at %s step %d: saving %s", self.phase, self.step, self.output_dir / STATE_NAME
                )
                self.save_state()
            raise
        finally:
            stop.close()
            bar.close()
        if not c.val_every and main:
            self.export_generator()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _fit_steps(self, fitted: int) -> int:
        """Lower the current phase's step count to ``fitted`` (agreed by all ranks: rank 0's value)."""
        configured = self.config.pretrain_steps if self.phase == "pretrain" else self.config.gan_steps
        steps = max(self.step, min(configured, self.dist.on_main(lambda: fitted)))
        self.fitted_steps[self.phase] = steps
        if self.dist.is_main:
            logger.info("time budget: %s phase trains to step %d (of %d configured)", self.phase, steps, configured)
        return steps

    def _after_validation(self, metrics: dict[str, float]) -> None:
        if not metrics:
            self.export_generator()
            return
        self.last_metrics = metrics
        self._log({"phase": self.phase, "step": self.step, **metrics})
        logger.info(
            "%s step %d: val PSNR %.3f dB, SSIM %.4f", self.phase, self.step, metrics["val_psnr"], metrics["val_ssim"]
        )
        improved = self.best_psnr is None or metrics["val_psnr"] > self.best_psnr
        if self.phase == "pretrain" and improved:
            self.best_psnr = metrics["val_psnr"]
        if self.phase == "gan" or improved or self.config.export_rule == "last":
            self.export_generator()
        for cb in self.callbacks:
            cb.on_validation(self, metrics)


class _DeferredInterrupt:
    """Ctrl-C (SIGINT) during training finishes the current step before stopping, so the interrupt checkpoint
    holds the state after a completed step (batch-norm statistics and all). A second Ctrl-C stops at once.

    Installed only in the main thread and only over Python's default handler (a caller's own handler is kept).
    """

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # the second Ctrl-C
            self.forced = True
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Ctrl-C: finishing the current step, then saving and stopping (Ctrl-C again to stop now)")

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


_RUN_FILES = (STATE_NAME, CHECKPOINT_NAME, "config.json", "metrics.jsonl", "samples", "tensorboard")
"""What a run writes into its folder: its presence means the folder holds a run."""

_STATE_KEYS = (
    "config",
    "phase",
    "step",
    "steps_done",
    "generator",
    "discriminator",
    "opt_g",
    "opt_d",
    "scaler",
    "rng",
)


def _numpy_rng_state() -> dict[str, Any]:
    """numpy's global RNG state in types ``torch.load(weights_only=True)`` accepts (no ndarray)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "kind": str(kind),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_numpy_rng_state(state: Any) -> None:
    if isinstance(state, dict):
        keys = state["keys"].numpy().astype(np.uint32)
        np.random.set_state((state["kind"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]))
    else:  # a tuple, as older srgan versions wrote it
        np.random.set_state(state)


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples; a checkpoint may give them back as lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class _BudgetFitter:
    """Fits a phase's step count to a time budget from the measured speed.

    The clock starts when the phase (re)starts; after ``settle`` steps (the warm-up, at least 10) the next 100
    steps are timed and the steps that fit in the rest of the budget are returned once.
    """

    def __init__(self, budget: float | None, warmup: int, start_step: int) -> None:
        self.budget = budget
        self.t_start = time.perf_counter()
        self.start = start_step
        self.settle = max(warmup, 10)
        self.t_rate: float | None = None

    def update(self, step: int, sync: Any) -> int | None:
        if self.budget is None:
            return None
        done = step - self.start
        if done == self.settle:
            sync()
            self.t_rate = time.perf_counter()
        elif done == self.settle + 100 and self.t_rate is not None:
            sync()
            now = time.perf_counter()
            rate = (now - self.t_rate) / 100
            left = self.budget - (now - self.t_start)
            return step + max(0, int(left / rate))
        return None


def _freeze_batchnorm(module: nn.Module) -> None:
    """Put every batch-norm layer of ``module`` in inference mode (running statistics used and kept)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _load_generator(spec: str | os.PathLike[str], *, what: str) -> Generator:
    """srgan :class:`Generator` weights from a name, file, folder or URL, fp32 on the CPU, eval mode."""
    from ..weights import build_generator

    checkpoint, source = resolve_checkpoint(spec, progress=None)
    model = build_generator(checkpoint, source=source)
    if not isinstance(model, Generator):
        raise ConfigError(
            f"{what} {spec} hold the {type(model).__name__} architecture, not srgan's Generator; "
            "training starts only from srgan Generator weights"
        )
    return model


def _tensorboard_writer(log_dir: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.debug("tensorboard is not installed; metrics go to metrics.jsonl only")
        return None
    return SummaryWriter(log_dir=str(log_dir))
