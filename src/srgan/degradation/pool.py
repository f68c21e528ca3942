"""Real-ESRGAN's training-pair pool: a fixed-size queue of (LR, HR) pairs that mixes degradations across batches.

Degradations drawn per batch (resize sizes and modes, the order of the final steps) would otherwise be shared by
every image of a batch; swapping each new batch with random pairs of earlier ones spreads them out.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError, InvalidImageError
from ._common import check_image

__all__ = ["TrainingPairPool"]


class TrainingPairPool:
    """A fixed-size pool of (lr, hr) training pairs (Real-ESRGAN's ``queue_size``, 180 for batches of 12).

    While the pool fills, ``pool(lr, hr)`` stores the batch and returns it unchanged; once full, it returns ``N``
    random pairs from the pool and puts the new batch in their places. The choice comes from the pool's own
    generator, seeded by ``seed``: the same seed and the same batches give the same output.

    Args:
        size: number of pairs held; a multiple of the batch size (checked at the first batch).
        seed: seed of the pool's generator.

    The pool's memory lives on the device and in the dtype of the first batch.
    """

    def __init__(self, size: int, *, seed: int = 0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"TrainingPairPool size must be a positive integer (e.g. 180), got {size!r}")
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self._lr: torch.Tensor | None = None
        self._hr: torch.Tensor | None = None
        self._filled = 0
        self._undo: tuple[str, Any] | None = None

    def __len__(self) -> int:
        """The number of pairs stored so far."""
        return self._filled

    @property
    def full(self) -> bool:
        return self._filled == self.size

    def __repr__(self) -> str:
        return f"TrainingPairPool(size={self.size}, filled={self._filled})"

    def __call__(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Swap a batch: (N, C, h, w) LR and (N, C, H, W) HR in, a batch of the same shapes out."""
        lr = check_image(lr, "TrainingPairPool lr")
        hr = check_image(hr, "TrainingPairPool hr")
        n = lr.shape[0]
        if hr.shape[0] != n:
            raise InvalidImageError(f"TrainingPairPool: expected as many HR as LR images, got {hr.shape[0]} and {n}")
        if self._lr is None or self._hr is None:
            if self.size % n:
                raise ConfigError(
                    f"TrainingPairPool size {self.size} is not a multiple of the batch size {n}; "
                    f"use e.g. {max(1, self.size // n) * n}"
                )
            self._lr = lr.new_empty((self.size, *lr.shape[1:]))
            self._hr = hr.new_empty((self.size, *hr.shape[1:]))
        if lr.shape[1:] != self._lr.shape[1:] or hr.shape[1:] != self._hr.shape[1:]:
            raise InvalidImageError(
                f"TrainingPairPool: expected batches of LR {tuple(self._lr.shape[1:])} and HR "
                f"{tuple(self._hr.shape[1:])} per image (the first batch's), got {tuple(lr.shape[1:])} and "
                f"{tuple(hr.shape[1:])}; use one pool per crop size"
            )
        if self._filled < self.size:
            if n > self.size - self._filled:
                raise InvalidImageError(
                    f"TrainingPairPool: a batch of {n} does not fit the {self.size - self._filled} free places "
                    f"(the batch size changed); keep one batch size per pool"
                )
            self._lr[self._filled : self._filled + n] = lr.detach()
            self._hr[self._filled : self._filled + n] = hr.detach()
            self._filled += n
            self._undo = ("fill", n)
            return lr, hr
        state = self.generator.get_state()
        idx = torch.randperm(self.size, generator=self.generator)[:n].to(self._lr.device)
        out_lr, out_hr = self._lr[idx], self._hr[idx]  # advanced indexing copies
        self._lr[idx] = lr.detach().to(self._lr.dtype)
        self._hr[idx] = hr.detach().to(self._hr.dtype)
        self._undo = ("swap", (state, idx, out_lr, out_hr))
        return out_lr, out_hr

    def undo_last(self) -> None:
        """Put the pool back as it was before the last call (e.g. the training step that used its output was
        interrupted, so a resumed run must see the pool as the last completed step left it). Only the last call
        can be undone; a second undo does nothing."""
        undo, self._undo = self._undo, None
        if undo is None or self._lr is None or self._hr is None:
            return
        kind, data = undo
        if kind == "fill":
            self._filled -= int(data)
            return
        state, idx, out_lr, out_hr = data
        self._lr[idx] = out_lr
        self._hr[idx] = out_hr
        self.generator.set_state(state)
