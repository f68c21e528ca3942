"""The inference object: :class:`SRGAN` loads a generator and upscales images of any kind and size."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import _image
from ._dihedral import dihedral as _dihedral
from ._files import atomic_write_text
from ._fuse import prepare_for_inference
from ._prefetch import prefetch as _prefetch
from ._resolve import CHECKPOINT_NAME as CHECKPOINT_NAME
from ._resolve import resolve_checkpoint
from ._scheduler import CPU_TILE_BUDGET as _CPU_TILE_BUDGET  # noqa: F401  # kept importable from here
from ._scheduler import auto_side, group_tiles, run_tiles, tile_budget, tiles_per_batch
from ._tiling import Tile, band_rows, plan_padded_tiles, plan_tiles, receptive_radius
from .errors import ConfigError, ImageTooLargeError, InvalidImageError
from .models import SRModel, registry
from .runtime import cpu_has_native_bf16 as cpu_has_native_bf16
from .runtime import heap_reuse
from .runtime import resolve_device as resolve_device
from .runtime import resolve_dtype as resolve_dtype
from .weights import build_generator, save_checkpoint

__all__ = ["SRGAN", "resolve_device", "resolve_dtype", "CHECKPOINT_NAME"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT_PIXELS = 1 << 28
"""Default cap on output pixels per image (268 M, e.g. 16384 x 16384)."""

ImageT = TypeVar("ImageT", Image.Image, np.ndarray, torch.Tensor)


class SRGAN:
    """A super-resolution model ready for inference.

    Wraps a generator (available unchanged as :attr:`generator`) and runs it on images of any supported kind,
    size, device and precision. The generator is srgan's :class:`~srgan.models.Generator` or a peer architecture
    loaded from another project's checkpoint (:class:`~srgan.models.ClassicSRGANGenerator`,
    :class:`~srgan.models.MSRResNet`). Thread-safe: several threads may call :meth:`upscale` on one
    object.

    Args:
        generator: the generator to use (any :data:`~srgan.models.SRModel`); it is not modified (inference runs on
            an internal copy).
        device: ``"auto"``/None (CUDA, then MPS, then CPU), or any torch device.
        dtype: compute precision: None (fp16 on CUDA, bf16 on CPUs with native bf16, else fp32),
            ``torch.float32``/``"fp32"`` (opts out of reduced precision),
            ``torch.float16``/``"fp16"``, ``torch.bfloat16``/``"bf16"``.
        meta: free-form description of the weights (kept by :meth:`save_pretrained`).
    """

    def __init__(
        self,
        generator: SRModel,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        arch = registry.for_model(generator)  # ConfigError naming the registered architectures
        if not arch.is_generator:
            raise ConfigError(f"expected a generator, got a {arch.name!r} model ({type(generator).__name__})")
        self.generator = generator
        self.meta: dict[str, Any] = dict(meta or {})
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._lock = threading.Lock()
        self._models: dict[tuple[torch.device, torch.dtype], SRModel] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        progress: bool | None = None,
    ) -> SRGAN:
        """Load a generator.

        Args:
            model: a registered name (``srgan models`` lists them), a checkpoint file (srgan's, or a plain state
                dict of srgan's Generator, of the "srgan-classic" layout or of BasicSR's MSRResNet: the
                architecture is read from the keys and shapes), a folder written by
                :meth:`save_pretrained` or by the Trainer, or an https URL (downloaded once into the cache,
                see :mod:`srgan.hub`). None loads the default packaged model.
            device: see :class:`SRGAN`.
            dtype: see :class:`SRGAN`.
            progress: show a download progress bar (None: only on a terminal).
        """
        ckpt, source = resolve_checkpoint(model, progress=progress)
        generator = build_generator(ckpt, source=source)
        return cls(generator, device=device, dtype=dtype, meta=dict(ckpt.meta))

    def save_pretrained(self, path: str | os.PathLike[str], *, half: bool = False) -> Path:
        """Write ``path/generator.pt`` (weights + architecture + metadata) and a readable ``path/config.json``.

        The folder loads back with ``SRGAN.from_pretrained(path)``. ``half=True`` stores fp16 tensors.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        save_checkpoint(folder / CHECKPOINT_NAME, self.generator, meta=self.meta, half=half)
        info = {"config": self.generator.config.to_dict(), "meta": self.meta}
        atomic_write_text(folder / "config.json", json.dumps(info, indent=2, default=str) + "\n")
        return folder

    def to(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> SRGAN:
        """Move inference to another device and/or precision (in place; returns self).

        Without ``dtype`` the current precision is kept where the new device supports it. Cached inference copies
        of the generator are released (also call this after changing :attr:`generator`'s weights in place).
        """
        with self._lock:
            if device is not None:
                self.device = resolve_device(device)
            self.dtype = resolve_dtype(self.dtype if dtype is None else dtype, self.device)
            self._models.clear()
        return self

    @property
    def scale(self) -> int:
        """The upscaling factor (2, 3, 4 or 8)."""
        return self.generator.scale

    def __repr__(self) -> str:
        return f"SRGAN({self.generator.config}, device={self.device}, dtype={self.dtype})"

    # ------------------------------------------------------------------ inference
    @overload
    def upscale(
        self,
        image: ImageT,
        *,
        tile: int | None = ...,
        max_output_pixels: int | None = ...,
        self_ensemble: bool = ...,
        outscale: float | None = ...,
    ) -> ImageT: ...

    @overload
    def upscale(
        self,
        image: str | os.PathLike[str],
        *,
        tile: int | None = ...,
        max_output_pixels: int | None = ...,
        self_ensemble: bool = ...,
        outscale: float | None = ...,
    ) -> Image.Image: ...

    def upscale(
        self,
        image: Image.Image | np.ndarray | torch.Tensor | str | os.PathLike[str],
        *,
        tile: int | None = None,
        max_output_pixels: int | None = DEFAULT_MAX_OUTPUT_PIXELS,
        self_ensemble: bool = False,
        outscale: float | None = None,
    ) -> Image.Image | np.ndarray | torch.Tensor:
        """Upscale ``image`` by :attr:`scale` (or by ``outscale``); returns the same kind of object.

        Args:
            image: a PIL image (RGB, RGBA, L, LA, P, CMYK, I;16, I, F: see the inference guide), a numpy array
                (H, W) or (H, W, C) uint8/uint16/float in [0, 1], a tensor (C, H, W) or (N, C, H, W) float in
                [0, 1] or uint8, or a path to an image file (returns a PIL image).
            tile: tile size in input pixels (a whole number >= 1); None picks one that bounds memory. Tiles overlap
                by the generator's receptive field, so the result equals an untiled run (no seams).
            max_output_pixels: refuse inputs whose output would exceed this many pixels per image (a tensor batch
                of N images is not multiplied by N); None: no limit.
            self_ensemble: geometric self-ensemble: upscale the 8 flips/transposes of the image and average the
                results mapped back (8x the time, plus one float32 buffer of the output's size). Gains 0.1 - 0.2 dB
                PSNR with a pixel-loss model such as ``srresnet-x4``; it also averages away part of a GAN model's
                texture, so it is meant for PSNR-oriented models.
            outscale: any output scale (> 0), as Real-ESRGAN offers: the network upscales by :attr:`scale`, then
                an antialiased bicubic resize (on the float result, before it is converted back) brings the output
                to ``round(outscale * input size)`` (halves up, at least 1 pixel). None, or :attr:`scale` itself,
                is the network's output unchanged. Costs one float32 copy of the network's output.

        Raises:
            ConfigError: ``outscale`` is not a number > 0, or ``tile`` not a whole number >= 1.
            InvalidImageError: unreadable file, unsupported type/mode/dtype/shape/device, NaN/inf values.
            ImageTooLargeError: the network's output or the final output of one image larger than
                ``max_output_pixels``.
        """
        resize = self._outscale(outscale)
        tile = _check_tile(tile)
        if isinstance(image, (str, os.PathLike)):
            # Check the size from the header, before decoding.
            image = _image.open_image(image, max_pixels=max_output_pixels, scale=self.scale)
        h, w = _image.pixel_count(image)
        out_h, out_w = (h * self.scale, w * self.scale) if resize is None else _outscale_size(h, w, resize)
        out_px = max(h * w * self.scale**2, out_h * out_w)  # per image, as documented: a batch is not counted
        if max_output_pixels is not None and out_px > max_output_pixels:
            raise ImageTooLargeError(
                f"a {w}x{h} input would give {w * self.scale}x{h * self.scale} network output and {out_w}x{out_h} "
                f"output ({out_px} pixels per image), more than max_output_pixels={max_output_pixels}; "
                "pass a larger max_output_pixels (or None) if you have the memory"
            )
        prep = _image.prepare(image)
        if resize is not None:
            rgb = self.upscale_tensor(prep.rgb, tile=tile, self_ensemble=self_ensemble, outscale=resize)
            alpha = None if prep.alpha is None else _resize(prep.alpha, (out_h, out_w))
            return _image.restore(rgb, alpha, prep)
        alpha = None
        if prep.alpha is not None:
            alpha = F.interpolate(prep.alpha, scale_factor=self.scale, mode="bicubic", align_corners=False)
            alpha = alpha.clamp_(0, 1)
        if prep.kind != "torch" and prep.bit_depth == 8 and not prep.grey:
            # 8-bit colour output: each tile is rounded straight into the final image, so memory stays at the size
            # of the output image instead of several float32 copies of it.
            return self._upscale_uint8(prep, alpha, tile, self_ensemble)
        return _image.restore(self.upscale_tensor(prep.rgb, tile=tile, self_ensemble=self_ensemble), alpha, prep)

    def upscale_batch(
        self,
        images: Iterable[Image.Image | np.ndarray | torch.Tensor | str | os.PathLike[str]],
        *,
        tile: int | None = None,
        max_output_pixels: int | None = DEFAULT_MAX_OUTPUT_PIXELS,
        workers: int = 2,
        prefetch: int = 4,
        self_ensemble: bool = False,
        outscale: float | None = None,
    ) -> Iterator[Image.Image | np.ndarray | torch.Tensor]:
        """Upscale many images lazily, in order: ``for big in model.upscale_batch(paths): ...``.

        Files are opened and decoded by ``workers`` threads up to ``prefetch`` images ahead while the model runs
        (Pillow releases the GIL while decoding). Each result is what :meth:`upscale` returns for that input; an
        input that fails raises its error when its turn comes (the images before it have been yielded).
        ``outscale`` as in :meth:`upscale`.
        """
        if workers < 1 or prefetch < 1:
            raise ConfigError(f"workers and prefetch must be >= 1, got {workers} and {prefetch}")
        self._outscale(outscale)  # a bad outscale or tile fails here, before any image is read
        tile = _check_tile(tile)

        def load(item: Any) -> Any:
            if isinstance(item, (str, os.PathLike)):
                return _image.open_image(item, max_pixels=max_output_pixels, scale=self.scale)
            return item

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for loaded in _prefetch(load, images, pool=pool, ahead=prefetch):
                yield self.upscale(
                    loaded.result(),
                    tile=tile,
                    max_output_pixels=max_output_pixels,
                    self_ensemble=self_ensemble,
                    outscale=outscale,
                )

    def _upscale_uint8(
        self,
        prep: _image.PreparedImage[Any],
        alpha: torch.Tensor | None,
        tile: int | None,
        self_ensemble: bool = False,
    ) -> Image.Image | np.ndarray:
        """An 8-bit colour PIL/numpy input's output: each tile is rounded (half to even, like
        :func:`_image.restore`) straight into the final image, which exists once (no float or second uint8 copy)."""
        rgb = prep.rgb
        _, _, h, w = rgb.shape
        s = self.scale
        canvas: _image.Uint8Canvas[Any] = _image.Uint8Canvas(prep, h * s, w * s)

        def write(t: Tile, core: torch.Tensor) -> None:
            canvas.paste(t.y0 * s, t.x0 * s, core[0].mul_(255.0).round_().permute(1, 2, 0))

        reserved = canvas.nbytes + rgb.nbytes + (0 if alpha is None else alpha.nbytes)
        self._run(rgb, tile, write, self_ensemble=self_ensemble, reserved=reserved)
        if alpha is not None:
            canvas.put_alpha(alpha[0, 0].mul(255.0).round_())
        result: Image.Image | np.ndarray = canvas.result()
        return result

    def upscale_tensor(
        self,
        x: torch.Tensor,
        *,
        tile: int | None = None,
        self_ensemble: bool = False,
        outscale: float | None = None,
    ) -> torch.Tensor:
        """Upscale an RGB batch: (N, 3, H, W) float in [0, 1] -> (N, 3, sH, sW) float32 on CPU, clamped to [0, 1].

        The input may live on any device; it is moved tile by tile to :attr:`device`. ``tile``,
        ``self_ensemble`` and ``outscale`` as in :meth:`upscale` (with ``outscale`` the output is
        (N, 3, round(outscale * H), round(outscale * W))).
        """
        resize = self._outscale(outscale)
        tile = _check_tile(tile)
        if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise InvalidImageError(
                f"expected a (N, 3, H, W) float tensor in [0, 1], got shape {tuple(x.shape)} and dtype {x.dtype}; "
                "use upscale() for other layouts, integer dtypes, grey or alpha images"
            )
        if x.shape[-1] < 1 or x.shape[-2] < 1:
            raise InvalidImageError(f"empty image of shape {tuple(x.shape)}")
        n, _, h, w = x.shape
        s = self.scale
        out = torch.empty(n, 3, h * s, w * s, dtype=torch.float32)

        def write(t: Tile, core: torch.Tensor) -> None:
            out[:, :, t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = core

        reserved = out.nbytes + (x.nbytes if x.device.type == "cpu" else 0)
        self._run(x, tile, write, self_ensemble=self_ensemble, reserved=reserved)
        return out if resize is None else _resize(out, _outscale_size(h, w, resize))

    def _outscale(self, outscale: float | None) -> float | None:
        """The factor of the resize after the network, or None when there is none (``outscale`` None or
        :attr:`scale`); ConfigError unless a finite number > 0."""
        if outscale is None:
            return None
        if isinstance(outscale, bool) or not isinstance(outscale, (int, float)) or not math.isfinite(outscale):
            raise ConfigError(
                f"outscale must be a number > 0 (output size / input size), got {outscale!r}; None keeps the "
                f"network's x{self.scale}"
            )
        if outscale <= 0:
            raise ConfigError(f"outscale must be > 0 (output size / input size), got {outscale}")
        return None if outscale == self.scale else float(outscale)

    def _run(
        self,
        x: torch.Tensor,
        tile: int | None,
        write: Callable[[Tile, torch.Tensor], None],
        *,
        self_ensemble: bool = False,
        reserved: int = 0,
    ) -> None:
        """Run the generator tile by tile; ``write(tile, core)`` gets each tile's output core, float32 in [0, 1]
        on the CPU, shape (N, 3, s*(y1-y0), s*(x1-x0)).

        A generator in two stages (its architecture's :class:`~srgan.models.registry.StageSplit`; srgan's and the
        classic SRResNet) runs its trunk on tiles as large as the trunk's small per-pixel memory allows (a 512x512
        input whole, 1024x1024 as 2x2 tiles on a CPU in fp32), then its upsampling layers over each tile's core only,
        in bands of rows with their own few pixels of context; ``write`` gets each band. Other generators run whole
        on each tile. Either way every output pixel sees the same input pixels as in an untiled forward.

        On CUDA, tiles of the same padded shape run as one batch (as many as the memory budget allows), inputs go
        through pinned memory on a side stream so the next upload overlaps the current forward, and cuDNN picks
        its fastest kernels (benchmark mode, scoped to this call). A tile (or band) whose reduced-precision output
        is not finite is recomputed in float32 from the original input, with a warning.

        With ``self_ensemble`` the whole tiled run is repeated on the 8 flips/transposes of ``x``; the outputs,
        mapped back, are averaged into one float32 buffer that ``write`` gets as a single whole-image tile.

        ``reserved`` is the bytes the caller already holds for this call (input, output buffers): on a CPU the
        tile size leaves room for them under the memory bound (:func:`srgan._scheduler.tile_budget`). On a CPU the
        call runs in :func:`srgan.runtime.heap_reuse` (freed activations reused, not page-faulted in again).
        """
        with heap_reuse() if self.device.type == "cpu" else contextlib.nullcontext():
            if self_ensemble:
                n, _, h, w = x.shape
                s = self.scale
                acc = torch.zeros(n, 3, h * s, w * s, dtype=torch.float32)
                for hflip, vflip, transpose in itertools.product((False, True), repeat=3):
                    xt = _dihedral(x, hflip=hflip, vflip=vflip, transpose=transpose)
                    buf = torch.empty(n, 3, xt.shape[-2] * s, xt.shape[-1] * s, dtype=torch.float32)

                    def put(t: Tile, core: torch.Tensor, buf: torch.Tensor = buf) -> None:
                        buf[:, :, t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = core

                    self._run(xt, tile, put, reserved=reserved + acc.nbytes + buf.nbytes)
                    acc += _dihedral(buf, hflip=hflip, vflip=vflip, transpose=transpose, inverse=True)
                write(Tile(0, h, 0, w, 0, h, 0, w), acc.div_(8))
                return
            n, _, h, w = x.shape
            device, dtype = self.device, self.dtype
            pad = self._pad()
            if tile is None:
                # The budget bounds the padded tile; the border tiles, with context on one side only, get longer cores.
                side = self._auto_side(h, w, device, batch=n, reserved=reserved)
                tiles = list(plan_padded_tiles(h, w, side=side, pad=pad))
            else:
                tiles = list(plan_tiles(h, w, tile=int(tile), pad=pad))
            padded = max((t.py1 - t.py0) * (t.px1 - t.px0) for t in tiles) * n
            per_batch = self._tiles_per_batch(device, padded)
            split = self._stages()
            if split is None:
                run_tiles(
                    x,
                    group_tiles(tiles, per_batch),
                    lambda inp: self._model(device, dtype)(inp),
                    device=device,
                    dtype=dtype,
                    on_output=lambda chunk, sr: self._write_chunk(x, chunk, sr, write),
                )
                return
            # Two stages: the trunk on each (large) tile, then the upsampling layers over the tile's core only, in bands
            # of rows with their own small context, sized by what the budget leaves beside the batch's features.
            size = _dtype_bytes(dtype)
            budget = tile_budget(device, reserved=reserved)
            left = max(budget - per_batch * padded * split.feature_channels * size, 0.25 * budget)
            if device.type == "cpu":  # bands as fast as larger ones, and they fit in the memory the trunk freed
                left = min(left, _CPU_BAND_BUDGET)
            band_bpp = split.reconstruct_values_per_pixel * size * n

            def reconstruct(chunk: list[Tile], feats: torch.Tensor) -> None:
                for j, t in enumerate(chunk):
                    f = feats[j * n : (j + 1) * n]
                    for band in band_rows(t, h, w, budget=left, bytes_per_px=band_bpp, radius=split.reconstruct_radius):
                        self._reconstruct_band(x, f, t, band, split, write)

            run_tiles(
                x,
                group_tiles(tiles, per_batch),
                lambda inp: self._model(device, dtype).features(inp),  # type: ignore[operator]
                device=device,
                dtype=dtype,
                on_output=reconstruct,
            )

    def _reconstruct_band(
        self,
        x: torch.Tensor,
        feats: torch.Tensor,
        t: Tile,
        band: Tile,
        split: registry.StageSplit,
        write: Callable[[Tile, torch.Tensor], None],
    ) -> None:
        """Run the upsampling layers on ``band`` (a part of tile ``t``'s core, with its padded region inside ``t``'s)
        of the tile's features ``feats`` and write its core; a reduced-precision band whose output is not finite is
        recomputed in float32 from the input, with a warning."""
        s = self.scale
        model = self._model(self.device, self.dtype)
        f = feats[:, :, band.py0 - t.py0 : band.py1 - t.py0, band.px0 - t.px0 : band.px1 - t.px0]
        out = model.reconstruct(f)  # type: ignore[operator]
        if out.dtype != torch.float32 and not torch.isfinite(out).all():
            warnings.warn(
                f"non-finite output in {out.dtype} for a tile; recomputing it in float32",
                RuntimeWarning,
                stacklevel=6,
            )
            r = split.features_radius
            y0, y1 = max(0, band.py0 - r), min(x.shape[-2], band.py1 + r)
            x0, x1 = max(0, band.px0 - r), min(x.shape[-1], band.px1 + r)
            inp = x[:, :, y0:y1, x0:x1].to(device=self.device, dtype=torch.float32)
            fp32 = self._model(self.device, torch.float32)
            f32 = fp32.features(inp.contiguous(memory_format=torch.channels_last))  # type: ignore[operator]
            out = fp32.reconstruct(f32[:, :, band.py0 - y0 : band.py1 - y0, band.px0 - x0 : band.px1 - x0])  # type: ignore[operator]
        oy, ox = (band.y0 - band.py0) * s, (band.x0 - band.px0) * s
        core = out[:, :, oy : oy + (band.y1 - band.y0) * s, ox : ox + (band.x1 - band.x0) * s]
        write(band, core.to(device="cpu", dtype=torch.float32, copy=True).clamp_(0, 1))

    def _stages(self) -> registry.StageSplit | None:
        """How the generator splits for tiled inference (None: it runs whole on each tile)."""
        stages = registry.for_model(self.generator).stages
        if stages is None or not isinstance(self.generator, registry.TwoStageModel):
            return None
        split: registry.StageSplit = stages(self.generator.config)
        return split

    def _write_chunk(
        self, x: torch.Tensor, chunk: list[Tile], sr: torch.Tensor, write: Callable[[Tile, torch.Tensor], None]
    ) -> None:
        n, s = x.shape[0], self.scale
        for j, t in enumerate(chunk):
            out = sr[j * n : (j + 1) * n]
            if out.dtype != torch.float32 and not torch.isfinite(out).all():
                warnings.warn(
                    f"non-finite output in {out.dtype} for a tile; recomputing it in float32",
                    RuntimeWarning,
                    stacklevel=4,
                )
                inp = x[:, :, t.py0 : t.py1, t.px0 : t.px1].to(device=self.device, dtype=torch.float32)
                out = self._model(self.device, torch.float32)(inp.contiguous(memory_format=torch.channels_last))
            oy, ox = (t.y0 - t.py0) * s, (t.x0 - t.px0) * s
            core = out[:, :, oy : oy + (t.y1 - t.y0) * s, ox : ox + (t.x1 - t.x0) * s]
            write(t, core.to(device="cpu", dtype=torch.float32, copy=True).clamp_(0, 1))

    __call__ = upscale

    # ------------------------------------------------------------------ internals
    def _auto_side(self, h: int, w: int, device: torch.device, *, batch: int = 1, reserved: int = 0) -> int:
        """The longest side of a padded tile (core plus the receptive radius of context per side) whose activations
        fit the memory budget; the whole image when it fits.

        Big tiles waste less work (each recomputes its context); the budget (on a CPU: what the 2.5 GiB bound
        leaves after the process and the ``reserved`` input and output buffers, at most 1.5 GiB; up to 4 GiB of
        free GPU memory) bounds memory whatever the image size. The memory per pixel is the trunk's for a two-stage
        generator (:meth:`_run`), and on a CPU its tiles leave one band budget (:data:`_CPU_BAND_BUDGET`) of the
        budget to the upsampling bands and the heap memory they hold apart from the trunk's (measured: without
        it the whole ``srgan upscale`` of a 4000x3000 JPEG peaked at 2504 MiB, 56 MiB under the bound).
        """
        budget = tile_budget(device, reserved=reserved)
        if device.type == "cpu" and self._stages() is not None:
            budget = max(budget - _CPU_BAND_BUDGET, _CPU_BAND_BUDGET)
        return auto_side(
            h,
            w,
            budget=budget,
            bytes_per_px=self._bytes_per_px(),
            radius=self._pad(),
            batch=batch,
        )

    def _tiles_per_batch(self, device: torch.device, padded_pixels: int) -> int:
        """Tiles run together in one forward: as many as the budget allows on CUDA; one at a time on a CPU (no
        gain there, only memory)."""
        return tiles_per_batch(device, padded_pixels, bytes_per_px=self._bytes_per_px())

    def _bytes_per_px(self) -> float:
        """Peak memory per input pixel of what runs on whole tiles: the trunk of a two-stage generator (its
        upsampling layers run in bands sized separately), else the whole generator."""
        split = self._stages()
        if split is None:
            return _activation_bytes_per_input_pixel(self.generator, self.dtype)
        return split.features_values_per_pixel * _dtype_bytes(self.dtype)

    def _pad(self) -> int:
        """Context pixels per tile side: the receptive radius (of both stages together, for a two-stage model)."""
        pad = receptive_radius(self.generator.config)
        split = self._stages()
        return pad if split is None else max(pad, split.features_radius + split.reconstruct_radius)

    def _model(self, device: torch.device, dtype: torch.dtype) -> SRModel:
        key = (device, dtype)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                # BatchNorm folded into the convs and the architecture's rewrite (srgan's tail before its last
                # PixelShuffle): same output (~1e-6), fewer memory passes, a wider last conv.
                model = prepare_for_inference(self.generator).to(device=device, dtype=dtype)
                model.requires_grad_(False)
                if device.type == "cpu":
                    model = model.to(memory_format=torch.channels_last)
                self._models[key] = model
        return model


def _check_tile(tile: object) -> int | None:
    """``tile`` as an int (or None); ConfigError unless None or a whole number >= 1 (``256`` or ``256.0``)."""
    if tile is None:
        return None
    if isinstance(tile, (int, float, np.integer, np.floating)) and not isinstance(tile, bool):
        number = float(tile)
        if math.isfinite(number) and number.is_integer() and number >= 1:
            return int(number)
    raise ConfigError(
        f"tile must be a whole number of input pixels >= 1 or None, got {tile!r}; e.g. tile=256, or None to "
        "choose one from the memory budget"
    )


def _outscale_size(h: int, w: int, outscale: float) -> tuple[int, int]:
    """(height, width) of an ``outscale`` output of an h x w input: rounded, halves up, at least 1."""
    return max(1, math.floor(h * outscale + 0.5)), max(1, math.floor(w * outscale + 0.5))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The resize of ``outscale``: antialiased bicubic of (N, C, H, W) float to ``size``, clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)


_CPU_BAND_BUDGET = float(2**28)
"""Bytes of activations per band of the upsampling layers on a CPU (256 MiB; a two-stage generator, see
:meth:`SRGAN._run`): measured as fast as 512 MiB and 3x larger bands for a 512x512 input on a 2-core CPU, with a
lower peak, since the bands reuse the heap memory the trunk freed."""


def _dtype_bytes(dtype: torch.dtype) -> int:
    return 2 if dtype in (torch.float16, torch.bfloat16) else 4


def _activation_bytes_per_input_pixel(generator: SRModel, dtype: torch.dtype) -> float:
    """Peak inference memory per input pixel: the activation values its architecture declares, times the bytes of
    ``dtype`` (about 5.1 kB for the default x4 model in bf16, 10 kB in fp32)."""
    values = registry.for_model(generator).activation_values_per_pixel
    if values is None:
        raise ConfigError(f"{type(generator).__name__} is not a generator: it declares no activation memory")
    return values(generator.config) * _dtype_bytes(dtype)
