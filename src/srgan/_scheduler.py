"""Running a generator tile by tile: the memory budget, tile size, batches of tiles and their upload to the device.

:mod:`srgan._tiling` says where the tiles are; this module decides how big they are and in which batches they run.
On CUDA, tiles of the same padded shape run as one batch (as many as the memory budget allows), inputs go through
pinned memory on a side stream so the next upload overlaps the current forward, and cuDNN picks its fastest kernels
(benchmark mode, scoped to the call). On a CPU tiles run one at a time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._tiling import Tile
from .runtime import heap_trim

__all__ = [
    "CPU_MEMORY_BOUND",
    "CPU_TILE_BUDGET",
    "Uploader",
    "auto_side",
    "device_context",
    "group_tiles",
    "run_tiles",
    "tile_budget",
    "tiles_per_batch",
]

CPU_TILE_BUDGET = 3 * 2**29
"""Bytes of activations per tile on a CPU at most (1.5 GiB)."""

CPU_MEMORY_BOUND = 5 * 2**29
"""Peak resident memory of one upscale on a CPU (2.5 GiB, process included) that the tile budget aims for."""

_CPU_PROCESS_ALLOWANCE = 900 * 2**20
"""What the process holds before srgan's buffers: Python, torch, the model, the decoded input (about 730 MiB measured
in a fresh process with the packaged x4 model), plus a margin."""

_CPU_MIN_TILE_BUDGET = 2**28
"""The smallest CPU tile budget (256 MiB): tiles stay large enough to be worth running whatever the output size."""

_GPU_TILE_BUDGET = 4.0 * 2**30  # at most 4 GiB, and at most half the free memory


def tile_budget(device: torch.device, *, reserved: float = 0) -> float:
    """Bytes of activations a tile (or a batch of tiles) may use on ``device``.

    On a CPU that is what :data:`CPU_MEMORY_BOUND` leaves after the process itself and the ``reserved`` bytes the
    call holds in host memory (its input and output buffers: 4 bytes per output pixel for an 8-bit PIL image, 12
    for a float32 tensor), at most :data:`CPU_TILE_BUDGET` and at least 256 MiB. So a huge output gets smaller
    tiles, and the peak stays under the bound while the call's buffers need at most about 1.4 GiB (any 8-bit PIL
    output up to the default 268 M pixel cap; float32 tensors up to about 120 M output pixels); beyond that the
    peak is those buffers plus about 1.1 GiB. On CUDA ``reserved`` (host memory)
    does not count: the budget is at most 4 GiB and at most half the free GPU memory.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return min(_GPU_TILE_BUDGET, 0.5 * free)
    left = CPU_MEMORY_BOUND - _CPU_PROCESS_ALLOWANCE - reserved
    return float(min(CPU_TILE_BUDGET, max(_CPU_MIN_TILE_BUDGET, left)))


def auto_side(h: int, w: int, *, budget: float, bytes_per_px: float, radius: int, batch: int = 1) -> int:
    """The longest side of a square *padded* tile (core plus ``radius`` of context per side) whose activations fit
    ``budget``, for :func:`srgan._tiling.plan_padded_tiles`; ``max(h, w)`` when the whole (``h``, ``w``) image fits.

    Each tile recomputes its context (its neighbours' pixels), so big tiles waste less work. ``bytes_per_px`` is
    the peak memory per input pixel of one image; ``batch`` images share the budget. The core stays at least 64
    pixels.
    """
    max_px = max(64 * 64, int(budget / (bytes_per_px * batch)))
    if h * w <= max_px:
        return max(h, w)
    return max(64 + 2 * radius, math.isqrt(max_px))


def tiles_per_batch(device: torch.device, padded_pixels: int, *, bytes_per_px: float) -> int:
    """Tiles run together in one forward: as many as the budget allows on CUDA; one at a time on a CPU (no gain
    there, only memory). ``padded_pixels`` is the input pixels of one tile with its context, times the batch."""
    if device.type != "cuda":
        return 1
    return max(1, int(tile_budget(device) // (padded_pixels * bytes_per_px)))


def group_tiles(tiles: Sequence[Tile], per_batch: int) -> list[list[Tile]]:
    """Batches of at most ``per_batch`` tiles of the same padded shape (so they stack into one tensor)."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        groups.setdefault((t.py1 - t.py0, t.px1 - t.px0), []).append(t)
    return [g[k : k + per_batch] for g in groups.values() for k in range(0, len(g), per_batch)]


def device_context(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """cuDNN benchmark mode for the duration of a CUDA call (not a global change); nothing elsewhere."""
    if device.type == "cuda":
        return torch.backends.cudnn.flags(enabled=True, benchmark=True)
    return contextlib.nullcontext()


class Uploader:
    """Moves batches of tiles to the device: pinned memory and a side stream on CUDA, plain slicing elsewhere."""

    def __init__(self, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> None:
        self.x, self.device, self.dtype = x, device, dtype
        self.cuda = device.type == "cuda" and x.device.type == "cpu"
        self.stream = torch.cuda.Stream(device) if self.cuda else None  # type: ignore[no-untyped-call]

    def _gather(self, chunk: list[Tile]) -> torch.Tensor:
        parts = [self.x[:, :, t.py0 : t.py1, t.px0 : t.px1] for t in chunk]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def start(self, chunk: list[Tile]) -> tuple[torch.Tensor, Any]:
        batch = self._gather(chunk)
        if self.stream is None:
            out = batch.to(device=self.device, dtype=self.dtype)
            return out.contiguous(memory_format=torch.channels_last), None
        pinned = batch.to(self.dtype).pin_memory()
        with torch.cuda.stream(self.stream):
            out = pinned.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record(self.stream)
        return out, event

    def wait(self, pending: tuple[torch.Tensor, Any]) -> torch.Tensor:
        tensor, event = pending
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            tensor.record_stream(current)
        return tensor


def run_tiles(
    x: torch.Tensor,
    chunks: Sequence[list[Tile]],
    forward: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    dtype: torch.dtype,
    on_output: Callable[[list[Tile], torch.Tensor], None],
) -> None:
    """Run ``forward`` on each batch of tiles of ``x`` (N, 3, H, W), uploaded to ``device`` in ``dtype`` (channels
    last); ``on_output(chunk, out)`` gets each batch's output, the tiles stacked along the batch dimension in chunk
    order (N rows per tile). Runs in inference mode; on CUDA the next upload overlaps the current forward. On a CPU
    inside :func:`srgan.runtime.heap_reuse`, the heap's free memory goes back to the system after each tile of an
    image of several tiles."""
    if not chunks:
        return
    with torch.inference_mode(), device_context(device):
        uploader = Uploader(x, device, dtype)
        pending = uploader.start(chunks[0])
        for i, chunk in enumerate(chunks):
            inp = uploader.wait(pending)
            sr = forward(inp)
            del inp
            if i + 1 < len(chunks):
                pending = uploader.start(chunks[i + 1])  # overlaps with the forward above on CUDA
            on_output(chunk, sr)
            del sr  # before the next forward, not after it
            if len(chunks) > 1 and device.type == "cpu":
                # What this tile freed goes back before the next one's activations, and after the last one before
                # whatever the caller does next (saving a large output): a large image pays one page-fault pass per
                # tile; small ones (one tile) keep their memory for the next image of a batch.
                heap_trim()
