"""srgan.degradation.pool: the training-pair pool fills, then swaps random pairs, seeded and aligned."""

from __future__ import annotations

import pytest
import torch

from srgan.degradation import TrainingPairPool
from srgan.errors import ConfigError, InvalidImageError


def _batch(start: int, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs tagged by their index: every pixel of pair i is i (LR) and i + 0.5 (HR)."""
    ids = torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1)
    return ids.expand(n, 3, 2, 2).clone(), (ids + 0.5).expand(n, 3, 8, 8).clone()


def _ids(lr: torch.Tensor, hr: torch.Tensor) -> list[int]:
    assert torch.equal(hr[:, 0, 0, 0], lr[:, 0, 0, 0] + 0.5)  # pairs stay aligned
    return [int(v) for v in lr[:, 0, 0, 0]]


def test_fills_then_swaps_random_earlier_pairs() -> None:
    pool = TrainingPairPool(6, seed=0)
    for start in (0, 2, 4):
        lr, hr = _batch(start)
        assert _ids(*pool(lr, hr)) == [start, start + 1]  # while filling: the batch itself
    assert pool.full and len(pool) == 6
    seen: set[int] = set()
    for start in range(6, 30, 2):
        out = _ids(*pool(*_batch(start)))
        assert all(i < start for i in out)  # always an earlier pair, never the one just put in
        seen.update(out)
    assert len(seen) > 8  # mixes across many batches


def test_seeded() -> None:
    def run(seed: int) -> list[int]:
        pool = TrainingPairPool(4, seed=seed)
        return [i for start in range(0, 20, 2) for i in _ids(*pool(*_batch(start)))]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_errors() -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        TrainingPairPool(0)
    with pytest.raises(ConfigError, match="multiple of the batch size"):
        TrainingPairPool(5)(*_batch(0))
    pool = TrainingPairPool(4)
    pool(*_batch(0))
    lr, hr = _batch(2)
    with pytest.raises(InvalidImageError, match="one pool per crop size"):
        pool(lr[..., :1], hr)
    with pytest.raises(InvalidImageError, match="as many HR as LR"):
        pool(lr, hr[:1])


def test_undo_last_restores_the_pool_and_its_generator() -> None:
    from srgan.degradation import TrainingPairPool

    pool = TrainingPairPool(4, seed=3)
    batches = [(torch.full((2, 3, 2, 2), float(i)), torch.full((2, 3, 8, 8), float(i))) for i in range(4)]
    pool(*batches[0])
    pool(*batches[1])  # full now
    before = (pool._lr.clone(), pool._hr.clone(), pool.generator.get_state())  # type: ignore[union-attr]
    first = pool(*batches[2])
    pool.undo_last()
    assert torch.equal(pool._lr, before[0]) and torch.equal(pool._hr, before[1])  # type: ignore[arg-type]
    assert torch.equal(pool.generator.get_state(), before[2])
    again = pool(*batches[2])  # the same draw as before the undo
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])
    pool.undo_last()
    pool.undo_last()  # a second undo does nothing
    assert torch.equal(pool._lr, before[0])  # type: ignore[arg-type]
    fill = TrainingPairPool(4)
    fill(*batches[0])
    fill.undo_last()
    assert len(fill) == 0
