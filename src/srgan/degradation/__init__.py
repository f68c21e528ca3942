"""HR -> LR degradations: clean ones for benchmarks, Real-ESRGAN's real-world model for training.

- :mod:`~srgan.degradation.bicubic`: MATLAB-style bicubic resizing, Gaussian blur + downsampling, the
  :class:`Degradation` protocol and the simple seeded pipelines (``BicubicDegradation``, ...).
- :mod:`~srgan.degradation.kernels`: blur kernels (Gaussian, generalized, plateau, sinc) per image, ``filter2d``,
  ``unsharp_mask``.
- :mod:`~srgan.degradation.resize`: random up / down resizing by area, bilinear or bicubic.
- :mod:`~srgan.degradation.noise`: Gaussian and Poisson noise, colour or grey.
- :mod:`~srgan.degradation.jpeg`: a JPEG round trip in torch (libjpeg's tables and 4:2:0), per-image quality.
- :mod:`~srgan.degradation.real`: :class:`RealDegradation`, Real-ESRGAN's second-order model, and its presets.
- :mod:`~srgan.degradation.pool`: :class:`TrainingPairPool`, Real-ESRGAN's queue that mixes batches.

Everything takes batched float tensors (N, C, H, W) in [0, 1] on any device; random draws come from the
``torch.Generator`` the caller passes.
"""

from __future__ import annotations

from .bicubic import (
    BicubicDegradation,
    BlurDownsampleDegradation,
    Compose,
    Degradation,
    bicubic_downsample,
    blur_downsample,
    gaussian_blur,
    gaussian_kernel,
    imresize,
    modcrop,
    quantize,
)
from .bicubic import _as_batch as _as_batch  # private helpers of the old module, kept importable from here
from .bicubic import _cubic as _cubic
from .bicubic import _resize_matrix as _resize_matrix
from .jpeg import CHROMA_TABLE, LUMA_TABLE, jpeg, jpeg_pillow, quant_tables, rgb_to_ycbcr, ycbcr_to_rgb
from .kernels import (
    KERNEL_TYPES,
    bivariate_kernel,
    filter2d,
    pulse_kernel,
    random_kernel,
    random_sinc_kernel,
    sinc_kernel,
    unsharp_mask,
)
from .noise import add_gaussian_noise, add_noise, add_poisson_noise
from .pool import TrainingPairPool
from .real import ORDERS, PRESETS, RealDegradation, RealDegradationConfig
from .resize import RESIZE_MODES, random_resize, resize

__all__ = [
    # bicubic.py (the module srgan.degradation was before it became a package)
    "imresize",
    "bicubic_downsample",
    "gaussian_kernel",
    "gaussian_blur",
    "blur_downsample",
    "quantize",
    "modcrop",
    "Degradation",
    "BicubicDegradation",
    "BlurDownsampleDegradation",
    "Compose",
    # real-world degradations
    "KERNEL_TYPES",
    "bivariate_kernel",
    "sinc_kernel",
    "pulse_kernel",
    "random_kernel",
    "random_sinc_kernel",
    "filter2d",
    "unsharp_mask",
    "RESIZE_MODES",
    "resize",
    "random_resize",
    "add_gaussian_noise",
    "add_poisson_noise",
    "add_noise",
    "LUMA_TABLE",
    "CHROMA_TABLE",
    "quant_tables",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "jpeg",
    "jpeg_pillow",
    "ORDERS",
    "PRESETS",
    "RealDegradationConfig",
    "RealDegradation",
    "TrainingPairPool",
]
