"""Export a generator for deployment without srgan: TorchScript or ONNX, with dynamic batch, height and width.

The exported graph is the generator alone, BatchNorm folded into the convolutions, fp32 on the CPU:

* input ``"input"``: (N, 3, H, W) float32 RGB in [0, 1], any N, H, W;
* output ``"output"``: (N, 3, scale*H, scale*W) float32 RGB, nominally in [0, 1] but **not clamped** (clamp it
  before converting to 8 bits). Tiling, alpha and colour-mode handling stay in :class:`srgan.SRGAN`.

ONNX export needs the optional packages ``onnx`` and ``onnxscript`` (``pip install "srgan[export]"``); running
the ``.onnx`` file needs ``onnxruntime`` or another ONNX runtime.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ._files import atomic_replace
from ._fuse import prepare_for_inference
from .errors import ConfigError
from .models import SRModel, registry
from .pipeline import SRGAN

__all__ = ["export_torchscript", "export_onnx", "prepare_for_export"]

logger = logging.getLogger(__name__)

_EXAMPLE_SHAPE = (2, 3, 24, 20)  # batch 2 and distinct sizes, so nothing gets specialised to 1 or to H == W


def prepare_for_export(model: SRGAN | SRModel) -> SRModel:
    """A copy of the generator in eval mode, fp32, on the CPU, with BatchNorm folded, the architecture's inference
    rewrite (:func:`srgan._fuse.prepare_for_inference`: srgan's tail conv before its last PixelShuffle, the same
    output and about 1.4x faster on a CPU) and no gradients.

    Raises:
        ConfigError: not a generator of a registered architecture, or of one that is not exportable.
    """
    generator = model.generator if isinstance(model, SRGAN) else model
    arch = registry.for_model(generator)
    if not arch.is_generator or not arch.exportable:
        raise ConfigError(f"{type(generator).__name__} ({arch.name!r}) cannot be exported: srgan exports generators")
    folded = prepare_for_inference(generator).to(device="cpu", dtype=torch.float32)
    folded.requires_grad_(False)
    return folded


def export_torchscript(model: SRGAN | SRModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s generator as a TorchScript file, loadable with ``torch.jit.load(path)`` (Python or C++).

    The graph is traced: every generator's forward is free of shape-dependent control flow, so the file runs at
    any batch size, height and width.

    Args:
        model: an :class:`~srgan.SRGAN` or a generator (srgan's or a peer architecture).
        path: destination file (written atomically).
    """
    module = prepare_for_export(model)
    example = torch.rand(_EXAMPLE_SHAPE)
    with warnings.catch_warnings():
        # TorchScript is what was asked for: torch's deprecation notices are not news to the caller.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated", category=FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(module, example)  # type: ignore[no-untyped-call]  # deprecation wrapper
        return _write_atomic(Path(path), lambda tmp: torch.jit.save(traced, str(tmp)))


def export_onnx(model: SRGAN | SRModel, path: str | os.PathLike[str], *, opset: int = 17) -> Path:
    """Write ``model``'s generator as an ONNX file with dynamic batch, height and width (``torch.onnx.export``).

    Args:
        model: an :class:`~srgan.SRGAN` or a generator (srgan's or a peer architecture).
        path: destination file (written atomically).
        opset: ONNX opset version of the file (torch exports at opset 18 and converts down to a lower one).

    Raises:
        ImportError: ``onnx`` or ``onnxscript`` is not installed.
    """
    try:  # imported by name: both are optional, and torch.onnx.export needs them
        for name in ("onnx", "onnxscript"):
            importlib.import_module(name)
    except ImportError as e:
        raise ImportError(
            f"ONNX export needs the 'onnx' and 'onnxscript' packages ({e}): pip install \"srgan[export]\" "
            "(or pip install onnx onnxscript)"
        ) from e
    module = prepare_for_export(model)
    example = torch.rand(_EXAMPLE_SHAPE)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}

    def write(tmp: Path) -> None:
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamic_shapes=(dims,),
            dynamo=True,
            external_data=False,
            verbose=False,
        )

    return _write_atomic(Path(path), write)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it into place; no partial file on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_replace(path, suffix=".partial") as (f, tmp):
        f.close()  # the exporters write by file name
        write(tmp)
    logger.info("wrote %s", path)
    return path
