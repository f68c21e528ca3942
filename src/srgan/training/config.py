"""Training configuration: a dataclass with the paper's defaults that round-trips through JSON."""

from __future__ import annotations

import json
import numbers
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from ..errors import ConfigError

__all__ = ["TrainConfig", "parse_loss_spec", "CONTENT_LOSSES"]

CONTENT_LOSSES = ("mse", "l1", "charbonnier", "vgg54", "vgg22")
REAL_DEGRADATIONS = ("real", "real-mild")
"""The real-world (Real-ESRGAN second-order) degradations, made on the training device in the step."""
DEGRADATIONS = ("bicubic", "blur", *REAL_DEGRADATIONS)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def parse_loss_spec(spec: str) -> dict[str, float]:
    """Parse ``"vgg54"`` or ``"l1:1.0+vgg54:0.006"`` into ``{name: weight}`` (weight 1 when omitted)."""
    if not isinstance(spec, str):
        raise ConfigError(f"loss spec must be a string such as 'vgg54' or 'l1:1+vgg54:0.006', got {spec!r}")
    out: dict[str, float] = {}
    for part in spec.replace(" ", "").split("+"):
        if not part:
            continue
        name, _, weight = part.partition(":")
        if name not in CONTENT_LOSSES:
            raise ConfigError(f"unknown content loss {name!r} in {spec!r}; expected one of {CONTENT_LOSSES}")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(
                f"bad weight {weight!r} for {name!r} in loss spec {spec!r}; use e.g. 'l1:1+vgg54:0.006'"
            ) from None
    if not out:
        raise ConfigError(f"empty loss spec {spec!r}; use e.g. 'vgg54' or 'l1:1+vgg54:0.006'")
    return out


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults follow Ledig et al. 2017 unless noted.

    Attributes:
        scale: upscaling factor (2, 4 or 8).
        num_blocks: generator residual blocks (paper: 16).
        channels: generator width (paper: 64).
        phase: ``"pretrain"`` (SRResNet, pixel loss), ``"gan"`` (adversarial fine-tuning), or ``"both"`` in sequence.
        pretrain_steps: generator updates in the pretrain phase (paper: 1e6).
        gan_steps: generator updates in the GAN phase (paper: 2e5: 1e5 at ``lr`` then 1e5 at ``lr * 0.1``).
        batch_size: images per step (paper: 16). With distributed training this is the global batch, split
            evenly over the ranks: it must be divisible by the number of processes.
        crop_size: HR crop side in pixels, divisible by ``scale`` (paper: 96).
        lr: Adam learning rate (paper: 1e-4).
        betas: Adam betas (paper: beta1 = 0.9).
        pretrain_lr_schedule: schedule of the pretrain phase (paper: ``"constant"``); same choices as
            ``lr_schedule``.
        lr_schedule: schedule of the GAN phase: ``"step"`` (multiply by ``lr_decay_factor`` at each of
            ``lr_decay_at``; the paper's 1e-4 then 1e-5), ``"cosine"`` (to ``lr * 0.01`` over the phase) or
            ``"constant"``.
        lr_decay_at: fractions of a phase at which the step schedule decays (paper GAN phase: ``[0.5]``).
        lr_decay_factor: step-schedule factor (paper: 0.1, i.e. 1e-4 -> 1e-5).
        warmup_steps: linear learning-rate warm-up at the start of each phase.
        pretrain_loss: pixel loss of the pretrain phase: ``"mse"`` (paper's SRResNet-MSE), ``"l1"``, or a spec.
        content_loss: GAN-phase content loss spec, e.g. ``"vgg54"`` (paper default), ``"vgg22"``, ``"mse"``,
            ``"l1:1+vgg54:0.006"``. VGG features are rescaled by 1/12.75 as in the paper.
        adv_loss: ``"bce"`` (paper) or ``"relativistic"`` (relativistic average GAN, as ESRGAN).
        adv_weight: weight of the adversarial term in the generator loss (paper: 1e-3).
        fm_weight: weight of a discriminator feature-matching term in the GAN phase's generator loss: the mean
            over the discriminator's 8 conv stages of the L1 distance between its activations for the SR and the HR
            image (a learned perceptual loss, usable without the ImageNet VGG weights; not in the paper). 0
            disables it (default).
        vgg_weights: ``"imagenet"`` (torchvision's VGG19_Weights.IMAGENET1K_V1, downloaded by torchvision) or
            ``"none"`` (random features; for tests only).
        degradation: ``"bicubic"`` (MATLAB-style, the benchmark protocol), ``"blur"`` (Gaussian blur then
            decimation, the seed's pipeline), or Real-ESRGAN's second-order real-world model: ``"real"`` (the
            published ranges) or ``"real-mild"`` (:meth:`srgan.degradation.RealDegradationConfig.mild`). The
            real-world ones run batched on the training device inside the training step, seeded by (seed, step),
            and validation then uses the ``real-fixed`` evaluation protocol (``srgan-eval --degradation``).
        blur_sigma: Gaussian sigma for ``degradation="blur"``.
        val_every: validate (PSNR/SSIM on Y) every this many steps; 0 disables.
        ckpt_every: write the resumable checkpoint every this many steps.
        log_every: write a metrics line every this many steps.
        val_max_images: validate on at most this many images of the validation folders.
        num_samples: SR sample images written at each validation.
        ema_decay: keep an exponential moving average of the generator weights (e.g. 0.999); None disables.
            With EMA, validation and the exported generator use the averaged weights.
        amp: mixed precision: ``"auto"`` (bf16 on CPUs with native bf16 and on CUDA GPUs that support it, fp16
            with a grad scaler on older GPUs), ``"bf16"``, ``"fp16"``, or ``"none"``.
        num_workers: DataLoader worker processes (decoding and cropping off the training process).
        cache_images: keep decoded training images in memory.
        channels_last: run the networks in channels_last memory format (faster convolutions on CPUs and on
            tensor-core GPUs; with bf16 autocast about 2x the fp32 NCHW step rate on AVX512-BF16 CPUs).
        sync_batchnorm: with distributed training, normalise batch-norm layers over the global batch (statistics
            synchronised across ranks) instead of each rank's share; no effect in a single process.
        residual_init_scale: scale of the residual branches' last conv at initialisation (1.0: PyTorch default).
        seed: seed of every random choice (crops, flips, init): the same seed gives the same run.
        lr_min: floor of the cosine schedules (None: ``lr * 0.01``).
        crop_size_late: HR crop size for the last part of each phase (None: ``crop_size`` throughout); larger late
            crops are a cheap way to train on more context once the network has converged on small ones.
        crop_switch_at: fraction of a phase after which ``crop_size_late`` is used.
        degrade_whole_images: make each training image's LR once, from the whole image (as the benchmark makes
            its LR), and cut aligned LR/HR crops from the pair; needs ``cache_images``. False: the LR of each
            crop is made from the crop (the default, as the paper).
        y_weight: weight of an extra pixel-loss term on the luma channel (BT.601 Y, what PSNR-Y measures), added
            for every pixel term (``mse``, ``l1``, ``charbonnier``) of the pretrain loss, on each target.
        teacher: self-ensemble distillation: a model (registered name, file or folder) whose x8 geometric
            self-ensemble output on each training image's LR becomes a second pixel-loss target of the pretrain
            phase (needs ``degrade_whole_images``); computed once in fp32 and cached in the run folder.
        teacher_weight: weight of the teacher term relative to the HR term.
        freeze_bn: keep the generator's batch norm at its running statistics while training (inference mode):
            for fine-tuning, so the optimised function is exactly the evaluated one.
        time_budget: seconds of training per phase: after the warm-up and 100 timed steps, the phase's step count
            is lowered to what fits (never raised), so the schedule ends on time. None: train the configured steps.
        val_at_start: validate (and export) before the first step of a phase.
        export_rule: which pretrain generator ``generator.pt`` holds: ``"best"`` (best validation PSNR) or
            ``"last"`` (the final weights, so no checkpoint is picked on the validation set).
        sharpen_hr: sharpen the HR crops with Real-ESRGAN's unsharp mask before degrading them, and train towards
            the sharpened targets (as Real-ESRGAN trains); real-world degradations only.
        pair_pool: size of Real-ESRGAN's training-pair pool that mixes degradations across batches (a multiple of
            the per-process batch; 0: off); real-world degradations only. The pool is saved in ``checkpoint.pt``.
    """

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64
    phase: str = "both"
    pretrain_steps: int = 1_000_000
    gan_steps: int = 200_000
    batch_size: int = 16
    crop_size: int = 96
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    pretrain_lr_schedule: str = "constant"
    lr_schedule: str = "step"
    lr_decay_at: list[float] = field(default_factory=lambda: [0.5])
    lr_decay_factor: float = 0.1
    warmup_steps: int = 0
    pretrain_loss: str = "mse"
    content_loss: str = "vgg54"
    adv_loss: str = "bce"
    adv_weight: float = 1e-3
    fm_weight: float = 0.0
    vgg_weights: str = "imagenet"
    degradation: str = "bicubic"
    blur_sigma: float = 1.5
    val_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 50
    val_max_images: int = 20
    num_samples: int = 2
    ema_decay: float | None = None
    amp: str = "auto"
    num_workers: int = 0
    cache_images: bool = True
    channels_last: bool = True
    sync_batchnorm: bool = False
    residual_init_scale: float = 0.1
    seed: int = 0
    lr_min: float | None = None
    crop_size_late: int | None = None
    crop_switch_at: float = 0.67
    degrade_whole_images: bool = False
    y_weight: float = 0.0
    teacher: str | None = None
    teacher_weight: float = 1.0
    freeze_bn: bool = False
    time_budget: float | None = None
    val_at_start: bool = False
    export_rule: str = "best"
    sharpen_hr: bool = False
    pair_pool: int = 0

    def __post_init__(self) -> None:
        try:
            b1, b2 = self.betas
            self.betas = (float(b1), float(b2))
        except (TypeError, ValueError):
            raise ConfigError(
                f"TrainConfig.betas = {self.betas!r} is invalid: expected two numbers, e.g. [0.9, 0.999]"
            ) from None
        try:
            self.lr_decay_at = [float(x) for x in self.lr_decay_at]
        except (TypeError, ValueError):
            raise ConfigError(
                f"TrainConfig.lr_decay_at = {self.lr_decay_at!r} is invalid: expected a list of fractions, e.g. [0.5]"
            ) from None
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field, its value and what is allowed."""

        def bad(name: str, expected: str) -> ConfigError:
            return ConfigError(f"TrainConfig.{name} = {getattr(self, name)!r} is invalid: expected {expected}")

        # Types first: values from JSON or ``--set`` may be strings or floats.
        for name in (
            "scale",
            "num_blocks",
            "channels",
            "batch_size",
            "crop_size",
            "log_every",
            "pretrain_steps",
            "gan_steps",
            "val_every",
            "ckpt_every",
            "warmup_steps",
            "num_workers",
            "num_samples",
            "val_max_images",
            "seed",
            "pair_pool",
        ):
            if not _is_int(getattr(self, name)):
                raise bad(name, "an integer")
        for name in (
            "lr",
            "lr_decay_factor",
            "adv_weight",
            "fm_weight",
            "blur_sigma",
            "residual_init_scale",
            "crop_switch_at",
            "y_weight",
            "teacher_weight",
        ):
            if not _is_real(getattr(self, name)):
                raise bad(name, "a number")
        for name in (
            "phase",
            "pretrain_lr_schedule",
            "lr_schedule",
            "pretrain_loss",
            "content_loss",
            "adv_loss",
            "vgg_weights",
            "degradation",
            "amp",
            "export_rule",
        ):
            if not isinstance(getattr(self, name), str):
                raise bad(name, "a string")
        if self.scale not in (2, 4, 8):
            raise bad("scale", "2, 4 or 8")
        for name in ("num_blocks", "channels", "batch_size", "crop_size", "log_every"):
            if getattr(self, name) < 1:
                raise bad(name, "an integer >= 1")
        if self.num_blocks > 256:  # the bounds srgan.models.GeneratorConfig enforces
            raise bad("num_blocks", "an integer from 1 to 256")
        if self.channels > 1024:
            raise bad("channels", "an integer from 1 to 1024")
        for name in (
            "pretrain_steps",
            "gan_steps",
            "val_every",
            "ckpt_every",
            "warmup_steps",
            "num_workers",
            "num_samples",
            "val_max_images",
        ):
            if getattr(self, name) < 0:
                raise bad(name, "an integer >= 0")
        if self.crop_size % self.scale:
            raise ConfigError(
                f"TrainConfig.crop_size = {self.crop_size} is not divisible by scale = {self.scale}: "
                f"use a multiple of {self.scale}, e.g. {self.crop_size - self.crop_size % self.scale or self.scale}"
            )
        if self.crop_size < 16:
            raise bad("crop_size", "at least 16 (the discriminator downsamples 16x)")
        if self.phase not in ("pretrain", "gan", "both"):
            raise bad("phase", "'pretrain', 'gan' or 'both'")
        if not self.lr > 0:
            raise bad("lr", "a positive number")
        if not all(0 <= b < 1 for b in self.betas):
            raise bad("betas", "two numbers in [0, 1)")
        for name in (
            "cache_images",
            "channels_last",
            "sync_batchnorm",
            "degrade_whole_images",
            "freeze_bn",
            "val_at_start",
            "sharpen_hr",
        ):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")
        for name in ("pretrain_lr_schedule", "lr_schedule"):
            if getattr(self, name) not in ("step", "cosine", "constant"):
                raise bad(name, "'step', 'cosine' or 'constant'")
        if self.phase != "pretrain" and self.batch_size * (self.crop_size // 16) ** 2 < 2:
            raise ConfigError(
                f"batch_size = {self.batch_size} with crop_size = {self.crop_size} leaves the discriminator's "
                "BatchNorm a single value per channel; use batch_size >= 2 or crop_size >= 32"
            )
        if not all(0 < f < 1 for f in self.lr_decay_at):
            raise bad("lr_decay_at", "fractions in (0, 1)")
        if not 0 < self.lr_decay_factor <= 1:
            raise bad("lr_decay_factor", "a number in (0, 1]")
        parse_loss_spec(self.pretrain_loss)
        parse_loss_spec(self.content_loss)
        if self.adv_loss not in ("bce", "relativistic"):
            raise bad("adv_loss", "'bce' or 'relativistic'")
        if self.adv_weight < 0:
            raise bad("adv_weight", "a number >= 0")
        if self.fm_weight < 0:
            raise bad("fm_weight", "a number >= 0")
        if self.vgg_weights not in ("imagenet", "none"):
            raise bad("vgg_weights", "'imagenet' or 'none'")
        if self.degradation not in DEGRADATIONS:
            raise bad("degradation", f"one of {DEGRADATIONS}")
        real = self.degradation in REAL_DEGRADATIONS
        if real and (self.degrade_whole_images or self.teacher is not None):
            raise bad("degradation", "'bicubic' or 'blur' with degrade_whole_images or a teacher (whole-image LR)")
        if not real and (self.sharpen_hr or self.pair_pool):
            raise ConfigError(
                f"TrainConfig.sharpen_hr / pair_pool need a real-world degradation {REAL_DEGRADATIONS}, "
                f"got degradation = {self.degradation!r}"
            )
        if self.pair_pool < 0:
            raise bad("pair_pool", "0 (off) or a positive multiple of the batch size")
        if not self.blur_sigma > 0:
            raise bad("blur_sigma", "a positive number")
        if self.ema_decay is not None and not (_is_real(self.ema_decay) and 0 < self.ema_decay < 1):
            raise bad("ema_decay", "None or a number in (0, 1)")
        if self.amp not in ("auto", "bf16", "fp16", "none"):
            raise bad("amp", "'auto', 'bf16', 'fp16' or 'none'")
        if not self.residual_init_scale > 0:
            raise bad("residual_init_scale", "a positive number")
        if self.lr_min is not None and not (_is_real(self.lr_min) and 0 <= self.lr_min <= self.lr):
            raise bad("lr_min", f"None or a number in [0, lr = {self.lr}]")
        if self.crop_size_late is not None and (
            not _is_int(self.crop_size_late) or self.crop_size_late < 16 or self.crop_size_late % self.scale
        ):
            raise bad("crop_size_late", f"None or an integer >= 16 divisible by scale = {self.scale}")
        if not 0 <= self.crop_switch_at <= 1:
            raise bad("crop_switch_at", "a fraction in [0, 1]")
        if self.degrade_whole_images and not self.cache_images:
            raise bad("degrade_whole_images", "false when cache_images is false (the LR images are kept in memory)")
        if self.y_weight < 0:
            raise bad("y_weight", "a number >= 0")
        if self.teacher is not None:
            if not isinstance(self.teacher, str) or not self.teacher:
                raise bad("teacher", "None or a model name, file or folder")
            if not self.degrade_whole_images:
                raise bad("teacher", "None unless degrade_whole_images is true (the teacher sees whole LR images)")
        if self.teacher_weight < 0:
            raise bad("teacher_weight", "a number >= 0")
        if self.time_budget is not None and not (_is_real(self.time_budget) and self.time_budget > 0):
            raise bad("time_budget", "None or a positive number of seconds")
        if self.export_rule not in ("best", "last"):
            raise bad("export_rule", "'best' or 'last'")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields {unknown}; known fields: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"invalid TrainConfig: {e}") from e

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> TrainConfig:
        """Load from a JSON file path, or from a JSON string starting with ``{``."""
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text = source
        else:
            try:
                text = Path(source).read_text()
            except OSError as e:
                raise ConfigError(f"cannot read config file {source}: {e}") from e
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config {source} is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config {source} must hold a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)
