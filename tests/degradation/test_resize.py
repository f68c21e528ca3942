"""srgan.degradation.resize: sizes, modes, seeded draws, errors."""

from __future__ import annotations

import pytest
import torch

from srgan.degradation import RESIZE_MODES, random_resize, resize
from srgan.errors import ConfigError


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_resize_sizes_and_constant_images(mode: str) -> None:
    flat = torch.full((2, 3, 20, 16), 0.25)
    for size in [(7, 5), (33, 40)]:
        out = resize(flat, size, mode)
        assert out.shape == (2, 3, *size)
        assert torch.allclose(out, torch.full_like(out, 0.25), atol=1e-6)


def test_random_resize_directions_and_seeding() -> None:
    x = torch.rand(2, 3, 40, 40)
    up = random_resize(x, generator=torch.Generator().manual_seed(0), probs=(1, 0, 0), scale=(0.5, 1.5))
    down = random_resize(x, generator=torch.Generator().manual_seed(0), probs=(0, 1, 0), scale=(0.5, 1.5))
    keep = random_resize(x, generator=torch.Generator().manual_seed(0), probs=(0, 0, 1))
    assert 40 <= up.shape[-1] <= 60 and 20 <= down.shape[-1] <= 40 and torch.equal(keep, x)
    sizes = {random_resize(x, generator=torch.Generator().manual_seed(s)).shape[-1] for s in range(8)}
    assert len(sizes) > 3
    a = random_resize(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, random_resize(x, generator=torch.Generator().manual_seed(3)))
    based = random_resize(x, generator=torch.Generator().manual_seed(0), probs=(0, 0, 1), base=(10, 12))
    assert based.shape[-2:] == (10, 12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"scale": (1.2, 1.5)}, "low <= 1 <= high"), ({"probs": (0, 0, 0)}, "probs"), ({"modes": ("nearest",)}, "modes")],
)
def test_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        random_resize(torch.rand(1, 3, 8, 8), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mode"):
        resize(torch.rand(1, 3, 8, 8), (4, 4), "lanczos")
