"""The 8 flips/transposes of an image (the dihedral group of the square) and the geometric self-ensemble.

Used at inference (``SRGAN.upscale(..., self_ensemble=True)``) and in training (a teacher's self-ensemble output
as a distillation target), so it sits below both.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch

__all__ = ["dihedral", "dihedral_transforms", "self_ensemble"]


def dihedral(x: torch.Tensor, *, hflip: bool, vflip: bool, transpose: bool, inverse: bool = False) -> torch.Tensor:
    """One of the 8 flips/transposes of the last two dims of ``x``; ``inverse=True`` undoes it."""
    ops: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if hflip:
        ops.append(lambda t: t.flip(-1))
    if vflip:
        ops.append(lambda t: t.flip(-2))
    if transpose:
        ops.append(lambda t: t.transpose(-1, -2))
    for op in reversed(ops) if inverse else ops:
        x = op(x)
    return x


def dihedral_transforms() -> Iterator[tuple[bool, bool, bool]]:
    """The 8 ``(hflip, vflip, transpose)`` combinations, identity first."""
    for hflip, vflip, transpose in itertools.product((False, True), repeat=3):  # noqa: UP028 - a typed 3-tuple
        yield (hflip, vflip, transpose)


@torch.no_grad()
def self_ensemble(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean of ``forward`` over the 8 flips/transposes of ``x``, each output mapped back.

    Args:
        forward: a super-resolution network (any callable (N, C, h, w) -> (N, C', s*h, s*w)).
        x: (N, C, h, w) input.

    Returns:
        (N, C', s*h, s*w) float32, the average of the 8 mapped-back outputs.
    """
    acc: torch.Tensor | None = None
    for hflip, vflip, transpose in dihedral_transforms():
        out = forward(dihedral(x, hflip=hflip, vflip=vflip, transpose=transpose)).float()
        out = dihedral(out, hflip=hflip, vflip=vflip, transpose=transpose, inverse=True)
        acc = out if acc is None else acc.add_(out)
    assert acc is not None
    return acc.div_(8)
