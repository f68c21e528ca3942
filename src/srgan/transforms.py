"""srgan as a building block: a ``torch.nn.Module`` that works as a torchvision transform or inside a model.

Example::

    from torchvision import transforms
    from srgan.transforms import SuperResolution

    pipeline = transforms.Compose([transforms.ToTensor(), SuperResolution("run/"), transforms.CenterCrop(256)])
"""

from __future__ import annotations

import os
from typing import Any, overload

import torch
from PIL import Image
from torch import nn

from .errors import ConfigError, InvalidImageError
from .models import SRModel
from .pipeline import SRGAN

__all__ = ["SuperResolution"]


class SuperResolution(nn.Module):
    """Upscale images by the model's scale: tensor in, tensor out; PIL image in, PIL image out.

    Two modes:

    * ``differentiable=False`` (default): the inference path of :meth:`srgan.SRGAN.upscale`: no autograd,
      tiled (bounded memory, seamless), on the SRGAN's device and precision, output clamped to [0, 1] and
      returned with the input's dtype, device and layout. Accepts everything ``SRGAN.upscale`` accepts
      (tensors (C, H, W) or (N, C, H, W) float in [0, 1] or uint8 with 1, 3 or 4 channels, PIL images).
    * ``differentiable=True``: the generator itself on (N, 3, H, W) or (3, H, W) float tensors, with autograd
      (gradients reach the input and the generator's parameters), untiled, on the input's device and dtype
      (move the module with ``.to()``), in the module's train/eval mode. The output is the generator's raw
      output: nominally in [0, 1], *not clamped* (srgan's Generator and MSRResNet can overshoot slightly; the
      srgan-classic generator ends in a tanh and stays inside). PIL images still take the inference path.

    The generator is a registered submodule (:attr:`generator`), so ``.to()``, ``.parameters()``,
    ``.state_dict()`` and ``.train()/.eval()`` work as in any model. The module starts in eval mode.

    Args:
        model: an :class:`~srgan.SRGAN` (its device and precision are used), a generator (srgan's
            :class:`~srgan.models.Generator` or a peer model), a name/path/URL for
            :meth:`SRGAN.from_pretrained`, or None for the default packaged model.
        differentiable: run with autograd (see above).
        tile: tile size in input pixels for the inference path (None: automatic).
    """

    def __init__(
        self,
        model: SRGAN | SRModel | str | os.PathLike[str] | None = None,
        *,
        differentiable: bool = False,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        if tile is not None and tile < 1:
            raise ConfigError(f"tile must be a positive number of input pixels, got {tile}")
        if isinstance(model, SRGAN):
            srgan = model
        elif isinstance(model, nn.Module):
            srgan = SRGAN(model)  # ConfigError unless a generator of a registered architecture
        elif model is None or isinstance(model, (str, os.PathLike)):
            srgan = SRGAN.from_pretrained(model)
        else:
            raise ConfigError(
                f"model must be an SRGAN, a generator, a name or path, or None; got {type(model).__name__}"
            )
        self.generator: SRModel = srgan.generator
        self._srgan = srgan
        self.differentiable = differentiable
        self.tile = tile
        self.eval()

    def train(self, mode: bool = True) -> SuperResolution:
        """Set train/eval mode; also drops the inference path's cached copies of the generator, so that weights
        changed in between (fine-tuning through ``differentiable=True``) are picked up."""
        super().train(mode)
        self._srgan.to()
        return self

    def __getstate__(self) -> dict[str, Any]:
        # SRGAN holds a lock and cached copies: keep its settings instead, so that copy.deepcopy (EMA) and pickling
        # work; __setstate__ rebuilds it around the (copied) generator.
        state: dict[str, Any] = dict(super().__getstate__())  # type: ignore[no-untyped-call]
        srgan: SRGAN = state.pop("_srgan")
        state["_srgan_settings"] = {"device": srgan.device, "dtype": srgan.dtype, "meta": srgan.meta}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        settings = state.pop("_srgan_settings")
        super().__setstate__(state)  # type: ignore[no-untyped-call]
        self._srgan = SRGAN(self.generator, **settings)

    @property
    def scale(self) -> int:
        """The upscaling factor."""
        return self._srgan.scale

    @property
    def srgan(self) -> SRGAN:
        """The :class:`~srgan.SRGAN` running the inference path (sharing :attr:`generator`)."""
        return self._srgan

    @overload
    def forward(self, image: torch.Tensor) -> torch.Tensor: ...

    @overload
    def forward(self, image: Image.Image) -> Image.Image: ...

    def forward(self, image: torch.Tensor | Image.Image) -> torch.Tensor | Image.Image:
        """Upscale ``image``; returns the same kind of object, ``scale`` times larger.

        Raises:
            InvalidImageError: an unsupported input (see the class docstring for what each mode accepts).
        """
        if isinstance(image, torch.Tensor) and self.differentiable:
            return self._differentiable(image)
        if not isinstance(image, (torch.Tensor, Image.Image)):
            raise InvalidImageError(
                f"SuperResolution takes a torch.Tensor or a PIL image, got {type(image).__name__}; convert numpy "
                "arrays with torchvision.transforms.ToTensor() or call SRGAN.upscale"
            )
        return self._srgan.upscale(image, tile=self.tile)

    def _differentiable(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != 3 or not x.is_floating_point():
            raise InvalidImageError(
                f"differentiable=True takes a float tensor (3, H, W) or (N, 3, H, W) in [0, 1], got shape "
                f"{tuple(x.shape)} and dtype {x.dtype}; grey, alpha and integer images take the inference path "
                "(differentiable=False)"
            )
        out: torch.Tensor = self.generator(x if x.ndim == 4 else x.unsqueeze(0))
        return out if x.ndim == 4 else out.squeeze(0)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, differentiable={self.differentiable}, tile={self.tile}"

    def __repr__(self) -> str:
        # Short, like torchvision transforms (the full generator tree is in ``self.generator``).
        return f"{type(self).__name__}({self.extra_repr()})"
