"""Benchmark evaluation: PSNR / SSIM / NIQE of models on folders of ground-truth images (``srgan-eval``).

The protocol is the one of the SR literature, for each HR image of each folder:

1. crop the HR image to a multiple of the scale (:func:`srgan.degradation.modcrop`);
2. make the LR input with MATLAB-style bicubic downsampling, rounded to 8 bits;
3. upscale it with each model (float32) and round the result to 8 bits, as saving it to a PNG file does;
4. PSNR and SSIM on the BT.601 Y channel with ``scale`` pixels removed on each side (:mod:`srgan.metrics`), and
   optionally NIQE (:mod:`srgan.niqe`) with the same border.

The bicubic baseline is MATLAB-style bicubic upscaling of the same 8-bit LR input, rounded to 8 bits. The "HR" row
(NIQE only) scores the cropped ground truth itself. Dataset figures are the means of the per-image figures.

Step 2 is the clean ``"bicubic"`` protocol by default. Photos from users went through blur, noise and JPEG; the
``degradation`` of :func:`evaluate` (``srgan-eval --degradation``) makes the LR input with one of these fixed,
seeded chains instead (:func:`protocol_lr`; every step works on the modcropped HR image ``hr`` of index ``i`` in
the sorted list of its dataset's files):

- ``"bicubic"``: ``quantize(imresize(hr, 1/scale))``, the clean protocol above (the default; unchanged figures).
- ``"real-fixed"``: Gaussian blur sigma 1.2 (:func:`srgan.degradation.gaussian_blur`), MATLAB-style bicubic
  1/scale, rounded to 8 bits; Gaussian colour noise sigma 5/255 (a ``torch.Generator`` seeded with ``i``, one
  value per channel and pixel), rounded to 8 bits; a JPEG round trip with Pillow at quality 60, 4:2:0 chroma
  subsampling.
- ``"jpeg:Q"``: the bicubic LR, then a Pillow JPEG round trip at quality Q (1..100), 4:2:0.
- ``"noise:S"``: the bicubic LR, then Gaussian colour noise sigma S/255 (S >= 0) seeded with ``i``, rounded to
  8 bits.

:func:`evaluate_no_reference` (``srgan-eval --no-reference``) is for folders of real LR images without ground truth:
it upscales each image with bicubic and each model, reports NIQE (which alone misleads there: it rewards
amplified noise and JPEG blocks as "texture") and lays the results side by side for a person to look at.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import _image
from ._files import atomic_write
from ._image import IMAGE_EXTENSIONS
from .degradation import gaussian_blur, imresize, modcrop, quantize
from .errors import ConfigError, DataError, InvalidImageError, SRGANError
from .metrics import psnr, ssim
from .niqe import NiqeParams, niqe

if TYPE_CHECKING:  # the inference object is imported when a model is loaded: training imports this module
    from .pipeline import SRGAN

__all__ = [  # noqa: F822 - main is served by __getattr__
    "ImageResult",
    "EvaluationRow",
    "EvaluationReport",
    "NoReferenceResult",
    "NoReferenceReport",
    "evaluate",
    "evaluate_no_reference",
    "protocol_lr",
    "parse_degradation",
    "contact_sheet",
    "NIQE_NOTE",
    "score",
    "main",
    "BICUBIC",
    "HR",
    "DEGRADATIONS",
    "REAL_FIXED",
]

logger = logging.getLogger(__name__)

BICUBIC = "bicubic"
"""Model name of the bicubic baseline rows."""

HR = "HR"
"""Model name of the ground-truth rows (NIQE only)."""

REAL_FIXED = "real-fixed"
"""The fixed real-world chain: blur sigma 1.2, bicubic, noise sigma 5/255 seeded by index, JPEG quality 60."""

DEGRADATIONS = ("bicubic", REAL_FIXED, "jpeg:Q", "noise:S")
"""The forms of a ``degradation`` spec (Q an integer in 1..100, S a number >= 0; see the module docstring)."""

_REAL_FIXED_BLUR = 1.2
_REAL_FIXED_NOISE = 5.0  # in 8-bit levels: sigma 5/255
_REAL_FIXED_JPEG = 60


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
    """What :func:`evaluate` measured: one row per model and dataset, in the order datasets, then models.

    ``degradation`` names how the LR inputs were made (``"bicubic"``, ``"real-fixed"``, ``"jpeg:Q"``,
    ``"noise:S"``: see :func:`protocol_lr`); every row of a report shares it.
    """

    scale: int
    rows: list[EvaluationRow] = field(default_factory=list)
    degradation: str = BICUBIC

    def row(self, model: str, dataset: str) -> EvaluationRow:
        """The row of ``model`` on ``dataset`` (KeyError if there is none)."""
        for r in self.rows:
            if r.model == model and r.dataset == dataset:
                return r
        raise KeyError(f"no row for model {model!r} on dataset {dataset!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"scale", "crop_border", "degradation", "rows": [{..., "images": [...]}]}``."""
        return {
            "scale": self.scale,
            "crop_border": self.scale,
            "degradation": self.degradation,
            "rows": [asdict(r) for r in self.rows],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict`); per-image results included."""
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self) -> str:
        """A markdown table of the rows: the LR degradation, PSNR in dB (2 decimals), SSIM (4), NIQE (2); ``-``
        where not measured."""
        lines = [
            "| model | dataset | LR | images | PSNR (dB) | SSIM | NIQE |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            cells = [
                r.model,
                r.dataset,
                self.degradation,
                str(r.n_images),
                _fmt(r.psnr, 2),
                _fmt(r.ssim, 4),
                _fmt(r.niqe, 2),
            ]
            lines.append(_table_line(cells))
        return "\n".join(lines)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def parse_degradation(spec: str) -> str:
    """Check a ``degradation`` spec and return its canonical form (``"jpeg:060"`` -> ``"jpeg:60"``).

    Raises:
        ConfigError: not one of ``"bicubic"``, ``"real-fixed"``, ``"jpeg:Q"`` with Q an integer in 1..100, or
            ``"noise:S"`` with S a number >= 0.
    """
    expected = (
        "expected 'bicubic', 'real-fixed', 'jpeg:Q' with Q in 1..100, or 'noise:S' with S >= 0 (sigma in 8-bit levels)"
    )
    if not isinstance(spec, str):
        raise ConfigError(f"degradation must be a string: {expected}; got {type(spec).__name__}")
    text = spec.strip().lower()
    if text in (BICUBIC, REAL_FIXED):
        return text
    kind, sep, value = text.partition(":")
    if sep and kind == "jpeg":
        try:
            quality = int(value)
        except ValueError:
            quality = 0
        if 1 <= quality <= 100:
            return f"jpeg:{quality}"
        raise ConfigError(f"bad degradation {spec!r}: the JPEG quality must be an integer in 1..100; {expected}")
    if sep and kind == "noise":
        try:
            sigma = float(value)
        except ValueError:
            sigma = math.nan
        if math.isfinite(sigma) and sigma >= 0:
            return f"noise:{sigma:g}"
        raise ConfigError(f"bad degradation {spec!r}: the noise sigma must be a number >= 0; {expected}")
    raise ConfigError(f"unknown degradation {spec!r}: {expected}")


def protocol_lr(hr: torch.Tensor, *, scale: int, degradation: str = BICUBIC, index: int = 0) -> torch.Tensor:
    """The LR input of the evaluation protocol for one HR image (the chains of the module docstring).

    Args:
        hr: (N, 3, H, W) float in [0, 1], H and W multiples of ``scale`` (:func:`srgan.degradation.modcrop`).
        scale: the downscaling factor.
        degradation: ``"bicubic"`` (the clean protocol), ``"real-fixed"``, ``"jpeg:Q"`` or ``"noise:S"``.
        index: the image's index in its dataset's sorted file list: the seed of the noise.

    Returns:
        (N, 3, H/scale, W/scale) in ``hr``'s dtype and device, on the 8-bit grid (values k/255). The same arguments
        always give the same LR.

    Raises:
        ConfigError: a bad ``degradation`` spec (see :func:`parse_degradation`) or ``scale``.
        InvalidImageError: ``hr`` is not an (N, 3, H, W) tensor.
    """
    spec = parse_degradation(degradation)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")
    if not isinstance(hr, torch.Tensor) or hr.ndim != 4 or hr.shape[1] != 3 or not hr.is_floating_point():
        got = f"shape {tuple(hr.shape)}, {hr.dtype}" if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise InvalidImageError(f"expected an (N, 3, H, W) float tensor in [0, 1], got {got}")
    if spec == REAL_FIXED:
        lr = quantize(imresize(gaussian_blur(hr, _REAL_FIXED_BLUR), scale=1.0 / scale))
        return _jpeg(_noise(lr, _REAL_FIXED_NOISE, index), _REAL_FIXED_JPEG)
    lr = quantize(imresize(hr, scale=1.0 / scale))
    kind, _, value = spec.partition(":")
    if kind == "jpeg":
        return _jpeg(lr, int(value))
    if kind == "noise":
        return _noise(lr, float(value), index)
    return lr


def _noise(lr: torch.Tensor, sigma: float, index: int) -> torch.Tensor:
    """Gaussian colour noise of ``sigma`` 8-bit levels from a CPU generator seeded with ``index``, rounded to 8 bits."""
    if sigma == 0:
        return lr
    gen = torch.Generator().manual_seed(int(index))
    noise = torch.randn(lr.shape, generator=gen, dtype=torch.float64) * (sigma / 255.0)
    return quantize(lr + noise.to(device=lr.device, dtype=lr.dtype))


def _jpeg(lr: torch.Tensor, quality: int) -> torch.Tensor:
    """A JPEG round trip of each 8-bit image through Pillow at ``quality``, 4:2:0 chroma subsampling."""
    out = []
    for image in lr:
        array = (image.detach().cpu().double().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(array, "RGB").save(buffer, format="JPEG", quality=quality, subsampling=2)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            back = np.array(decoded.convert("RGB"), dtype=np.uint8)
        out.append(torch.from_numpy(back).permute(2, 0, 1).to(torch.float64) / 255.0)
    return torch.stack(out).to(device=lr.device, dtype=lr.dtype)


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
    degradation: str = BICUBIC,
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
        degradation: how each LR input is made from its HR image: ``"bicubic"`` (the standard protocol),
            ``"real-fixed"``, ``"jpeg:Q"`` or ``"noise:S"`` (:func:`protocol_lr`). The bicubic baseline upscales the
            same degraded LR; the scores are still measured against the clean HR image.

    Returns:
        The :class:`EvaluationReport`; per dataset: the bicubic row, one row per model, then the HR row.

    Raises:
        ConfigError: bad ``scale`` or ``degradation``, a model of another scale, or ``include_hr`` without
            ``niqe_params``.
        DataError: a folder is missing or holds no image.
        UnknownModelError, CheckpointError: a model cannot be loaded.
        InvalidImageError: an image cannot be read, or is too small for the protocol (or for NIQE).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")
    degradation = parse_degradation(degradation)
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

    report = EvaluationReport(scale=scale, degradation=degradation)
    total = sum(len(files) for _, _, files in datasets)
    hr_niqe_params = niqe_params if include_hr else None
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm  # imported here: ``import srgan.evaluation`` stays light

    with tqdm(total=total, unit="img", disable=not show, desc="evaluating") as bar:
        for dataset, root, files in datasets:
            results: dict[str, list[ImageResult]] = {name: [] for name in names}
            for index, path in enumerate(files):
                bar.set_postfix_str(f"{dataset}/{path.name}", refresh=False)
                name = path.relative_to(root).as_posix()
                hr = _read_hr(path, scale)
                lr = protocol_lr(hr, scale=scale, degradation=degradation, index=index)
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


NIQE_NOTE = (
    "NIQE alone misleads on real low-resolution inputs: it rewards amplified noise and JPEG blocks as if they were "
    "texture. Look at the contact sheets before trusting a lower figure."
)
"""The warning every no-reference report carries (:func:`evaluate_no_reference`)."""


@dataclass(frozen=True)
class NoReferenceResult:
    """One upscaled image of :func:`evaluate_no_reference`: ``image`` is its path relative to the folder, ``model``
    the method (``"bicubic"`` or a model name), ``niqe`` None where not measured, and the output's size."""

    image: str
    model: str
    niqe: float | None
    width: int
    height: int


@dataclass
class NoReferenceReport:
    """What :func:`evaluate_no_reference` measured: one row per image and method (bicubic first, then the models).

    ``methods`` is the order of the panels of each contact sheet; ``sheets`` maps each image to the path of its
    sheet (empty when no ``out_dir`` was given); ``niqe_measured`` is False when NIQE was skipped.
    """

    scale: int
    methods: list[str]
    niqe_measured: bool
    rows: list[NoReferenceResult] = field(default_factory=list)
    sheets: dict[str, str] = field(default_factory=dict)

    def means(self) -> dict[str, float | None]:
        """Method -> mean NIQE over the images (None when NIQE was skipped)."""
        return {m: _mean([r.niqe for r in self.rows if r.model == m]) for m in self.methods}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"mode": "no-reference", "scale", "niqe", "note", "methods", "means", "rows",
        "sheets"}``."""
        return {
            "mode": "no-reference",
            "scale": self.scale,
            "crop_border": self.scale,
            "niqe": self.niqe_measured,
            "note": NIQE_NOTE,
            "methods": list(self.methods),
            "means": self.means(),
            "rows": [asdict(r) for r in self.rows],
            "sheets": dict(self.sheets),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self) -> str:
        """A markdown table: NIQE of each image and method, then the mean of each method; ``-`` where skipped."""
        lines = ["| image | method | output | NIQE |", "|---|---|---|---:|"]
        for r in self.rows:
            lines.append(_table_line([r.image, r.model, f"{r.width}x{r.height}", _fmt(r.niqe, 2)]))
        n = len({r.image for r in self.rows})
        for method, value in self.means().items():
            lines.append(_table_line([f"mean of {n}", method, "", _fmt(value, 2)]))
        return "\n".join(lines)


def evaluate_no_reference(
    models: Sequence[str | SRGAN],
    folder: str | os.PathLike[str],
    *,
    scale: int = 4,
    niqe_params: NiqeParams | str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    self_ensemble: bool = False,
) -> NoReferenceReport:
    """Upscale real low-resolution images (no ground truth) with bicubic and each model; NIQE and contact sheets.

    Each image of ``folder`` (searched recursively, read as RGB: alpha is dropped) is upscaled by MATLAB-style
    bicubic and by each model (float32), each result rounded to 8 bits; NIQE is measured on each result with
    ``scale`` border pixels removed, as in :func:`evaluate`. NIQE alone misleads here (:data:`NIQE_NOTE`): it
    rewards amplified noise, so the sheets are the result a person should look at.

    Args:
        models: as in :func:`evaluate`; all must upscale by ``scale``.
        folder: the folder of LR images.
        scale: the upscaling factor (and NIQE border).
        niqe_params: the NIQE pristine model (or its ``.npz`` path); None skips NIQE (the rows' ``niqe`` is None).
        out_dir: where to write one contact sheet per image, ``out_dir/sheets/<relative path>.png``: the full
            upscaled images side by side (bicubic, then each model), each labelled below, no gaps, so the sheet is
            ``(1 + len(models)) * scale * width`` pixels wide. None writes nothing.
        device, progress, self_ensemble: as in :func:`evaluate`.

    Raises:
        ConfigError: bad ``scale``, a model of another scale, duplicate model names.
        DataError: the folder is missing or holds no image.
        InvalidImageError: an image cannot be read, or an output is too small for NIQE (96x96 after the border).
        OSError: a sheet cannot be written.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")
    if niqe_params is not None and not isinstance(niqe_params, NiqeParams):
        niqe_params = NiqeParams.from_file(niqe_params)
    root = Path(folder)
    files = _list_images(root)
    loaded = [_load_model(m, i, scale=scale, device=device) for i, m in enumerate(models)]
    if self_ensemble:
        loaded = [(f"{name} (self-ensemble)", model) for name, model in loaded]
    methods = [BICUBIC] + [name for name, _ in loaded]
    if len(set(methods)) != len(methods):
        raise ConfigError(f"model names must be unique in a report, got {methods}")
    report = NoReferenceReport(scale=scale, methods=methods, niqe_measured=niqe_params is not None)
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm

    for path in tqdm(files, unit="img", disable=not show, desc="upscaling"):
        name = path.relative_to(root).as_posix()
        with _image.open_image(path) as img:
            rgb = np.array(img.convert("RGB"), dtype=np.uint8)
        lr = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(torch.float64) / 255.0
        outputs = {BICUBIC: quantize(imresize(lr, scale=float(scale)))}
        for model_name, model in loaded:
            sr = model.upscale_tensor(lr.to(torch.float32), self_ensemble=self_ensemble)
            outputs[model_name] = quantize(sr.to(torch.float64))
        for method, sr in outputs.items():
            value = None if niqe_params is None else _niqe(sr, niqe_params, scale, name)
            height, width = sr.shape[-2:]
            report.rows.append(NoReferenceResult(image=name, model=method, niqe=value, width=width, height=height))
        if out_dir is not None:
            sheet = contact_sheet({method: _to_pil(sr) for method, sr in outputs.items()})
            dest = Path(out_dir) / "sheets" / Path(name).with_suffix(".png")
            _save_png(sheet, dest)
            report.sheets[name] = os.fspath(dest)
    return report


_LABEL_HEIGHT = 28


def contact_sheet(panels: Mapping[str, Image.Image], *, label_height: int = _LABEL_HEIGHT) -> Image.Image:
    """Images of one size side by side, no gaps, each with its label centred in a white strip below it.

    Returns:
        An RGB image ``len(panels) * width`` wide and ``height + label_height`` high.

    Raises:
        ConfigError: no panel, or panels of different sizes.
    """
    if not panels:
        raise ConfigError("a contact sheet needs at least one image")
    sizes = {image.size for image in panels.values()}
    if len(sizes) != 1:
        raise ConfigError(f"the panels of a contact sheet must have one size, got {sorted(sizes)}")
    width, height = sizes.pop()
    sheet = Image.new("RGB", (len(panels) * width, height + label_height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    for i, (label, image) in enumerate(panels.items()):
        x = i * width
        sheet.paste(image.convert("RGB"), (x, 0))
        text_w = draw.textlength(label, font=font)
        draw.text((x + max(0.0, (width - text_w) / 2), height + 6), label, fill=(20, 20, 20), font=font)
    return sheet


def _save_png(image: Image.Image, dest: Path) -> None:
    atomic_write(dest, lambda f: image.save(f, format="PNG"))


def _to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) float in [0, 1] on the 8-bit grid -> an RGB PIL image."""
    array = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")


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
