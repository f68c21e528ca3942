"""NIQE, the no-reference "Natural Image Quality Evaluator" of Mittal, Soundararajan and Bovik (2013).

NIQE fits a multivariate Gaussian to natural-scene-statistics features of an image's 96x96 blocks and reports its
distance to the Gaussian fitted on a corpus of pristine images: lower is more natural. The pristine model is data
(:class:`NiqeParams`, read from the ``.npz`` file distributed with the reference implementations), not code.

The computation follows the reference that SR papers use, BasicSR's ``calculate_niqe`` (the Python port of the
authors' MATLAB release):

1. the BT.601 Y channel on the [16, 235] scale (``Y = 16 + 65.481 R + 128.553 G + 24.966 B``), ``crop_border``
   pixels removed from each side, rounded to integers, then cropped to whole 96x96 blocks (bottom/right);
2. at two scales (the image, then a MATLAB-style bicubic ``imresize`` by 0.5 of it, not rounded): the MSCN
   coefficients ``(I - mu) / (sigma + 1)``, where ``mu`` and ``sigma`` are the local mean and standard deviation
   under the pristine model's 7x7 Gaussian window with edge-replicating borders;
3. per block (96x96, then 48x48 at the second scale): an asymmetric generalized Gaussian (AGGD) fit of the
   coefficients (shape, mean of the two scales) and of their products with the horizontal, vertical and both
   diagonal neighbours (circular within the block; shape, mean, left and right scale): 18 features per scale,
   36 in all;
4. the mean of the block features (ignoring NaN) and the covariance of the blocks without NaN; the score is
   ``sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu))``.

The local statistics are computed in float64 and stored in float32, as the reference does; this matters because
it makes the coefficients of flat areas exactly zero (a block with no negative or no positive coefficient has
undefined scale features, NaN, and is left out of the covariance).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from .degradation import imresize
from .errors import ConfigError, InvalidImageError
from .metrics import rgb_to_y

__all__ = ["NiqeParams", "niqe", "NIQE_FEATURES", "NIQE_BLOCK_SIZE"]

NIQE_FEATURES = 36
"""Length of the NIQE feature vector (18 per scale, two scales)."""

NIQE_BLOCK_SIZE = 96
"""Side of the square blocks the image is divided into (the reference's recommended value)."""

FloatArray = NDArray[np.float64]

# Grid of AGGD shape parameters searched by moment matching, as in the reference (0.2, 0.201, ..., 10.0).
_SHAPE_GRID_START, _SHAPE_GRID_STOP, _SHAPE_GRID_STEP = 0.2, 10.001, 0.001
# Neighbour offsets (rows, cols) whose coefficient products are modelled: horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True, eq=False)
class NiqeParams:
    """The pristine model of NIQE: a multivariate Gaussian over the 36 features, and the smoothing window.

    Attributes:
        mu: (36,) float64 mean of the pristine features.
        cov: (36, 36) float64 covariance of the pristine features.
        window: (k, k) float64 Gaussian window (k odd, 7 in the reference) for the local mean and variance.
    """

    mu: FloatArray
    cov: FloatArray
    window: FloatArray

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=np.float64).reshape(-1)
        cov = np.asarray(self.cov, dtype=np.float64)
        window = np.asarray(self.window, dtype=np.float64)
        if mu.shape != (NIQE_FEATURES,):
            raise ConfigError(f"NIQE mu must hold {NIQE_FEATURES} values, got shape {np.shape(self.mu)}")
        if cov.shape != (NIQE_FEATURES, NIQE_FEATURES):
            raise ConfigError(f"NIQE cov must be {NIQE_FEATURES}x{NIQE_FEATURES}, got shape {cov.shape}")
        if window.ndim != 2 or window.shape[0] != window.shape[1] or window.shape[0] % 2 == 0:
            raise ConfigError(f"NIQE window must be a square array of odd size, got shape {window.shape}")
        for name, arr in (("mu", mu), ("cov", cov), ("window", window)):
            if not np.isfinite(arr).all():
                raise ConfigError(f"NIQE {name} holds NaN or infinite values")
        if not window.sum() > 0:
            raise ConfigError(f"NIQE window must have a positive sum, got {window.sum()}")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "window", window)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> NiqeParams:
        """Read the ``.npz`` file of the reference implementations.

        It must hold ``mu_pris_param`` (1, 36), ``cov_pris_param`` (36, 36) and ``gaussian_window`` (7, 7).

        Raises:
            ConfigError: the file is missing or unreadable, a key is missing, or an array has the wrong shape.
        """
        name = os.fspath(path)
        keys = {"mu": "mu_pris_param", "cov": "cov_pris_param", "window": "gaussian_window"}
        try:
            data = np.load(name, allow_pickle=False)
        except FileNotFoundError as e:
            raise ConfigError(f"NIQE parameter file {name} not found; pass the path of niqe_pris_params.npz") from e
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read NIQE parameter file {name} as .npz: {e}") from e
        if not hasattr(data, "files"):
            raise ConfigError(f"{name} holds a single array; expected an .npz file with {sorted(keys.values())}")
        with data:
            missing = [k for k in keys.values() if k not in data.files]
            if missing:
                raise ConfigError(
                    f"NIQE parameter file {name} lacks {missing} (it has {sorted(data.files)}); expected the "
                    "niqe_pris_params.npz of the reference implementation"
                )
            arrays = {field: np.array(data[key], dtype=np.float64) for field, key in keys.items()}
        if arrays["mu"].size != NIQE_FEATURES:
            raise ConfigError(f"{name}: mu_pris_param must have shape (1, 36), got {arrays['mu'].shape}")
        try:
            return cls(mu=arrays["mu"], cov=arrays["cov"], window=arrays["window"])
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from e


