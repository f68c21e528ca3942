"""Side-by-side comparisons of upscalers on one image: bicubic | model A | model B | ... | ground truth.

Used by ``srgan compare`` and to make the README's gallery. Two ways to read the input:

- ``from_hr=True`` (default): the input is a high-resolution photo. It is cropped to a multiple of the scale and
  downscaled with the benchmark protocol's MATLAB-style bicubic (rounded to 8 bits); every method upscales that
  LR image, and the original is shown last as the ground truth. This is how SR results are judged.
- ``from_hr=False``: the input is the low-resolution image itself; the panels show how each method upscales it.

Each panel shows the same square region of the upscaled image, enlarged with nearest-neighbour sampling so that
the pixels stay visible, with the method's name below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .degradation import bicubic_downsample, imresize, modcrop, quantize
from .errors import ConfigError, InvalidImageError
from .pipeline import SRGAN

__all__ = ["Comparison", "compare", "pick_detailed_region"]

_GAP = 8
_LABEL_HEIGHT = 28
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`.

    Attributes:
        image: the side-by-side picture (RGB): one panel per method, labelled.
        panels: name -> the cropped region of that method's output, at output resolution (before enlargement).
        box: ``(left, top, size)`` of the region in output-image pixels.
        lr_size: ``(width, height)`` of the low-resolution image every method upscaled.
    """

    image: Image.Image
    panels: dict[str, Image.Image]
    box: tuple[int, int, int]
    lr_size: tuple[int, int]


def pick_detailed_region(image: Image.Image, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` square with the most fine detail (gradient energy) in ``image``.

    A simple, deterministic choice for galleries: the region where upscalers differ most.

    Raises:
        ConfigError: ``size`` is not positive or larger than the image.
    """
    w, h = image.size
    if not 0 < size <= min(w, h):
        raise ConfigError(f"crop size must be between 1 and the image's shorter side ({min(w, h)} px), got {size}")
    y = np.asarray(image.convert("L"), dtype=np.float64)
    energy = np.zeros_like(y)
    energy[:, 1:] += np.abs(np.diff(y, axis=1))
    energy[1:, :] += np.abs(np.diff(y, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(left), int(top)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).double().unsqueeze(0) / 255


def _to_image(x: torch.Tensor) -> Image.Image:
    arr = (quantize(x[0].float()).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def compare(
    image: Image.Image,
    models: Sequence[SRGAN],
    *,
    names: Sequence[str] | None = None,
    from_hr: bool = True,
    crop: tuple[int, int, int] | None = None,
    crop_size: int = 128,
    zoom: int = 2,
) -> Comparison:
    """Upscale ``image`` with bicubic and each model and lay the same region of each result side by side.

    Args:
        image: a PIL image (any mode; converted to RGB, alpha dropped).
        models: loaded upscalers, all with the same scale.
        names: a label per model (default: ``model-1``, ``model-2``...).
        from_hr: treat ``image`` as the ground truth and downscale it first (see the module docstring), adding an
            ``HR (original)`` panel; otherwise upscale ``image`` itself.
        crop: ``(left, top, size)`` of the region in output pixels; default: the most detailed ``crop_size``
            square of the bicubic result (:func:`pick_detailed_region`).
        crop_size: side of the automatic region in output pixels (clipped to the image).
        zoom: integer nearest-neighbour enlargement of each panel.

    Returns:
        A :class:`Comparison`; ``.image`` is the picture to save.

    Raises:
        ConfigError: no model, models of different scales, a bad ``names`` length, ``zoom`` or ``crop``.
        InvalidImageError: the image is too small for the scale.
    """
    if not models:
        raise ConfigError("compare needs at least one model to put beside bicubic")
    scales = {m.scale for m in models}
    if len(scales) != 1:
        raise ConfigError(f"all models must have the same scale to be compared, got scales {sorted(scales)}")
    scale = scales.pop()
    labels = list(names) if names is not None else [f"model-{i + 1}" for i in range(len(models))]
    if len(labels) != len(models):
        raise ConfigError(f"got {len(labels)} names for {len(models)} models: give one name per model")
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):  # the same model given twice still gets two panels
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} ({seen[label]})"
    if zoom < 1:
        raise ConfigError(f"zoom must be an integer >= 1, got {zoom}")

    rgb = image.convert("RGB")
    if from_hr:
        hr = modcrop(_to_tensor(rgb), scale)
        if min(hr.shape[-2:]) < scale:
            raise InvalidImageError(f"the image ({rgb.width}x{rgb.height}) is smaller than the scale ({scale})")
        lr_image = _to_image(bicubic_downsample(hr, scale))  # rounded to 8 bits
    else:
        lr_image = rgb
    lr = _to_tensor(lr_image)
    outputs: dict[str, Image.Image] = {"bicubic": _to_image(imresize(lr, scale=scale))}
    for label, model in zip(labels, models, strict=True):
        outputs[label] = model.upscale(lr_image)
    if from_hr:
        outputs["HR (original)"] = _to_image(hr)

    width, height = outputs["bicubic"].size
    if crop is None:
        size = min(crop_size, width, height)
        left, top = pick_detailed_region(outputs["bicubic"], size)
    else:
        left, top, size = crop
        if size < 1 or left < 0 or top < 0 or left + size > width or top + size > height:
            raise ConfigError(
                f"crop {crop} (left, top, size) does not fit the {width}x{height} output; choose a square inside it"
            )
    panels = {k: v.crop((left, top, left + size, top + size)) for k, v in outputs.items()}

    side = size * zoom
    canvas_size = (len(panels) * side + (len(panels) + 1) * _GAP, side + 2 * _GAP + _LABEL_HEIGHT)
    canvas = Image.new("RGB", canvas_size, _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=16)
    for i, (label, panel) in enumerate(panels.items()):
        x = _GAP + i * (side + _GAP)
        canvas.paste(panel.resize((side, side), Image.Resampling.NEAREST), (x, _GAP))
        text_w = draw.textlength(label, font=font)
        draw.text((x + max(0.0, (side - text_w) / 2), side + _GAP + 6), label, fill=_TEXT, font=font)
    return Comparison(image=canvas, panels=panels, box=(left, top, size), lr_size=lr_image.size)
