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

__all__ = [
    "CPU_TILE_BUDGET",
    "Uploader",
    "auto_tile",
    "device_context",
    "group_tiles",
    "run_tiles",
    "tile_budget",
    "tiles_per_batch",
]

CPU_TILE_BUDGET = 3 * 2**29
"""Bytes of activations per tile on a CPU (1.5 GiB)."""

_GPU_TILE_BUDGET = 4.0 * 2**30  # at most 4 GiB, and at most half the free memory


def tile_budget(device: torch.device) -> float:
    """Bytes of activations a tile (or a batch of tiles) may use on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return min(_GPU_TILE_BUDGET, 0.5 * free)
    return float(CPU_TILE_BUDGET)


def auto_tile(h: int, w: int, *, budget: float, bytes_per_px: float, radius: int, batch: int = 1) -> int:
    """The largest square tile whose activations fit ``budget``; the whole (``h``, ``w``) image when it fits.

    Each tile carries ``radius`` pixels of context per side (recomputed by its neighbours), so big tiles waste less
    work. ``bytes_per_px`` is the peak memory per input pixel of one image; ``batch`` images share the budget.
    """
    max_px = max(64 * 64, int(budget / (bytes_per_px * batch)))
    if h * w <= max_px:
        return max(h, w)
    return max(64, math.isqrt(max_px) - 2 * radius)


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
    order (N rows per tile). Runs in inference mode; on CUDA the next upload overlaps the current forward."""
    if not chunks:
        return
    with torch.inference_mode(), device_context(device):
        uploader = Uploader(x, device, dtype)
        pending = uploader.start(chunks[0])
        for i, chunk in enumerate(chunks):
            inp = uploader.wait(pending)
            sr = forward(inp)
            if i + 1 < len(chunks):
                pending = uploader.start(chunks[i + 1])  # overlaps with the forward above on CUDA
            on_output(chunk, sr)