def niqe(image: torch.Tensor | NDArray[Any], *, params: NiqeParams, crop_border: int = 0) -> float:
    """NIQE score of one RGB image (lower is more natural), as BasicSR's ``calculate_niqe`` computes it.

    Args:
        image: a (3, H, W) or (H, W, 3) RGB image, float in [0, 1] or uint8, numpy array or torch tensor. A shape
            that fits both layouts, (3, H, 3), is read as (3, H, W) for tensors and (H, W, 3) for arrays.
        params: the pristine model (:meth:`NiqeParams.from_file`).
        crop_border: pixels removed from each side before measuring (the SR scale factor in benchmarks).

    Returns:
        The NIQE score.

    Raises:
        InvalidImageError: wrong shape or dtype, non-finite values, smaller than one 96x96 block after cropping,
            or too flat for NIQE to be defined (fewer than two blocks with both negative and positive
            coefficients at both scales, e.g. a constant image).
        ConfigError: ``crop_border`` < 0.
    """
    if not isinstance(params, NiqeParams):
        raise ConfigError(f"params must be a NiqeParams (see NiqeParams.from_file), got {type(params).__name__}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ConfigError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    y = _luma(image)
    h, w = y.shape
    y = y[crop_border : h - crop_border, crop_border : w - crop_border]
    if min(y.shape) < NIQE_BLOCK_SIZE:
        raise InvalidImageError(
            f"NIQE needs at least {NIQE_BLOCK_SIZE}x{NIQE_BLOCK_SIZE} pixels after removing "
            f"crop_border={crop_border}, got an image of {h}x{w}"
        )
    return _distance(_features(y, params.window), params)


def _features(y: FloatArray, window: FloatArray) -> FloatArray:
    """(n_blocks, 36) NIQE features of an (H, W) Y image on the [16, 235] scale, H and W >= 96."""
    y = np.round(y)  # the reference rounds Y "to be consistent with MATLAB's result"
    bs = NIQE_BLOCK_SIZE
    nbh, nbw = y.shape[0] // bs, y.shape[1] // bs
    img = y[: nbh * bs, : nbw * bs].astype(np.float32)
    features = [_block_features(_mscn(img, window), bs)]
    half = imresize(torch.from_numpy(img.astype(np.float64) / 255.0)[None, None], scale=0.5)[0, 0]
    img = (half.numpy() * 255.0).astype(np.float32)
    features.append(_block_features(_mscn(img, window), bs // 2))
    return np.concatenate(features, axis=1)


def _luma(image: torch.Tensor | NDArray[Any]) -> FloatArray:
    """(H, W) float64 Y on the [16, 235] scale of an RGB image given as described in :func:`niqe`."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        channels_first = True
    elif isinstance(image, np.ndarray):
        t = torch.from_numpy(np.array(image))  # a copy: arrays may be read-only (PIL)
        channels_first = False
    else:
        raise InvalidImageError(f"expected a numpy array or torch tensor, got {type(image).__name__}")
    shape = tuple(t.shape)
    if t.ndim != 3 or 3 not in (shape[0], shape[-1]):
        raise InvalidImageError(f"expected an RGB image of shape (3, H, W) or (H, W, 3), got shape {shape}")
    if not (shape[0] == 3 and (channels_first or shape[-1] != 3)):
        t = t.permute(2, 0, 1)
    if t.dtype == torch.uint8:
        t = t.to(torch.float64) / 255.0
    elif t.is_floating_point():
        t = t.to(torch.float64)
        if not torch.isfinite(t).all():
            raise InvalidImageError("the image holds NaN or infinite values")
    else:
        raise InvalidImageError(f"expected a float image in [0, 1] or uint8, got dtype {t.dtype}")
    out: FloatArray = rgb_to_y(t)[0].numpy()
    return out


def _mscn(img: NDArray[np.float32], window: FloatArray) -> NDArray[np.float32]:
    """Mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + 1)`` of an (H, W) float32 image.

    Local statistics use ``window`` as a convolution with edge-replicating borders (``scipy.ndimage.convolve``
    with ``mode='nearest'``), accumulated in float64 and rounded to float32 like the reference.
    """
    k = window.shape[0]
    kernel = torch.from_numpy(np.ascontiguousarray(window[::-1, ::-1]))[None, None]  # convolution, not correlation

    def smooth(x: NDArray[np.float32]) -> NDArray[np.float32]:
        t = torch.from_numpy(x.astype(np.float64))[None, None]
        t = F.pad(t, (k // 2,) * 4, mode="replicate")
        out: NDArray[np.float32] = F.conv2d(t, kernel)[0, 0].numpy().astype(np.float32)
        return out

    mu = smooth(img)
    sigma = np.sqrt(np.abs(smooth(np.square(img)) - np.square(mu)))
    out: NDArray[np.float32] = (img - mu) / (sigma + np.float32(1.0))
    return out


def _block_features(mscn: NDArray[np.float32], block: int) -> FloatArray:
    """(n_blocks, 18) features of the ``block`` x ``block`` tiles of an MSCN image (whole tiles only)."""
    nbh, nbw = mscn.shape[0] // block, mscn.shape[1] // block
    x = mscn[: nbh * block, : nbw * block].astype(np.float64)
    blocks = x.reshape(nbh, block, nbw, block).transpose(0, 2, 1, 3).reshape(-1, block, block)
    samples = [blocks] + [blocks * np.roll(blocks, s, axis=(1, 2)) for s in _SHIFTS]
    stacked = np.stack(samples, axis=1).reshape(blocks.shape[0], len(samples), -1)  # (n, 5, block * block)
    alpha, beta_l, beta_r, mean = _estimate_aggd(stacked)
    cols = [alpha[:, 0], (beta_l[:, 0] + beta_r[:, 0]) / 2]
    for j in range(1, len(samples)):
        cols += [alpha[:, j], mean[:, j], beta_l[:, j], beta_r[:, j]]
    return np.stack(cols, axis=1)


@lru_cache(maxsize=1)
def _shape_tables() -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The shape grid and, on it: the moment ratio rho, sqrt(G(1/a) / G(3/a)) and G(2/a) / G(1/a)."""
    grid = np.arange(_SHAPE_GRID_START, _SHAPE_GRID_STOP, _SHAPE_GRID_STEP)
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    lg1, lg2, lg3 = lg(1 / grid), lg(2 / grid), lg(3 / grid)
    rho = np.exp(2 * lg2 - lg1 - lg3)  # E[|x|]^2 / E[x^2] of a generalized Gaussian of shape a
    scale_ratio = np.exp(0.5 * (lg1 - lg3))
    mean_ratio = np.exp(lg2 - lg1)
    return grid, rho, scale_ratio, mean_ratio


def _estimate_aggd(x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Fit an asymmetric generalized Gaussian to the samples along the last axis, by moment matching.

    Args:
        x: (..., n) samples.

    Returns:
        (shape, left scale, right scale, mean), each of shape ``x.shape[:-1]``. The shape is the grid value whose
        moment ratio is nearest to the samples' corrected ratio (0.2 when undefined, as in the reference); the
        scales are NaN when there is no negative (left) or no positive (right) sample. The mean is the AGGD's,
        ``(beta_r - beta_l) G(2/a) / G(1/a)`` (Eq. 8 of the paper).
    """
    neg, pos = x < 0, x > 0
    sq = np.square(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(np.where(neg, sq, 0.0).sum(-1) / neg.sum(-1))
        right_std = np.sqrt(np.where(pos, sq, 0.0).sum(-1) / pos.sum(-1))
        gamma_hat = left_std / right_std
        r_hat = np.square(np.abs(x).mean(-1)) / sq.mean(-1)
        r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / np.square(gamma_hat**2 + 1)
    grid, rho, scale_ratio, mean_ratio = _shape_tables()
    # Nearest grid point of the increasing table rho; ties go to the smaller shape (numpy's argmin), NaN to 0.
    hi = np.clip(np.searchsorted(rho, r_norm), 1, rho.size - 1)
    lo = hi - 1
    idx = np.where(np.abs(r_norm - rho[lo]) <= np.abs(rho[hi] - r_norm), lo, hi)
    idx = np.where(np.isnan(r_norm), 0, idx)
    beta_l, beta_r = left_std * scale_ratio[idx], right_std * scale_ratio[idx]
    return grid[idx], beta_l, beta_r, (beta_r - beta_l) * mean_ratio[idx]


def _distance(features: FloatArray, params: NiqeParams) -> float:
    """NIQE distance between the Gaussian fitted to (n_blocks, 36) features and the pristine one."""
    valid = ~np.isnan(features)
    counts = valid.sum(axis=0)
    complete = features[valid.all(axis=1)]
    if counts.min() == 0 or complete.shape[0] < 2:
        raise InvalidImageError(
            f"NIQE is undefined for this image: only {complete.shape[0]} of its {features.shape[0]} blocks have "
            "texture (both negative and positive normalised coefficients) and at least 2 are needed; a constant "
            "or nearly flat image has no NIQE score"
        )
    mu = np.where(valid, features, 0.0).sum(axis=0) / counts
    cov = np.cov(complete, rowvar=False)
    diff = params.mu - mu
    quality = float(diff @ np.linalg.pinv((params.cov + cov) / 2) @ diff)
    return math.sqrt(max(quality, 0.0))
