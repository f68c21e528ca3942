"""Real-ESRGAN's second-order degradation (Wang et al. 2021) as one seeded, batched callable: HR -> realistic LR.

The path of a batch through :class:`RealDegradation` (every draw from the caller's ``torch.Generator``):

1. first order: blur with a random kernel per image (:func:`~srgan.degradation.random_kernel`), random resize of
   the batch (up / down / keep, area / bilinear / bicubic), Gaussian or Poisson noise per image (colour or grey),
   JPEG at a random quality per image;
2. second order: the same with its own ranges (the blur only with probability ``second_blur_prob`` per image; the
   resize relative to the final LR size), Gaussian or Poisson noise;
3. final: in random order (1/2 each, for the batch), either resize to the LR size + a 2-D sinc filter (per image
   with probability ``final_sinc_prob``, else no filter) then JPEG, or JPEG then resize + sinc; the JPEG quality
   from ``jpeg_range2``;
4. clamp and round to 8 bits.

With ``order="shuffled"`` the seven steps of 1 and 2 run in a random order per batch (BSRGAN's shuffled
degradations, Zhang et al. 2021), followed by step 3. Defaults of :class:`RealDegradationConfig` are the published
ranges of Real-ESRGAN's ``train_realesrnet_x4plus.yml``; :data:`PRESETS` holds them as ``"real"`` and a milder
``"mild"``. Real-ESRGAN sharpens the HR target with :func:`~srgan.degradation.unsharp_mask` before degrading it;
that is the caller's choice here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from ..errors import ConfigError, InvalidImageError
from ._common import bernoulli, check_image, check_prob, check_probs, check_range, resolve_generator, uniform
from .jpeg import jpeg
from .kernels import KERNEL_TYPES, filter2d, pulse_kernel, random_kernel, random_sinc_kernel
from .noise import add_noise
from .resize import RESIZE_MODES, random_resize, resize

__all__ = ["RealDegradationConfig", "RealDegradation", "PRESETS", "ORDERS"]

#: The step orders of :class:`RealDegradation`: Real-ESRGAN's fixed one, or BSRGAN-style shuffled per batch.
ORDERS = ("real-esrgan", "shuffled")

_Step = Callable[[torch.Tensor], torch.Tensor]
_KERNEL_PROBS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


@dataclass(frozen=True)
class RealDegradationConfig:
    """The ranges of Real-ESRGAN's degradation model; the defaults are the published x4plus ones.

    Ranges are ``(low, high)`` pairs drawn uniformly. Fields ending in ``2`` are the second order's.

    Attributes:
        scale: the LR is ``(H // scale, W // scale)``.
        kernel_size, kernel_size2: odd kernel sizes, uniform among the odd values in the range (7..21).
        kernel_probs, kernel_probs2: weights of the families ``iso, aniso, generalized_iso, generalized_aniso,
            plateau_iso, plateau_aniso`` (0.45, 0.25, 0.12, 0.03, 0.12, 0.03).
        sinc_prob, sinc_prob2: probability of a sinc kernel instead of those (0.1).
        blur_sigma, blur_sigma2: Gaussian sigmas in pixels ((0.2, 3) and (0.2, 1.5)).
        betag_range, betag_range2: generalized Gaussian shape beta ((0.5, 4)).
        betap_range, betap_range2: plateau shape beta ((1, 2)).
        second_blur_prob: probability of the second blur per image (0.8).
        resize_probs, resize_probs2: weights of (up, down, keep): (0.2, 0.7, 0.1) and (0.3, 0.4, 0.3).
        resize_range, resize_range2: resize factors ((0.15, 1.5) and (0.3, 1.2); the second relative to the LR size).
        resize_modes: resampling filters drawn uniformly (area, bilinear, bicubic).
        gaussian_noise_prob, gaussian_noise_prob2: probability of Gaussian (else Poisson) noise per image (0.5).
        noise_range, noise_range2: Gaussian sigma in 8-bit levels, divided by 255 when applied ((1, 30), (1, 25)).
        poisson_scale_range, poisson_scale_range2: Poisson noise scale ((0.05, 3) and (0.05, 2.5)).
        gray_noise_prob, gray_noise_prob2: probability that an image's noise is grey (0.4).
        jpeg_range, jpeg_range2: JPEG quality, integers in 1..100 ((30, 95)).
        final_sinc_prob: probability of the final sinc filter per image (0.8).
        order: ``"real-esrgan"`` or ``"shuffled"`` (BSRGAN).
    """

    scale: int = 4
    # first order
    kernel_size: tuple[int, int] = (7, 21)
    kernel_probs: tuple[float, ...] = _KERNEL_PROBS
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)
    # second order
    second_blur_prob: float = 0.8
    kernel_size2: tuple[int, int] = (7, 21)
    kernel_probs2: tuple[float, ...] = _KERNEL_PROBS
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    resize_probs2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[int, int] = (30, 95)
    # final
    final_sinc_prob: float = 0.8
    resize_modes: tuple[str, ...] = RESIZE_MODES
    order: str = "real-esrgan"

    def __post_init__(self) -> None:
        for f in fields(self):  # JSON gives lists: keep tuples (hashable, immutable)
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    @classmethod
    def mild(cls, **overrides: Any) -> RealDegradationConfig:
        """A milder preset: smaller blurs, less noise, JPEG 60..95, gentler resizes, fewer sinc filters.

        For photos that are mostly clean (phone pictures, web images saved once) rather than Real-ESRGAN's
        worst-case mixes; ``overrides`` replace fields.
        """
        base = cls(
            kernel_size=(7, 15),
            sinc_prob=0.05,
            blur_sigma=(0.2, 1.5),
            resize_range=(0.5, 1.5),
            noise_range=(1.0, 10.0),
            poisson_scale_range=(0.05, 1.0),
            jpeg_range=(60, 95),
            second_blur_prob=0.5,
            kernel_size2=(7, 13),
            sinc_prob2=0.05,
            blur_sigma2=(0.2, 1.0),
            resize_range2=(0.6, 1.2),
            noise_range2=(1.0, 5.0),
            poisson_scale_range2=(0.05, 0.5),
            jpeg_range2=(70, 95),
            final_sinc_prob=0.5,
        )
        return replace(base, **overrides) if overrides else base

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field, its value and what is allowed."""
        name = type(self).__name__
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1:
            raise ConfigError(f"{name}.scale = {self.scale!r} is invalid: expected an integer >= 1 (4 for x4)")
        for suffix in ("", "2"):
            ks = getattr(self, f"kernel_size{suffix}")
            if not (
                isinstance(ks, tuple)
                and len(ks) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 for v in ks)
                and ks[0] <= ks[1]
            ):
                raise ConfigError(
                    f"{name}.kernel_size{suffix} = {ks!r} is invalid: expected a (low, high) pair of odd sizes, "
                    "e.g. (7, 21)"
                )
            check_probs(f"{name}.kernel_probs{suffix}", getattr(self, f"kernel_probs{suffix}"), len(KERNEL_TYPES))
            check_probs(f"{name}.resize_probs{suffix} (up, down, keep)", getattr(self, f"resize_probs{suffix}"), 3)
            for p in ("sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
                check_prob(f"{name}.{p}{suffix}", getattr(self, f"{p}{suffix}"))
            check_range(f"{name}.blur_sigma{suffix}", getattr(self, f"blur_sigma{suffix}"), low=1e-3, what=" pixels")
            check_range(f"{name}.betag_range{suffix}", getattr(self, f"betag_range{suffix}"), low=1e-3)
            check_range(f"{name}.betap_range{suffix}", getattr(self, f"betap_range{suffix}"), low=1e-3)
            rr = getattr(self, f"resize_range{suffix}")
            check_range(f"{name}.resize_range{suffix}", rr, low=1e-3)
            if not rr[0] <= 1 <= rr[1]:
                raise ConfigError(f"{name}.resize_range{suffix} = {rr!r} is invalid: expected low <= 1 <= high")
            check_range(
                f"{name}.noise_range{suffix}", getattr(self, f"noise_range{suffix}"), low=0, high=255, what=" (8-bit)"
            )
            check_range(f"{name}.poisson_scale_range{suffix}", getattr(self, f"poisson_scale_range{suffix}"), low=0)
            jr = getattr(self, f"jpeg_range{suffix}")
            check_range(f"{name}.jpeg_range{suffix}", jr, low=1, high=100, what=" (JPEG quality)")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in jr):
                raise ConfigError(f"{name}.jpeg_range{suffix} = {jr!r} is invalid: expected integer qualities")
        for p in ("second_blur_prob", "final_sinc_prob"):
            check_prob(f"{name}.{p}", getattr(self, p))
        if not self.resize_modes or any(m not in RESIZE_MODES for m in self.resize_modes):
            raise ConfigError(
                f"{name}.resize_modes = {self.resize_modes!r} is invalid: expected a non-empty selection of "
                f"{RESIZE_MODES}"
            )
        if self.order not in ORDERS:
            raise ConfigError(f"{name}.order = {self.order!r} is invalid: expected one of {ORDERS}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RealDegradationConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        return cls(**data)


#: Named configurations: ``"real"`` (Real-ESRGAN x4plus, the defaults) and ``"mild"``.
PRESETS: dict[str, RealDegradationConfig] = {
    "real": RealDegradationConfig(),
    "mild": RealDegradationConfig.mild(),
}


def _pad_kernels(k: torch.Tensor, size: int) -> torch.Tensor:
    pad = (size - k.shape[-1]) // 2
    return torch.nn.functional.pad(k, (pad, pad, pad, pad)) if pad else k


class RealDegradation:
    """Real-ESRGAN's second-order degradation: ``(N, 3, H, W)`` HR in [0, 1] -> ``(N, 3, H // s, W // s)`` LR.

    A :class:`~srgan.degradation.Degradation`: ``lr = RealDegradation("real")(hr, generator=g)``. The LR is on the
    8-bit grid (multiples of 1/255), in the HR's dtype and on its device. The same generator state gives the same
    LR on the same device; each image of a batch draws its own kernels, noise and JPEG quality, the batch shares
    its resize sizes and modes and the order of the final steps (as in Real-ESRGAN).

    Args:
        config: a :class:`RealDegradationConfig` or the name of one in :data:`PRESETS`.
        scale: overrides ``config.scale``.
    """

    def __init__(self, config: RealDegradationConfig | str = "real", *, scale: int | None = None) -> None:
        if isinstance(config, str):
            if config not in PRESETS:
                raise ConfigError(f"unknown degradation preset {config!r}; expected one of {sorted(PRESETS)}")
            config = PRESETS[config]
        if not isinstance(config, RealDegradationConfig):
            raise ConfigError(f"config: expected a RealDegradationConfig or a preset name, got {type(config).__name__}")
        self.config = config if scale is None else replace(config, scale=scale)

    def __repr__(self) -> str:
        return f"RealDegradation(scale={self.config.scale}, order={self.config.order!r})"

    def __call__(self, hr: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Degrade ``hr`` (N, 3, H, W) float in [0, 1], H and W >= scale; returns (N, 3, H // s, W // s)."""
        hr = check_image(hr, "RealDegradation", channels=3)
        c = self.config
        n, _, h, w = hr.shape
        if h < c.scale or w < c.scale:
            raise InvalidImageError(
                f"RealDegradation: expected an image of at least {c.scale}x{c.scale} pixels for scale {c.scale}, "
                f"got {w}x{h}"
            )
        g = resolve_generator(generator)
        out_size = (h // c.scale, w // c.scale)
        pad_to = max(c.kernel_size[1], c.kernel_size2[1])
        k1 = _pad_kernels(self._kernels(n, g, ""), pad_to)
        k2 = _pad_kernels(self._kernels(n, g, "2"), pad_to)
        k2 = torch.where(
            bernoulli(n, c.second_blur_prob, g, torch.device("cpu")).view(-1, 1, 1), k2, pulse_kernel(n, size=pad_to)
        )
        sinc = random_sinc_kernel(
            n, generator=g, kernel_size=c.kernel_size, cutoff=(math.pi / 3, math.pi), pad_to=pad_to
        )
        use_sinc = bernoulli(n, c.final_sinc_prob, g, torch.device("cpu")).view(-1, 1, 1)
        sinc = torch.where(use_sinc, sinc, pulse_kernel(n, size=pad_to))

        steps: list[_Step] = [
            lambda x: filter2d(x, k1),
            lambda x: random_resize(x, generator=g, scale=c.resize_range, probs=c.resize_probs, modes=c.resize_modes),
            lambda x: self._noise(x, g, ""),
            lambda x: jpeg(x, self._qualities(n, g, c.jpeg_range)),
            lambda x: filter2d(x, k2),
            lambda x: random_resize(
                x, generator=g, scale=c.resize_range2, probs=c.resize_probs2, modes=c.resize_modes, base=out_size
            ),
            lambda x: self._noise(x, g, "2"),
        ]
        if c.order == "shuffled":
            perm = torch.randperm(len(steps), generator=g, device=g.device).tolist()
            steps = [steps[i] for i in perm]
        out = hr
        for step in steps:
            out = step(out)

        def resize_and_sinc(x: torch.Tensor) -> torch.Tensor:
            mode = c.resize_modes[int(torch.randint(len(c.resize_modes), (1,), generator=g, device=g.device))]
            return filter2d(resize(x, out_size, mode), sinc)

        def final_jpeg(x: torch.Tensor) -> torch.Tensor:
            return jpeg(x, self._qualities(n, g, c.jpeg_range2))

        if float(uniform(1, 0.0, 1.0, g)[0]) < 0.5:
            out = final_jpeg(resize_and_sinc(out))
        else:
            out = resize_and_sinc(final_jpeg(out))
        return (torch.round(out.clamp(0, 1) * 255) / 255).to(hr.dtype)

    def _kernels(self, n: int, g: torch.Generator, suffix: str) -> torch.Tensor:
        c = self.config
        size = getattr(c, f"kernel_size{suffix}")
        return random_kernel(
            n,
            generator=g,
            kernel_size=size,
            probs=getattr(c, f"kernel_probs{suffix}"),
            sigma=getattr(c, f"blur_sigma{suffix}"),
            beta_gaussian=getattr(c, f"betag_range{suffix}"),
            beta_plateau=getattr(c, f"betap_range{suffix}"),
            sinc_prob=getattr(c, f"sinc_prob{suffix}"),
            pad_to=size[1],
        )

    def _noise(self, x: torch.Tensor, g: torch.Generator, suffix: str) -> torch.Tensor:
        c = self.config
        lo, hi = getattr(c, f"noise_range{suffix}")
        return add_noise(
            x,
            generator=g,
            gaussian_prob=getattr(c, f"gaussian_noise_prob{suffix}"),
            sigma=(lo / 255, hi / 255),
            poisson_scale=getattr(c, f"poisson_scale_range{suffix}"),
            gray_prob=getattr(c, f"gray_noise_prob{suffix}"),
        )

    @staticmethod
    def _qualities(n: int, g: torch.Generator, bounds: tuple[int, int]) -> torch.Tensor:
        return torch.randint(bounds[0], bounds[1] + 1, (n,), generator=g, device=g.device).cpu()
