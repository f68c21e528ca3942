"""Benchmark evaluation: PSNR / SSIM / NIQE of models on folders of ground-truth images (``srgan-eval``).

The protocol is the one of the SR literature, for each HR image of each folder:

1. crop the HR image to a multiple of the scale (:func:`srgan.degradation.modcrop`);
2. make the LR input with MATLAB-style bicubic downsampling, rounded to 8 bits;
3. upscale it with each model (float32) and round the result to 8 bits, as saving it to a PNG file does;
4. PSNR and SSIM on the BT.601 Y channel with ``scale`` pixels removed on each side (:mod:`srgan.metrics`), and
   optionally NIQE (:mod:`srgan.niqe`) with the same border.

The bicubic baseline is MATLAB-style bicubic upscaling of the same 8-bit LR input, rounded to 8 bits. The "HR" row
(NIQE only) scores the cropped ground truth itself. Dataset figures are the means of the per-image figures.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import _image
from ._image import IMAGE_EXTENSIONS
from .degradation import imresize, modcrop, quantize
from .errors import ConfigError, DataError, SRGANError
from .metrics import psnr, ssim
from .niqe import NiqeParams, niqe

if TYPE_CHECKING:  # the inference object is imported when a model is loaded: training imports this module
    from .pipeline import SRGAN

__all__ = [  # noqa: F822 - main is served by __getattr__
    "ImageResult",
    "EvaluationRow",
    "EvaluationReport",
    "evaluate",
    "score",
    "main",
    "BICUBIC",
    "HR",
]

logger = logging.getLogger(__name__)

BICUBIC = "bicubic"
"""Model name of the bicubic baseline rows."""

HR = "HR"
"""Model name of the ground-truth rows (NIQE only)."""


@dataclass(frozen=True)
class ImageResult:
    """The scores of one image: ``name`` is its path relative to the dataset folder; None where not measured."""

    name: str
    psnr: float | None
    ssim: float | None
    niqe: float | None


@dataclass(frozen=True)
class EvaluationRow:
    """Mean scores of one model (or ``"bicubic"`` / ``"HR"``) on one dataset, with the per-image results."""

    model: str
    dataset: str
    n_images: int
    psnr: float | None
    ssim: float | None
    niqe: float | None
    images: tuple[ImageResult, ...] = ()


@dataclass
class EvaluationReport:
    """What :func:`evaluate` measured: one row per model and dataset, in the order datasets, then models."""

    scale: int
    rows: list[EvaluationRow] = field(default_factory=list)

    def row(self, model: str, dataset: str) -> EvaluationRow:
        """The row of ``model`` on ``dataset`` (KeyError if there is none)."""
        for r in self.rows:
            if r.model == model and r.dataset == dataset:
                return r
        raise KeyError(f"no row for model {model!r} on dataset {dataset!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"scale", "crop_border", "rows": [{..., "images": [...]}]}``."""
        return {"scale": self.scale, "crop_border": self.scale, "rows": [asdict(r) for r in self.rows]}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict`); per-image results included."""
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self) -> str:
        """A markdown table of the rows: PSNR in dB (2 decimals), SSIM (4), NIQE (2); ``-`` where not measured."""

        def fmt(value: float | None, digits: int) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        lines = [
            "| model | dataset | images | PSNR (dB) | SSIM | NIQE |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            cells = [r.model, r.dataset, str(r.n_images), fmt(r.psnr, 2), fmt(r.ssim, 4), fmt(r.niqe, 2)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)


def evaluate(
    models: Sequence[str | SRGAN],
    data_dirs: Sequence[str | os.PathLike[str]],
    *,
    scale: int = 4,
    niqe_params: NiqeParams | str | os.PathLike[str] | None = None,
    include_bicubic: bool = True,
    include_hr: bool = False,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    self_ensemble: bool = False,
) -> EvaluationReport:
    """Score models on folders of HR images with the standard SR protocol (see the module docstring).

    Args:
        models: registered names, checkpoint files or folders, URLs, or loaded :class:`SRGAN` objects (which are
            not modified; they run in float32 on ``device``, or on their own device when ``device`` is None).
        data_dirs: one folder per dataset, named by the folder's name; its images (searched recursively) are read
            with PIL and converted to RGB.
        scale: the upscaling factor; every model must have it. Also the border removed before measuring.
        niqe_params: the NIQE pristine model (or the path of its ``.npz`` file); None skips NIQE.
        include_bicubic: add the bicubic baseline row for each dataset.
        include_hr: add an ``"HR"`` row per dataset with the NIQE of the ground truth (needs ``niqe_params``).
        device: where the models run: ``"auto"``/None, ``"cpu"``, ``"cuda"``...
        progress: show a progress bar on stderr; None shows one when stderr is a terminal.
        self_ensemble: upscale with the geometric self-ensemble (:meth:`SRGAN.upscale`'s ``self_ensemble``, 8x
            the time); the model rows are then named ``"NAME (self-ensemble)"``.

    Returns:
        The :class:`EvaluationReport`; per dataset: the bicubic row, one row per model, then the HR row.

    Raises:
        ConfigError: bad ``scale``, a model of another scale, or ``include_hr`` without ``niqe_params``.
        DataError: a folder is missing or holds no image.
        UnknownModelError, CheckpointError: a model cannot be loaded.
        InvalidImageError: an image cannot be read, or is too small for the protocol (or for NIQE).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")
    if niqe_params is not None and not isinstance(niqe_params, NiqeParams):
        niqe_params = NiqeParams.from_file(niqe_params)
    if include_hr and niqe_params is None:
        raise ConfigError("the HR row reports NIQE only: pass niqe_params (--niqe-params) with include_hr")
    datasets = [(Path(d).resolve().name or os.fspath(d), Path(d), _list_images(Path(d))) for d in data_dirs]
    loaded = [_load_model(m, i, scale=scale, device=device) for i, m in enumerate(models)]
    if self_ensemble:
        loaded = [(f"{name} (self-ensemble)", model) for name, model in loaded]
    names = ([BICUBIC] if include_bicubic else []) + [name for name, _ in loaded]
    if include_hr:
        names.append(HR)
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique in a report, got {names}")

    report = EvaluationReport(scale=scale)
    total = sum(len(files) for _, _, files in datasets)
    hr_niqe_params = niqe_params if include_hr else None
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm  # imported here: ``import srgan.evaluation`` stays light

    with tqdm(total=total, unit="img", disable=not show, desc="evaluating") as bar:
        for dataset, root, files in datasets:
            results: dict[str, list[ImageResult]] = {name: [] for name in names}
            for path in files:
                bar.set_postfix_str(f"{dataset}/{path.name}", refresh=False)
                name = path.relative_to(root).as_posix()
                hr = _read_hr(path, scale)
                lr = quantize(imresize(hr, scale=1.0 / scale))
                if include_bicubic:
                    bicubic = quantize(imresize(lr, scale=float(scale)))
                    results[BICUBIC].append(_score(name, bicubic, hr, scale=scale, niqe_params=niqe_params))
                for model_name, model in loaded:
                    sr = model.upscale_tensor(lr.to(torch.float32), self_ensemble=self_ensemble)
                    sr = quantize(sr.to(torch.float64))
                    results[model_name].append(_score(name, sr, hr, scale=scale, niqe_params=niqe_params))
                if hr_niqe_params is not None:
                    value = _niqe(hr, hr_niqe_params, scale, name)
                    results[HR].append(ImageResult(name=name, psnr=None, ssim=None, niqe=value))
                bar.update(1)
            for model_name in names:
                report.rows.append(_summarise(model_name, dataset, results[model_name]))
                logger.info("%s on %s: %s", model_name, dataset, report.rows[-1])
    return report


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"dataset folder {folder} does not exist or is not a folder")
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"dataset folder {folder} holds no image (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _load_model(model: str | SRGAN, index: int, *, scale: int, device: str | torch.device | None) -> tuple[str, SRGAN]:
    """(report name, float32 SRGAN) for a model argument of :func:`evaluate`."""
    from .pipeline import SRGAN

    if isinstance(model, SRGAN):
        name = str(model.meta.get("name") or model.meta.get("source") or f"model{index}")
        loaded = SRGAN(
            model.generator, device=model.device if device is None else device, dtype="fp32", meta=model.meta
        )
    elif isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        loaded = SRGAN.from_pretrained(name, device=device, dtype="fp32")
    else:
        raise ConfigError(f"a model must be a name, a path or an SRGAN, got {type(model).__name__}")
    if loaded.scale != scale:
        raise ConfigError(f"model {name!r} upscales x{loaded.scale} but the evaluation is x{scale}; pass scale=")
    return name, loaded


def _read_hr(path: Path, scale: int) -> torch.Tensor:
    """(1, 3, H, W) float64 in [0, 1] of an image file, RGB, cropped to a multiple of ``scale``."""
    with _image.open_image(path) as img:
        rgb = np.array(img.convert("RGB"), dtype=np.uint8)
    hr = modcrop(torch.from_numpy(rgb).permute(2, 0, 1)[None].to(torch.float64) / 255.0, scale)
    h, w = hr.shape[-2:]
    if h == 0 or w == 0:
        raise DataError(f"{path} is {rgb.shape[1]}x{rgb.shape[0]}, smaller than the scale x{scale}")
    return hr


def _niqe(image: torch.Tensor, params: NiqeParams, scale: int, name: str) -> float:
    try:
        return niqe(image[0], params=params, crop_border=scale)
    except SRGANError as e:
        raise type(e)(f"{name}: {e}") from e


def score(sr: torch.Tensor, hr: torch.Tensor, *, scale: int) -> tuple[float, float]:
    """PSNR (dB) and SSIM of the protocol: BT.601 Y channel, ``scale`` pixels of border removed.

    Used by :func:`evaluate` and by the Trainer's validation, so both report the same figures.

    Args:
        sr: (1, 3, H, W) output rounded to 8 bits, float in [0, 1].
        hr: (1, 3, H, W) ground truth cropped to a multiple of ``scale``, float in [0, 1].
    """
    return float(psnr(sr, hr, crop_border=scale)[0]), float(ssim(sr, hr, crop_border=scale)[0])


def _score(name: str, sr: torch.Tensor, hr: torch.Tensor, *, scale: int, niqe_params: NiqeParams | None) -> ImageResult:
    try:
        p, s = score(sr, hr, scale=scale)
    except SRGANError as e:
        raise type(e)(f"{name}: {e}") from e
    n = None if niqe_params is None else _niqe(sr, niqe_params, scale, name)
    return ImageResult(name=name, psnr=p, ssim=s, niqe=n)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present and len(present) == len(values) else None


def _summarise(model: str, dataset: str, images: list[ImageResult]) -> EvaluationRow:
    return EvaluationRow(
        model=model,
        dataset=dataset,
        n_images=len(images),
        psnr=_mean([r.psnr for r in images]),
        ssim=_mean([r.ssim for r in images]),
        niqe=_mean([r.niqe for r in images]),
        images=tuple(images),
    )


def __getattr__(name: str) -> Any:
    # ``srgan-eval``'s command line moved to srgan.cli.eval (the command lines sit above this module); its old
    # names here still work.
    if name in ("main", "build_parser"):
        from .cli import eval as _cli_eval

        return getattr(_cli_eval, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # ``python -m srgan.evaluation`` still runs srgan-eval
    from .cli.eval import main as _main

    sys.exit(_main())
