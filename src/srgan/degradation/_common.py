"""What the real-world degradation modules share: input checks, random draws from a caller's generator, subsets."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..errors import ConfigError, InvalidImageError

__all__: list[str] = []

_SEED_BOUND = 2**62


def check_image(x: object, what: str, *, channels: int | None = None) -> torch.Tensor:
    """``x`` as an (N, C, H, W) floating-point tensor, or a named error saying what was expected and what came."""
    if not isinstance(x, torch.Tensor):
        raise InvalidImageError(
            f"{what}: expected a torch.Tensor (N, C, H, W) float in [0, 1], got {type(x).__name__}; "
            "convert images with torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255"
        )
    if x.ndim != 4:
        raise InvalidImageError(
            f"{what}: expected a batch (N, C, H, W), got shape {tuple(x.shape)}; "
            "add the batch dimension with x.unsqueeze(0)"
        )
    if not x.is_floating_point():
        raise InvalidImageError(
            f"{what}: expected a float tensor in [0, 1], got dtype {x.dtype}; convert with x.float() / 255"
        )
    if channels is not None and x.shape[1] != channels:
        raise InvalidImageError(
            f"{what}: expected {channels} channels (RGB), got {x.shape[1]} (shape {tuple(x.shape)})"
        )
    if x.shape[0] < 1 or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise InvalidImageError(f"{what}: expected a non-empty batch, got shape {tuple(x.shape)}")
    return x


def check_range(name: str, value: Sequence[float], *, low: float, high: float = math.inf, what: str = "") -> None:
    """``value`` must be a (lo, hi) pair with ``low <= lo <= hi <= high``."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and low <= value[0] <= value[1] <= high
    )
    if not ok:
        bound = f"[{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise ConfigError(f"{name} = {value!r} is invalid: expected a (low, high) pair with values {bound}{what}")


def check_prob(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} = {value!r} is invalid: expected a probability in [0, 1]")


def check_probs(name: str, value: Sequence[float], n: int) -> None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value)
        and sum(value) > 0
    )
    if not ok:
        raise ConfigError(
            f"{name} = {value!r} is invalid: expected {n} non-negative weights with a positive sum "
            "(they are normalised to probabilities)"
        )


def resolve_generator(generator: torch.Generator | None) -> torch.Generator:
    """The caller's generator, or (for ``None``) a CPU generator seeded from torch's global one."""
    if generator is None:
        seed = int(torch.randint(0, _SEED_BOUND, (1,)))
        return torch.Generator().manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    return generator


def generator_for(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device``: ``generator`` itself when it lives there, else one seeded from a draw of it.

    Large draws (noise fields) then happen on the tensor's device, and stay a deterministic function of the caller's
    generator state.
    """
    if generator.device.type == device.type and (device.type == "cpu" or generator.device == device):
        return generator
    seed = int(torch.randint(0, _SEED_BOUND, (1,), generator=generator, device=generator.device))
    return torch.Generator(device=device).manual_seed(seed)


def uniform(
    n: int, low: float, high: float, generator: torch.Generator, device: torch.device | None = None
) -> torch.Tensor:
    """``n`` float32 draws uniform in [low, high), made on the generator's device, returned on ``device``."""
    u = torch.rand(n, generator=generator, device=generator.device)
    out = low + (high - low) * u
    return out if device is None else out.to(device)


def bernoulli(n: int, p: float, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
    """``n`` booleans, each True with probability ``p``."""
    return uniform(n, 0.0, 1.0, generator, device) < p


def choice(n: int, weights: Sequence[float], generator: torch.Generator) -> torch.Tensor:
    """``n`` indices drawn with replacement with probabilities proportional to ``weights`` (on the CPU, int64)."""
    w = torch.tensor([float(v) for v in weights], dtype=torch.float64, device=generator.device)
    return torch.multinomial(w, n, replacement=True, generator=generator).cpu()


def one_choice(weights: Sequence[float], generator: torch.Generator) -> int:
    return int(choice(1, weights, generator)[0])


def apply_subset(
    x: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn(x[idx], idx)`` written back where ``mask`` is True (shape-preserving ``fn``); ``x`` where it is False."""
    idx = mask.nonzero().flatten().to(x.device)
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    out = x.clone()
    out[idx] = fn(x.index_select(0, idx), idx)
    return out
