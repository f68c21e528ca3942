"""Reading ahead: decode the next images in worker threads while the model runs on the current one."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, wait
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
R = TypeVar("R")

_END = object()


def prefetch(fn: Callable[[T], R], items: Iterable[T], *, pool: Executor, ahead: int) -> Iterator[Future[R]]:
    """``fn(item)`` for each item, run on ``pool`` up to ``ahead`` items ahead of the consumer; futures in order.

    ``items`` is read lazily. Each yielded future is done (its result or its exception is ready), and the next
    item has been submitted, so the pool works while the consumer handles it; at most ``ahead`` results are held
    besides the one being handled. An item whose ``fn`` fails does not stop the others: its future holds the error.
    """
    if ahead < 1:
        raise ValueError(f"ahead must be >= 1, got {ahead}")
    queue: deque[Future[R]] = deque()
    source = iter(items)
    for item in itertools.islice(source, ahead):
        queue.append(pool.submit(fn, item))
    while queue:
        future = queue.popleft()
        wait([future])
        nxt = next(source, _END)
        if nxt is not _END:
            queue.append(pool.submit(fn, nxt))  # type: ignore[arg-type]  # nxt is a T here
        yield future
